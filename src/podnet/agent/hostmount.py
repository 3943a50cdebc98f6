"""Leave the private mount namespace that `ip netns exec` puts us in.

`ip netns exec NODE cmd` runs cmd in a new mount namespace whose mounts are slaves of the
host's. Network namespaces the agent then creates (bind mounts under /run/netns) would
exist only in that private view: `ip netns exec <pod-ns>` from the host would fail with
"Invalid argument", and the mounts would vanish with the agent. So the agent, while still
single-threaded, joins the mount namespace of the process that started it (or the one
named by $PODNET_HOST_MOUNT_NS), keeping its network namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

CLONE_NEWNS = 0x00020000

log = logging.getLogger(__name__)


def _ns_id(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def rejoin_host_mount_ns() -> str:
    """Join the starter's mount namespace if ours differs; returns what was done (for the log)."""
    target = os.environ.get("PODNET_HOST_MOUNT_NS") or f"/proc/{os.getppid()}/ns/mnt"
    mine = _ns_id("/proc/self/ns/mnt")
    theirs = _ns_id(target)
    if not theirs or theirs == mine:
        return "mount namespace: unchanged"
    try:
        fd = os.open(target, os.O_RDONLY)
    except OSError as e:
        return f"mount namespace: cannot open {target}: {e}"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.setns(fd, CLONE_NEWNS) != 0:
            err = ctypes.get_errno()
            return f"mount namespace: setns {target} failed: {os.strerror(err)}"
    finally:
        os.close(fd)
    os.chdir("/")
    return f"mount namespace: joined {target} ({theirs})"
