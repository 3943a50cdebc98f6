"""Cooperative time slicing for long loops on an asyncio event loop.

A coroutine that awaits only calls which complete without suspending (SQLite and in-memory store
calls, a StreamReader with buffered lines, a non-empty Queue) holds the event loop for as long as
its loop runs: every other request of the process waits. `Pacer.tick()` after each unit of work
gives the loop back (sleep(0)) once `slice_s` of work has passed since the last time, so others
wait at most about one slice, and costs one clock read otherwise.

Background work whose every step makes more work for others (the garbage collector: each delete
is a watch event for every watcher, informer and controller of the process) uses
`Pacer(backlog=True)`: when the loop took longer than a slice to come back, the others are busy,
and the pacer waits as long again before the next slice, so the background work runs at the rate
the rest of the process absorbs its consequences instead of filling every loop iteration.
"""

from __future__ import annotations

import asyncio
import time

DEFAULT_SLICE = 0.005  # seconds of work between two yields


MAX_BACKOFF = 0.1  # seconds a backlog pacer waits at most after one slice


class Pacer:
    __slots__ = ("_last", "backlog", "slice_s", "waited", "yields")

    def __init__(self, slice_s: float = DEFAULT_SLICE, *, backlog: bool = False):
        self.slice_s = slice_s
        self.backlog = backlog
        self._last = time.monotonic()
        self.yields = 0
        self.waited = 0.0  # seconds spent backing off (backlog pacers)

    async def tick(self) -> None:
        now = time.monotonic()
        if now - self._last < self.slice_s:
            return
        await asyncio.sleep(0)
        self.yields += 1
        back = time.monotonic()
        if self.backlog and back - now > self.slice_s:
            pause = min(back - now, MAX_BACKOFF)
            await asyncio.sleep(pause)
            self.waited += pause
            back = time.monotonic()
        self._last = back
