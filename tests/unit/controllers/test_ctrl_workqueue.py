"""The work queue's client-go semantics."""

from __future__ import annotations

import asyncio

from podnet.controllers.workqueue import WorkQueue


async def test_dedup_and_no_parallel_processing_of_a_key() -> None:
    q = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    k = await q.get()
    assert k == "a"
    q.add("a")  # added while processing: waits until done
    assert await q.get() == "b"
    q.done("b")
    assert q._queue.empty()
    q.done("a")
    assert await asyncio.wait_for(q.get(), 1) == "a"


async def test_retry_backoff_grows_and_forget_resets() -> None:
    q = WorkQueue(base_delay=0.01, max_delay=0.04)
    delays = [q.retry("k") for _ in range(4)]
    assert delays == [0.01, 0.02, 0.04, 0.04]
    assert await asyncio.wait_for(q.get(), 1) == "k"
    q.forget("k")
    assert q.failures("k") == 0
    q.close()
