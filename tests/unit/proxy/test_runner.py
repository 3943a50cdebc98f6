"""ProxyRunner against an in-memory API (list+watch) and FakeNft: full sync, deltas, errors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from fakeapi import FakeApi  # a small list+watch API from the DNS area, reused as a test double
from proxy_fixtures import ep, eslice, port, svc

from podnet.client.client import ApiClient
from podnet.core.config import ClusterConfig
from podnet.model.kinds import ENDPOINTSLICES, NODES, SERVICES
from podnet.proxy.fake import FakeNft, Packet
from podnet.proxy.healthcheck import HealthChecks
from podnet.proxy.metrics import ProxyMetrics
from podnet.proxy.nft import NftError
from podnet.proxy.runner import ProxyRunner, udp_conntrack_commands

NODE_IP = "172.31.5.11"


class FlakyNft(FakeNft):
    def __init__(self) -> None:
        super().__init__()
        self.fail_next = 0

    def apply(self, text: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise NftError("nft -f - failed: Error: Could not process rule: injected")
        super().apply(text)


def node(name: str, ip: str, cidr: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    await fake.start(unix_path=str(tmp_path / "api.sock"))
    fake.put(NODES, node("n1", NODE_IP, "10.244.1.0/24"))
    fake.put(NODES, node("n2", "172.31.5.12", "10.244.2.0/24"))
    try:
        yield fake
    finally:
        await fake.stop()


Started = tuple[ProxyRunner, FlakyNft, list[list[str]], "asyncio.Task[None]"]


@pytest.fixture
async def started(api: FakeApi) -> AsyncIterator[Callable[..., Awaitable[Started]]]:
    tasks: list[asyncio.Task[None]] = []
    clients: list[ApiClient] = []
    runners: list[ProxyRunner] = []

    async def start(health: HealthChecks | None = None, full_sync_interval: float = 300.0) -> Started:
        client = ApiClient(api.url)
        clients.append(client)
        nft = FlakyNft()
        flushed: list[list[str]] = []

        async def record(cmds: list[list[str]]) -> None:
            flushed.extend(cmds)

        r = ProxyRunner(client, "n1", NODE_IP, ClusterConfig(name="t"), nft, metrics=ProxyMetrics(),
                        conntrack=record, health=health, min_interval=0.01,
                        full_sync_interval=full_sync_interval)
        runners.append(r)
        t = asyncio.create_task(r.run())
        tasks.append(t)
        await asyncio.wait_for(r.synced_once.wait(), 5)
        return r, nft, flushed, t

    try:
        yield start
    finally:
        for t in tasks:
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        for c in clients:
            await c.close()


async def test_full_sync_then_deltas(api: FakeApi, started: Callable[..., Awaitable[Started]]) -> None:
    api.put(SERVICES, svc("web", "10.96.0.20", [port(80, 8080), port(53, 53, "dns", "UDP")]))
    api.put(ENDPOINTSLICES, eslice("web", [ep("10.244.1.5", "n1"), ep("10.244.2.5", "n2")],
                                   [("", 8080, "TCP"), ("dns", 53, "UDP")]))
    r, nft, flushed, _ = await started()
    assert nft.applied[0].startswith("add table ip podnet\ndelete table ip podnet\n")
    await until(lambda: len(nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).candidates) == 2)
    n_applied = len(nft.applied)
    api.put(ENDPOINTSLICES, eslice("web", [ep("10.244.1.5", "n1")], [("", 8080, "TCP"), ("dns", 53, "UDP")]))
    await until(lambda: len(nft.applied) > n_applied)
    delta = nft.applied[-1]
    assert "delete table" not in delta and "chain ip podnet ep-1" in delta and "delete element" in delta
    assert nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).candidates == [("10.244.1.5", 8080)]
    # the removed UDP endpoint's conntrack entries are flushed
    assert ["-p", "udp", "--reply-src", "10.244.2.5", "--reply-port-src", "53"] in flushed
    assert r.metrics.partial_syncs >= 1 and r.metrics.failed_syncs == 0
    assert r.metrics.programming.n >= 1  # change → kernel latency observed


async def test_nft_error_is_counted_and_followed_by_full_sync(
        api: FakeApi, started: Callable[..., Awaitable[Started]]) -> None:
    api.put(SERVICES, svc("web", "10.96.0.20", [port(80, 8080)]))
    r, nft, _, _ = await started()
    nft.fail_next = 1
    api.put(ENDPOINTSLICES, eslice("web", [ep("10.244.1.5", "n1")], [("", 8080, "TCP")]))
    await until(lambda: r.metrics.failed_syncs == 1)
    await until(lambda: nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).candidates
                == [("10.244.1.5", 8080)])
    assert nft.applied[-1].startswith("add table ip podnet\ndelete table")
    text = r.metrics.render()
    assert "podnet_proxy_sync_failures_total 1" in text
    assert "injected" in r.metrics.last_error


async def test_bad_items_are_skipped_but_the_rest_syncs(
        api: FakeApi, started: Callable[..., Awaitable[Started]]) -> None:
    api.put(SERVICES, svc("good", "10.96.0.20", [port(80, 8080)]))
    api.put(SERVICES, svc("bad", "10.96.0.21", [port(80, 8080)]))
    api.put(ENDPOINTSLICES, eslice("good", [ep("10.244.1.5", "n1")], [("", 8080, "TCP")]))
    api.put(ENDPOINTSLICES, eslice("bad", [ep("10.9.9.9", "n1")], [("", 8080, "TCP")]))
    r, nft, _, _ = await started()
    assert nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).candidates == [("10.244.1.5", 8080)]
    assert nft.trace(Packet("10.244.1.9", "10.96.0.21", 80)).verdict == "reject"
    assert r.problems == ["EndpointSlice default/bad-abc: endpoint address 10.9.9.9 is outside every "
                          "pod CIDR: skipped"]
    assert "podnet_proxy_skipped_items 1" in r.metrics.render()


async def test_health_check_node_port_answers_like_kube_proxy(
        api: FakeApi, started: Callable[..., Awaitable[Started]]) -> None:
    hc = free_port()
    api.put(SERVICES, svc("loc", "10.96.0.23", [port(80, 8080, node_port=30082)], type_="LoadBalancer",
                          externalTrafficPolicy="Local", healthCheckNodePort=hc, lb_ips=["172.31.5.201"]))
    api.put(ENDPOINTSLICES, eslice("loc", [ep("10.244.2.6", "n2")], [("", 8080, "TCP")]))
    health = HealthChecks(host="127.0.0.1")
    _, _, _, _ = await started(health)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{hc}/") as resp:
                assert resp.status == 503
                assert json.loads(await resp.text())["localEndpoints"] == 0
            api.put(ENDPOINTSLICES, eslice("loc", [ep("10.244.2.6", "n2"), ep("10.244.1.6", "n1")],
                                           [("", 8080, "TCP")]))
            for _ in range(200):
                async with s.get(f"http://127.0.0.1:{hc}/") as resp:
                    if resp.status == 200:
                        body = json.loads(await resp.text())
                        break
                await asyncio.sleep(0.02)
            assert body == {"service": {"namespace": "default", "name": "loc"}, "localEndpoints": 1,
                            "serviceProxyHealthy": True}
    finally:
        await health.close()


def test_udp_conntrack_flush_for_frontends_that_gain_endpoints() -> None:
    from proxy_fixtures import state_of
    s = [svc("d", "10.96.0.10", [port(53, 53, "dns", "UDP")])]
    old = state_of(s, [])
    new = state_of(s, [eslice("d", [ep("10.244.1.3", "n1")], [("dns", 53, "UDP")])], previous=old)
    assert udp_conntrack_commands(old, new) == [["-p", "udp", "--orig-dst", "10.96.0.10", "--dport", "53"]]


async def test_periodic_full_sync_repairs_a_flushed_table(
        api: FakeApi, started: Callable[..., Awaitable[Started]]) -> None:
    api.put(SERVICES, svc("web", "10.96.0.20", [port(80, 8080)]))
    api.put(ENDPOINTSLICES, eslice("web", [ep("10.244.1.5", "n1")], [("", 8080, "TCP")]))
    r, nft, _, _ = await started(full_sync_interval=0.2)
    nft.apply("delete table ip podnet\n")  # someone removed our rules
    await until(lambda: ("ip", "podnet") in nft.tables and r.metrics.full_syncs >= 2)
    assert nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).candidates == [("10.244.1.5", 8080)]
