"""The one thread that makes netlink calls in a process.

pyroute2 sockets are neither thread-safe nor usable on a thread running an event loop: every
netlink call of an agent (its pod network, its node routes, its proxy's LoadBalancer addresses)
runs on this one thread, one at a time.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_NETLINK = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netlink")


async def in_netlink_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the blocking netlink work `fn(*args, **kwargs)` on the netlink thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_NETLINK, functools.partial(fn, *args, **kwargs))
