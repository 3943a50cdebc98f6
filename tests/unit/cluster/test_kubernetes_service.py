"""The `kubernetes` Service as kube-apiserver keeps it: its port's targetPort, its Endpoints and its
EndpointSlice carry the API's advertise address (the `--listen` address when other machines join, else the
host's address on the node network), set again at every control-plane start, so that a changed address or
a moved API port is followed; a cluster without a node network gets no endpoints."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from podnet.allocators.service_hooks import ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient, ApiError
from podnet.cluster.bootstrap import bootstrap_cluster_objects, keep_kubernetes_service
from podnet.core.config import ClusterConfig
from podnet.model.kinds import ENDPOINTS, ENDPOINTSLICES, SERVICES, Obj
from podnet.store.memory import MemoryStore

ADMIN = "admin-token"


@pytest.fixture
async def admin() -> AsyncIterator[ApiClient]:
    store = MemoryStore(history=50)
    hooks = ServiceHooks("10.96.0.0/12", (30000, 32767))
    await hooks.load(store)
    api = APIServer(store, hooks={"services": hooks}, tokens=[ADMIN])
    await api.bootstrap()
    port = await api.start("127.0.0.1", 0)
    try:
        async with ApiClient(f"http://127.0.0.1:{port}", ADMIN) as client:
            yield client
    finally:
        await api.stop()
        await store.close()


def _cfg(**kw: object) -> ClusterConfig:
    return ClusterConfig(name="kapi", node_network="172.30.9.0/24", api_port=40123, dns=False, **kw)  # type: ignore[arg-type]


async def _published(admin: ApiClient) -> tuple[list[str], list[str], object]:
    eps: Obj = await admin.get(ENDPOINTS, "kubernetes", "default")
    sl: Obj = await admin.get(ENDPOINTSLICES, "kubernetes", "default")
    svc: Obj = await admin.get(SERVICES, "kubernetes", "default")
    assert eps["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert sl["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert sl["endpoints"][0]["conditions"] == {"ready": True}
    return ([f"{a['ip']}:{p['port']}" for s in eps["subsets"] for a in s["addresses"] for p in s["ports"]],
            [f"{a}:{p['port']}" for e in sl["endpoints"] for a in e["addresses"] for p in sl["ports"]],
            svc["spec"]["ports"][0]["targetPort"])


def test_the_advertise_address_is_the_listen_address_when_there_is_one() -> None:
    assert _cfg().api_advertise == ("172.30.9.1", 40123)
    assert _cfg(listen="192.0.2.7:6443").api_advertise == ("192.0.2.7", 6443)
    assert ClusterConfig(name="x").api_advertise == ("", 0)


async def test_without_listen_the_endpoint_is_the_hosts_node_network_address(admin: ApiClient) -> None:
    await bootstrap_cluster_objects(admin, _cfg())
    assert await _published(admin) == (["172.30.9.1:40123"], ["172.30.9.1:40123"], 40123)


async def test_with_listen_every_node_is_sent_to_the_listen_address(admin: ApiClient) -> None:
    await bootstrap_cluster_objects(admin, _cfg(listen="192.0.2.7:6443"))
    assert await _published(admin) == (["192.0.2.7:6443"], ["192.0.2.7:6443"], 6443)


async def test_a_restart_with_another_address_or_port_moves_the_endpoints(admin: ApiClient) -> None:
    """A cluster made before `kubernetes` pointed at the --listen address, or whose API port moved at
    `podnet start`, is corrected by the next control-plane start; an unchanged start writes nothing."""
    await bootstrap_cluster_objects(admin, _cfg())
    moved = _cfg(listen="192.0.2.7:6443")
    await bootstrap_cluster_objects(admin, moved)
    assert await _published(admin) == (["192.0.2.7:6443"], ["192.0.2.7:6443"], 6443)
    before = [(await admin.get(rt, "kubernetes", "default"))["metadata"]["resourceVersion"]
              for rt in (ENDPOINTS, ENDPOINTSLICES, SERVICES)]
    await bootstrap_cluster_objects(admin, moved)
    after = [(await admin.get(rt, "kubernetes", "default"))["metadata"]["resourceVersion"]
             for rt in (ENDPOINTS, ENDPOINTSLICES, SERVICES)]
    assert after == before
    svc = await admin.get(SERVICES, "kubernetes", "default")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]


async def test_no_node_network_no_endpoints(admin: ApiClient) -> None:
    await bootstrap_cluster_objects(admin, ClusterConfig(name="kapi", dns=False))
    assert (await admin.get(SERVICES, "kubernetes", "default"))["spec"]["clusterIP"] == "10.96.0.1"
    assert (await admin.list(ENDPOINTS, "default"))["items"] == []


async def test_deleted_endpoints_come_back_within_a_period(admin: ApiClient) -> None:
    """As kube-apiserver's endpoint reconciler: the control plane re-checks them every period."""
    cfg = _cfg(listen="192.0.2.7:6443")
    await bootstrap_cluster_objects(admin, cfg)
    await admin.delete(ENDPOINTS, "kubernetes", "default")
    eps = await admin.get(ENDPOINTSLICES, "kubernetes", "default")
    eps["endpoints"] = [{"addresses": ["198.51.100.9"], "conditions": {"ready": True}}]
    await admin.update(ENDPOINTSLICES, eps)
    task = asyncio.ensure_future(keep_kubernetes_service(admin, cfg, period=0.05))
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            try:
                if (await _published(admin))[:2] == (["192.0.2.7:6443"], ["192.0.2.7:6443"]):
                    break
            except ApiError:
                continue
        assert await _published(admin) == (["192.0.2.7:6443"], ["192.0.2.7:6443"], 6443)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
