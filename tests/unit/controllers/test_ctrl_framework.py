"""The generic controller runner: a controller is one declaration (watches, key mapping, reconcile),
run against the real API server (in-process, MemoryStore)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from podnet.api.server import APIServer
from podnet.client.client import ApiClient, ApiError
from podnet.controllers.framework import Controller, ControllerRunner, Watch, own_key
from podnet.model.kinds import CONFIGMAPS, SERVICES, Obj
from podnet.store.memory import MemoryStore


@pytest.fixture
async def client() -> AsyncIterator[ApiClient]:
    store = MemoryStore()
    server = APIServer(store)
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    c = ApiClient(f"http://127.0.0.1:{port}")
    try:
        yield c
    finally:
        await c.close()
        await server.stop()
        await store.close()


async def wait_for(fn: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if fn():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_declared_controller_reconciles_its_keys_and_retries_api_errors(client: ApiClient) -> None:
    """A toy controller: every ConfigMap `x` gets a ConfigMap `x-copy` with the same data; a Service
    event maps to the ConfigMap of the same name; the first reconcile fails and is retried."""
    runner = ControllerRunner(client, resync_seconds=3600, tick_seconds=0.05)
    cms = runner.informer(CONFIGMAPS)
    seen: list[str] = []
    failed: set[str] = set()

    async def reconcile(key: str) -> None:
        seen.append(key)
        ns, _, name = key.partition("/")
        if name.endswith("-copy"):
            return
        if key not in failed:
            failed.add(key)
            raise ApiError(500, "InternalError", "try again")
        cm = cms.get(name, ns)
        if cm is not None:
            copy: Obj = {"metadata": {"name": f"{name}-copy"}, "data": dict(cm.get("data") or {})}
            await client.create(CONFIGMAPS, copy, ns)

    loop = runner.register(Controller(
        "copier", reconcile, workers=2, all_keys=lambda: [], watches=(
            Watch(CONFIGMAPS, own_key),
            Watch(SERVICES, lambda et, svc, old: [f"default/{svc['metadata']['name']}"]))))
    with pytest.raises(ValueError, match="registered already"):
        runner.register(Controller("copier", reconcile))
    await runner.start()
    try:
        await client.create(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"k": "v"}}, "default")
        await wait_for(lambda: cms.get("a-copy", "default") is not None)
        assert (cms.get("a-copy", "default") or {}).get("data") == {"k": "v"}
        assert loop.errors == 1 and seen.count("default/a") == 2
        await client.create(SERVICES, {"metadata": {"name": "svc1"},
                                       "spec": {"ports": [{"port": 80}]}}, "default")
        await wait_for(lambda: "default/svc1" in seen)
    finally:
        await runner.stop()


async def test_periodic_controller_and_cache_hooks_run_before_controllers(client: ApiClient) -> None:
    runner = ControllerRunner(client, resync_seconds=3600, tick_seconds=0.05)
    order: list[str] = []
    runner.add_cache_hook(CONFIGMAPS, lambda et, obj, old: order.append(f"hook {et}"))
    ticks: list[str] = []

    async def reconcile(key: str) -> None:
        ticks.append(key)

    def keys(et: str, obj: Obj, old: Obj | None) -> list[str]:
        order.append(f"map {et}")
        return []

    runner.register(Controller("ticker", reconcile, period=0.1, all_keys=lambda: ["k"],
                               watches=(Watch(CONFIGMAPS, keys),)))
    await runner.start()
    try:
        await client.create(CONFIGMAPS, {"metadata": {"name": "b"}}, "default")
        await wait_for(lambda: len(ticks) >= 3 and "map ADDED" in order)
        assert order[order.index("map ADDED") - 1] == "hook ADDED"
    finally:
        await runner.stop()


async def test_a_worker_lets_the_loop_run_while_it_drains_a_queue(client: ApiClient) -> None:
    """Reconciles that never suspend (an in-process client) still leave the event loop to others
    every few milliseconds, so informers and requests are not starved by a long queue."""
    runner = ControllerRunner(client, resync_seconds=3600, tick_seconds=3600)
    done = asyncio.Event()
    count = 0

    async def reconcile(key: str) -> None:
        nonlocal count
        end = time.perf_counter() + 0.002  # 2 ms of work, no await: completes without suspending
        while time.perf_counter() < end:
            pass
        count += 1
        if count == 50:
            done.set()

    runner.register(Controller("busy", reconcile, all_keys=lambda: [f"k{i}" for i in range(50)]))
    gaps: list[float] = []

    async def other() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            if 0 < count < 50:
                gaps.append(now - last)
            last = now

    await runner.start()
    try:
        await asyncio.wait_for(asyncio.gather(other(), done.wait()), 10)
    finally:
        await runner.stop()
    assert count == 50
    # the other task ran all along (50 x 2 ms of work), not only before the first or after the last
    assert len(gaps) >= 10
    assert sorted(gaps)[len(gaps) // 2] < 0.05
