"""Run a function inside a named network namespace, on a short-lived thread, without forking.

A thread may switch its own network namespace with setns(2); /proc/sys/net
then shows that namespace, and sockets it creates belong to it. The thread is
new for every call and switches back before it ends, so no other code ever
runs in the wrong namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
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


def run_in_netns(name: str | None, fn: Callable[[], T]) -> T:
    """Call `fn()` in network namespace `name` (None: the current one) and return its result."""
    if name is None:
        return fn()
    try:
        target = os.open(netns_path(name), os.O_RDONLY)
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


def netns_exec_argv(netns: str, argv: list[str]) -> list[str]:
    """A command line running `argv` in network namespace `netns`, and only that.

    Unlike `ip netns exec`, which also moves the process into a private (slave) mount namespace,
    `nsenter --net` keeps the host's mounts: a network namespace the process creates (a pod's) is
    then visible to every other process, `podnet down` included.
    """
    return ["nsenter", f"--net={netns_path(netns)}", "--", *argv]
