"""ServiceHooks plugged into the real API server: what a client sees over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from podnet.allocators import LB_IP_ANNOTATION, ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient, ApiError
from podnet.model.kinds import SERVICES, Obj
from podnet.store.memory import MemoryStore


@pytest.fixture
async def api() -> AsyncIterator[tuple[ApiClient, ServiceHooks, MemoryStore]]:
    store = MemoryStore()
    hooks = ServiceHooks("10.96.0.0/16", (30000, 32767), "172.31.5.0/24")
    await hooks.load(store)
    server = APIServer(store, hooks={"services": hooks})
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    client = ApiClient(f"http://127.0.0.1:{port}")
    try:
        yield client, hooks, store
    finally:
        await client.close()
        await server.stop()
        await store.close()


def svc(name: str, **spec: object) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}], **spec}}


async def test_200_concurrent_creates_over_http_never_collide(
        api: tuple[ApiClient, ServiceHooks, MemoryStore]) -> None:
    client, hooks, _ = api
    created = await asyncio.gather(*(client.create(SERVICES, svc(f"s{i}", type="LoadBalancer"))
                                     for i in range(200)))
    ips = {s["spec"]["clusterIP"] for s in created}
    ports = {s["spec"]["ports"][0]["nodePort"] for s in created}
    lbs = {s["metadata"]["annotations"][LB_IP_ANNOTATION] for s in created}
    assert len(ips) == len(ports) == len(lbs) == 200
    assert hooks.cluster_ips.used() == 200 and hooks.node_ports.used() == 200


async def test_apply_again_without_allocated_fields_keeps_them(
        api: tuple[ApiClient, ServiceHooks, MemoryStore]) -> None:
    client, _, _ = api
    first = await client.create(SERVICES, svc("web", type="NodePort"))
    again = svc("web", type="NodePort")  # the manifest as the user wrote it: no clusterIP, no nodePort
    again["metadata"]["namespace"] = "default"
    updated = await client.update(SERVICES, again)
    assert updated["spec"]["clusterIP"] == first["spec"]["clusterIP"]
    assert updated["spec"]["ports"][0]["nodePort"] == first["spec"]["ports"][0]["nodePort"]


async def test_taken_node_port_error_reaches_the_client(
        api: tuple[ApiClient, ServiceHooks, MemoryStore]) -> None:
    client, _, _ = api
    await client.create(SERVICES, svc("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    with pytest.raises(ApiError) as e:
        await client.create(SERVICES, svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert e.value.code == 422
    assert e.value.status["message"] == ('Service "b" is invalid: spec.ports[0].nodePort: Invalid value: '
                                         "30080: provided port is already allocated")


async def test_delete_frees_and_restart_rebuilds(api: tuple[ApiClient, ServiceHooks, MemoryStore]) -> None:
    client, hooks, store = api
    a = await client.create(SERVICES, svc("a", clusterIP="10.96.0.10"))
    await client.create(SERVICES, svc("b", type="NodePort"))
    await client.delete(SERVICES, "a", "default")
    assert not hooks.cluster_ips.has(a["spec"]["clusterIP"])
    fresh = ServiceHooks("10.96.0.0/16", (30000, 32767), "172.31.5.0/24")
    await fresh.load(store)
    assert fresh.cluster_ips.used() == hooks.cluster_ips.used() == 1
    assert fresh.node_ports.used() == 1
