"""Run a function inside a named network namespace, on a short-lived thread, without forking.

A thread may switch its own network namespace with setns(2); /proc/sys/net
then shows that namespace, and sockets it creates belong to it. The thread is
new for every call and switches back before it ends, so no other code ever
runs in the wrong namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from podnet.net.ops import NotFoundError

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def netns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns failed: {os.strerror(err)}")


def setns_net(fd: int) -> None:
    """Move the calling thread (the whole process, while it has one thread) into the network
    namespace open at `fd` (os.setns is Python >= 3.12)."""
    _setns(fd)


def run_in_netns(name: str | None, fn: Callable[[], T]) -> T:
    """Call `fn()` in network namespace `name` (None: the current one) and return its result."""
    if name is None:
        return fn()
    return run_in_netns_at(netns_path(name), fn, label=name)


def run_in_netns_at(path: str, fn: Callable[[], T], label: str = "") -> T:
    """Call `fn()` in the network namespace bound at `path` (/run/netns/X or /proc/PID/ns/net)."""
    name = label or path
    try:
        target = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFoundError(f"network namespace {name!r} does not exist") from None
    box: dict[str, object] = {}

    def runner() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            try:
                box["result"] = fn()
            except BaseException as e:  # handed to the caller's thread
                box["error"] = e
            finally:
                _setns(own)
        except BaseException as e:
            box.setdefault("error", e)
        finally:
            os.close(own)

    try:
        t = threading.Thread(target=runner, name=f"netns-{name}", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(target)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 0x2
_mount_lock = threading.Lock()


def _mount(source: bytes, target: bytes, fstype: bytes, flags: int) -> None:
    if _libc.mount(source, target, fstype, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target.decode()}: {os.strerror(err)}")


def _share_run_dir() -> None:
    """Make /run/netns a shared mount (as `ip netns add` does), so namespace mounts propagate."""
    os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    d = NETNS_RUN_DIR.encode()
    try:
        _mount(b"", d, b"none", MS_SHARED | MS_REC)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        _mount(d, d, b"none", MS_BIND | MS_REC)
        _mount(b"", d, b"none", MS_SHARED | MS_REC)


def create_netns(name: str) -> None:
    """Create network namespace `name` (a bind mount under /run/netns), like `ip netns add`, without forking.

    A new thread unshares its network namespace and bind-mounts it, then the thread ends; nothing else in
    the process changes namespace. (Forking, as pyroute2 does, is unsafe in a threaded program.)
    """
    path = netns_path(name)
    with _mount_lock:
        _share_run_dir()
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
        os.close(fd)
    box: dict[str, BaseException] = {}

    def runner() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare: {os.strerror(err)}")
            try:
                _mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND)
            finally:
                _setns(own)
        except BaseException as e:
            box["error"] = e
        finally:
            os.close(own)

    t = threading.Thread(target=runner, name=f"netns-add-{name}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise box["error"]


def remove_netns(name: str) -> None:
    """Unmount and remove the name of network namespace `name` (the namespace ends with its last user)."""
    path = netns_path(name)
    _libc.umount2(path.encode(), MNT_DETACH)
    os.unlink(path)


def socket_in_netns(name: str | None, family: int, type_: int, proto: int) -> socket.socket:
    """A socket created inside network namespace `name` (it stays bound to it), without forking."""
    return run_in_netns(name, lambda: socket.socket(family, type_, proto))


def netns_exec_argv(netns: str, argv: list[str]) -> list[str]:
    """A command line running `argv` in network namespace `netns`, and only that.

    Unlike `ip netns exec`, which also moves the process into a private (slave) mount namespace,
    `nsenter --net` keeps the host's mounts: a network namespace the process creates (a pod's) is
    then visible to every other process, `podnet down` included.
    """
    return ["nsenter", f"--net={netns_path(netns)}", "--", *argv]
