"""The EndpointSlice controller in the control plane's shape (in-process client): one reconcile per
change, not one more for the echo of its own write; changes made by others still reconcile; pods are
found by node through an index kept current by binds too."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from podnet.allocators import ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient
from podnet.controllers.inprocess import InProcessClient
from podnet.controllers.runner import ControllerManager
from podnet.core.config import ClusterConfig
from podnet.model.kinds import ENDPOINTSLICES, NODES, PODS, SERVICES, Obj
from podnet.store.memory import MemoryStore


class Env:
    def __init__(self, client: ApiClient, mgr: ControllerManager):
        self.client, self.mgr = client, mgr

    async def until(self, fn: Any, what: str, timeout: float = 5.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            got = await fn()
            if got:
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    async def slices(self, svc: str) -> list[Obj]:
        lst = await self.client.list(ENDPOINTSLICES, "default",
                                     label_selector=f"kubernetes.io/service-name={svc}")
        return list(lst["items"])


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    store = MemoryStore()
    server = APIServer(store, hooks={"services": ServiceHooks("10.96.0.0/12", (30000, 32767))})
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    client = ApiClient(f"http://127.0.0.1:{port}")
    ctl = InProcessClient(server, f"http://127.0.0.1:{port}")
    mgr = ControllerManager(ctl, ClusterConfig(name="t", lb_pool="none"), resync_seconds=3600,
                            node_check_seconds=3600)
    try:
        await mgr.start()
        yield Env(client, mgr)
    finally:
        await mgr.stop()
        await client.close()
        await ctl.close()
        await server.stop()
        await store.close()


async def ready_pod(c: ApiClient, name: str, ip: str, app: str = "web", node: str = "n1") -> None:
    p = await c.create(PODS, {"metadata": {"name": name, "labels": {"app": app}},
                              "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}},
                       "default")
    p["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]}
    await c.update_status(PODS, p)


async def test_own_writes_are_not_reconciled_again_but_others_edits_are(env: Env) -> None:
    c = env.client
    for i in range(3):
        await ready_pod(c, f"web-{i}", f"10.244.0.{i + 10}")
    loop = env.mgr.loops["endpoints"]
    await asyncio.sleep(0.2)
    before = loop.syncs
    await c.create(SERVICES, {"metadata": {"name": "web"},
                              "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}, "default")

    async def three() -> list[Obj]:
        got = await env.slices("web")
        return got if got and len(got[0].get("endpoints") or []) == 3 else []
    (sl,) = await env.until(three, "the slice with three endpoints")
    await asyncio.sleep(0.3)  # the slice's and Endpoints' own ADDED events have arrived by now
    assert loop.syncs - before == 1  # the Service's event; not one more for the slice's echo
    # someone else edits the slice: that event is not an echo, so the controller puts it right
    sl["endpoints"] = sl["endpoints"][:1]
    await c.update(ENDPOINTSLICES, sl)
    restored = await env.until(three, "the slice restored")
    want = {"10.244.0.10", "10.244.0.11", "10.244.0.12"}
    assert {e["addresses"][0] for e in restored[0]["endpoints"]} == want


async def test_pods_by_node_follow_creates_binds_and_deletes(env: Env) -> None:
    c = env.client
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    await c.create(NODES, {"metadata": {"name": "n1"}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": now, "lastTransitionTime": now}]}})
    await ready_pod(c, "a", "10.244.0.2", node="n1")
    await c.create(PODS, {"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
                   "default")
    m = env.mgr

    async def both_on_n1() -> bool:
        return m.pods_by_node.get(("", "n1")) == {"default/a", "default/b"}
    await env.until(both_on_n1, "the scheduler's bind of b to n1 in the index")
    await c.delete(PODS, "a", "default", grace_period=0)

    async def only_b() -> bool:
        return m.pods_by_node.get(("", "n1")) == {"default/b"}
    await env.until(only_b, "a gone from the index")
