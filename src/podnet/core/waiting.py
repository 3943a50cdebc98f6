"""Waiting for an asyncio.Event with a timeout without losing a cancellation.

In Python 3.11, `asyncio.wait_for(event.wait(), t)` swallows a cancellation that arrives in the same
loop iteration as the event being set (CPython issue 86296, fixed in 3.12): a loop such as
`while True: wait_for(dirty.wait(), 60); sync()` then goes on after `task.cancel()`, and whoever awaits
the cancelled task waits forever. `asyncio.wait` does not consume the cancellation, so this does.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` seconds pass; True if it is set. A cancellation always
    propagates."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()
