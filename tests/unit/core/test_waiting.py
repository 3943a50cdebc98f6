"""wait_event: a cancellation arriving with the event is never lost (Python 3.11's wait_for loses it)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

import pytest

from podnet.core.waiting import wait_event


async def _old_wait(ev: asyncio.Event, timeout: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ev.wait(), timeout)
    return ev.is_set()


async def _cancel_as_the_event_fires(wait: Callable[[asyncio.Event, float], Awaitable[bool]]) -> bool:
    """A sync loop as the runners have; True if cancelling it while its event fires ends it."""
    ev = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while rounds < 1000:
            await wait(ev, 60)
            ev.clear()
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)  # the loop is waiting
    ev.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    if not done:
        task.cancel()  # the lost cancellation: end it for good
        await asyncio.wait({task}, timeout=1)
    return bool(done) and task.cancelled()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for keeps the cancellation from 3.12 on")
async def test_the_race_is_real_with_wait_for() -> None:
    assert not await _cancel_as_the_event_fires(_old_wait)


async def test_wait_event_keeps_the_cancellation() -> None:
    assert await _cancel_as_the_event_fires(wait_event)


async def test_wait_event_reports_set_and_timeout() -> None:
    ev = asyncio.Event()
    assert await wait_event(ev, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, ev.set)
    assert await wait_event(ev, 5) is True
    assert await wait_event(ev, 0) is True
