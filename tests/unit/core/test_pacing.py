"""Pacer: long loops give the event loop back after each slice of work."""

from __future__ import annotations

import asyncio
import time

from podnet.core.pacing import Pacer


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def test_a_paced_loop_lets_another_task_run_between_slices() -> None:
    ran: list[float] = []

    async def other() -> None:
        for _ in range(50):
            ran.append(time.monotonic())
            await asyncio.sleep(0)

    pacer = Pacer(0.002)
    task = asyncio.ensure_future(other())
    await asyncio.sleep(0)
    start = time.monotonic()
    for _ in range(20):
        _busy(0.001)  # 20 ms of work in 1 ms units
        await pacer.tick()
    await task
    assert pacer.yields >= 5
    # the other task ran while the loop was still working, not only after it
    assert sum(1 for t in ran if start < t < start + 0.015) >= 3


async def test_no_yield_before_a_slice_has_passed() -> None:
    pacer = Pacer(10.0)
    for _ in range(1000):
        await pacer.tick()
    assert pacer.yields == 0


async def test_a_backlog_pacer_waits_while_others_hold_the_loop() -> None:
    async def hog() -> None:
        _busy(0.03)

    pacer = Pacer(0.001, backlog=True)
    _busy(0.002)
    task = asyncio.ensure_future(hog())  # runs during the pacer's yield: the loop came back late
    await pacer.tick()
    await task
    assert pacer.yields == 1 and pacer.waited >= 0.02
