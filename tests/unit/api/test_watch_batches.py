"""A watch stream writes queued events in batches: every event arrives, once, in order, however
many were queued at a time (a full batch must leave the next event queued, not drop it)."""

from __future__ import annotations

import asyncio

from podnet.api.server import APIServer
from podnet.api.watch import WRITE_BATCH
from podnet.client.client import ApiClient
from podnet.model.kinds import CONFIGMAPS
from podnet.store.memory import MemoryStore


async def test_no_event_lost_when_more_than_a_batch_is_queued() -> None:
    store = MemoryStore(history=10000)
    server = APIServer(store)
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    client = ApiClient(f"http://127.0.0.1:{port}")
    n = WRITE_BATCH * 5 + 7
    try:
        rv = str(await store.current_rv())
        got: list[str] = []
        opened = asyncio.Event()

        async def watch() -> None:
            agen = client.watch(CONFIGMAPS, "default", resource_version=rv, bookmarks=False)
            opened.set()
            async for ev in agen:
                got.append(ev.object["metadata"]["name"])
                if len(got) == n:
                    return

        task = asyncio.create_task(watch())
        await opened.wait()
        await asyncio.sleep(0.2)  # the stream is open on the server
        for i in range(n):  # store writes complete without suspending: they queue up in one go
            await store.create(CONFIGMAPS.key, {"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": f"cm-{i:04d}", "namespace": "default"}})
        try:
            await asyncio.wait_for(task, 10)
        except TimeoutError:
            pass
        assert got == [f"cm-{i:04d}" for i in range(n)]
    finally:
        await client.close()
        await server.stop()
        await store.close()
