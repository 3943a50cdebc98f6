"""The proxy on informers it shares with the rest of the agent: compact caches, relists that keep the
cache dict, handlers removed when the proxy stops while the informers go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakeapi import FakeApi  # the small list+watch test double (tests/support)
from proxy_fixtures import ep, eslice, port, svc
from test_runner import FlakyNft, node, until

from podnet.client.client import ApiClient
from podnet.core.config import ClusterConfig
from podnet.model.kinds import ENDPOINTSLICES, NODES, SERVICES, Obj
from podnet.proxy.fake import Packet
from podnet.proxy.metrics import ProxyMetrics
from podnet.proxy.runner import ProxyInformers, ProxyRunner


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    await fake.start(unix_path=str(tmp_path / "api.sock"))
    fake.put(NODES, node("n1", "172.31.5.11", "10.244.1.0/24"))
    try:
        yield fake
    finally:
        await fake.stop()


async def no_conntrack(_: list[list[str]]) -> None:
    return None


async def test_proxy_on_shared_informers(api: FakeApi) -> None:
    api.put(SERVICES, svc("web", "10.96.0.20", [port(80, 8080)], selector={"app": "web"}))
    api.put(ENDPOINTSLICES, eslice("web", [ep("10.244.1.5", "n1")], [("", 8080, "TCP")]))
    client = ApiClient(api.url)
    informers = ProxyInformers.own(client)
    for inf in informers.all():
        inf.start()
    seen: list[str] = []
    informers.services.add_handler(lambda et, obj, old: seen.append(f"{et} {obj['metadata']['name']}"))
    nft = FlakyNft()
    r = ProxyRunner(client, "n1", "172.31.5.11", ClusterConfig(name="t"), nft, metrics=ProxyMetrics(),
                    conntrack=no_conntrack, min_interval=0.01, shared=informers)
    task = asyncio.create_task(r.run())
    try:
        await check(api, informers, r, nft, seen, task)
    finally:
        for inf in informers.all():
            await inf.stop()
        await client.close()


async def check(api: FakeApi, informers: ProxyInformers, r: ProxyRunner, nft: FlakyNft, seen: list[str],
                task: asyncio.Task[None]) -> None:
    try:
        await asyncio.wait_for(r.synced_once.wait(), 5)
        assert nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).candidates == [("10.244.1.5", 8080)]
        cached: Obj = informers.services.cache["default/web"]
        assert "selector" not in cached["spec"] and "managedFields" not in cached["metadata"]  # compact
        # a relist (after 410 Expired) updates the very same cache dict and reports the differences
        cache = informers.slices.cache
        api.put(ENDPOINTSLICES, eslice("web", [ep("10.244.1.6", "n1")], [("", 8080, "TCP")]))
        await until(lambda: "10.244.1.6" in str(cache.get("default/web-abc")))
        await informers.services.stop()
        api.objects[SERVICES.key].clear()  # gone without a watch event: only a relist can tell
        services = informers.services.cache
        informers.services.start()
        await until(lambda: seen[-1] == "DELETED web")
        assert informers.services.cache is services and services == {} and informers.slices.cache is cache
        await until(lambda: nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).verdict != "dnat")
        assert r.patched_syncs >= 1 and r.metrics.full_syncs == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # the proxy stopped: its handlers are gone, the shared informers still run for the agent
    assert [len(inf.handlers) for inf in informers.all()] == [1, 0, 0]
    api.put(SERVICES, svc("api", "10.96.0.21", [port(80, 8080)]))
    await until(lambda: "default/api" in informers.services.cache)
