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
    runs = 0
    stop = False

    async def other() -> None:
        nonlocal runs
        while not stop:
            runs += 1
            await asyncio.sleep(0)

    pacer = Pacer(0.002)
    task = asyncio.ensure_future(other())
    await asyncio.sleep(0)
    before = runs
    for _ in range(20):
        _busy(0.001)  # 20 ms of work in 1 ms units
        await pacer.tick()
    during = runs - before
    stop = True
    await task
    # the other task ran while the loop was still working (once per yield), not only after it
    assert pacer.yields >= 1 and during >= pacer.yields


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
