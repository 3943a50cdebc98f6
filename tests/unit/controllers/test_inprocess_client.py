"""InProcessClient answers as the same server does over HTTP: objects, errors (code and Status) and
watch events, for every verb the controllers use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from podnet.allocators import ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient, ApiError, WatchEvent
from podnet.controllers.inprocess import InProcessClient
from podnet.model.kinds import CONFIGMAPS, ENDPOINTSLICES, NAMESPACES, PODS, SERVICES, Obj
from podnet.store.memory import MemoryStore

VOLATILE = ("uid", "creationTimestamp", "resourceVersion", "name")


class Pair:
    def __init__(self, server: APIServer, store: MemoryStore, http: ApiClient, local: InProcessClient):
        self.server, self.store, self.http, self.local = server, store, http, local


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    store = MemoryStore(history=50)
    hooks = ServiceHooks("10.96.0.0/12", (30000, 32767))
    await hooks.load(store)
    server = APIServer(store, hooks={"services": hooks})
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    http = ApiClient(f"http://127.0.0.1:{port}")
    local = InProcessClient(server, f"http://127.0.0.1:{port}")
    try:
        yield Pair(server, store, http, local)
    finally:
        await http.close()
        await local.close()
        await server.stop()
        await store.close()


def same_shape(a: Obj, b: Obj) -> tuple[Obj, Obj]:
    """Both objects without the fields that differ between any two creates."""
    def strip(o: Obj) -> Obj:
        o = dict(o)
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k not in VOLATILE}
        spec = dict(o.get("spec") or {})
        for k in ("clusterIP", "clusterIPs"):
            spec.pop(k, None)
        if spec:
            o["spec"] = spec
        return o
    return strip(a), strip(b)


async def error_of(call: Any) -> ApiError:
    with pytest.raises(ApiError) as e:
        await call
    return e.value


def eslice(name: str, **extra: Any) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.0.5"],
                           "conditions": {"ready": True, "serving": True, "terminating": False}}],
            **extra}


async def test_create_get_list_as_over_http(pair: Pair) -> None:
    a = await pair.http.create(ENDPOINTSLICES, eslice("a"))
    b = await pair.local.create(ENDPOINTSLICES, eslice("b"))
    assert same_shape(a, b)[0] == same_shape(a, b)[1]
    assert b["metadata"]["name"] == "b" and b["metadata"]["uid"] and b["metadata"]["resourceVersion"]
    assert await pair.local.get(ENDPOINTSLICES, "b", "default") == await pair.http.get(ENDPOINTSLICES, "b",
                                                                                         "default")
    assert await pair.local.list(ENDPOINTSLICES, "default") == await pair.http.list(ENDPOINTSLICES, "default")
    sel = await pair.local.list(ENDPOINTSLICES, "default", field_selector="metadata.name=b")
    assert [o["metadata"]["name"] for o in sel["items"]] == ["b"]


async def test_service_create_runs_the_hooks(pair: Pair) -> None:
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    got = await pair.local.create(SERVICES, svc, "default")
    assert got["spec"]["clusterIP"].startswith("10.") and got["spec"]["ports"][0]["targetPort"] == 80
    assert svc == {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}


async def test_body_is_what_json_would_carry(pair: Pair) -> None:
    body = eslice("t")
    body["endpoints"][0]["addresses"] = ("10.244.0.9",)  # a tuple, as Python code might build it
    body["metadata"]["bogus"] = 1  # unknown fields are dropped, as from a request body
    got = await pair.local.create(ENDPOINTSLICES, body)
    assert got["endpoints"][0]["addresses"] == ["10.244.0.9"]
    assert "bogus" not in got["metadata"]


@pytest.mark.parametrize("case", ["exists", "invalid", "wrong type", "no namespace"])
async def test_create_errors_as_over_http(pair: Pair, case: str) -> None:
    await pair.http.create(ENDPOINTSLICES, eslice("dup"))
    body, ns = eslice("dup"), None
    if case == "invalid":
        body = eslice("bad", addressType="IPv5")
    elif case == "wrong type":
        body = eslice("bad2", ports=[{"port": "80"}])
    elif case == "no namespace":
        body, ns = eslice("x"), "nowhere"
        body["metadata"].pop("namespace")
    e_http = await error_of(pair.http.create(ENDPOINTSLICES, body, ns))
    e_local = await error_of(pair.local.create(ENDPOINTSLICES, body, ns))
    assert (e_local.code, e_local.status) == (e_http.code, e_http.status)
    assert e_local.code in (404, 409, 422)


async def test_update_status_and_conflicts_as_over_http(pair: Pair) -> None:
    await pair.http.create(NAMESPACES, {"metadata": {"name": "n1"}})
    pod = await pair.http.create(PODS, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}}, "n1")
    stale = dict(pod)
    pod["metadata"]["labels"] = {"a": "b"}
    updated = await pair.local.update(PODS, pod)
    assert updated["metadata"]["labels"] == {"a": "b"}
    assert int(updated["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    e_http = await error_of(pair.http.update(PODS, stale))
    e_local = await error_of(pair.local.update(PODS, stale))
    assert (e_local.code, e_local.status) == (e_http.code, e_http.status) and e_local.code == 409
    updated["status"] = {"phase": "Running", "podIP": "10.244.1.2", "podIPs": [{"ip": "10.244.1.2"}]}
    updated["spec"]["nodeName"] = "ignored-by-status"
    st = await pair.local.update_status(PODS, updated)
    assert st["status"]["podIP"] == "10.244.1.2" and not st["spec"].get("nodeName")
    gone = {"metadata": {"name": "nope", "namespace": "n1"}, "spec": {"containers": []}}
    e_http = await error_of(pair.http.update(PODS, gone))
    e_local = await error_of(pair.local.update(PODS, gone))
    assert (e_local.code, e_local.status) == (e_http.code, e_http.status) and e_local.code == 404


async def test_delete_as_over_http(pair: Pair) -> None:
    for n in ("c1", "c2"):
        await pair.http.create(CONFIGMAPS, {"metadata": {"name": n}, "data": {"k": "v"}}, "default")
    a = await pair.http.delete(CONFIGMAPS, "c1", "default")
    b = await pair.local.delete(CONFIGMAPS, "c2", "default")
    assert same_shape(a, b)[0] == same_shape(a, b)[1]
    e_http = await error_of(pair.http.delete(CONFIGMAPS, "c1", "default"))
    e_local = await error_of(pair.local.delete(CONFIGMAPS, "c1", "default"))
    assert (e_local.code, e_local.status) == (e_http.code, e_http.status) and e_local.code == 404


async def collect(agen: AsyncIterator[WatchEvent], n: int) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    async for ev in agen:
        if ev.type == "BOOKMARK":
            continue
        out.append((ev.type, ev.object["metadata"]["name"], ev.object["kind"]))
        if len(out) == n:
            break
    return out


async def test_watch_from_a_resource_version_as_over_http(pair: Pair) -> None:
    start = (await pair.http.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    await pair.http.create(CONFIGMAPS, {"metadata": {"name": "w1"}}, "default")
    cm = await pair.http.create(CONFIGMAPS, {"metadata": {"name": "w2"}}, "default")
    cm["data"] = {"x": "y"}
    await pair.http.update(CONFIGMAPS, cm)
    await pair.http.delete(CONFIGMAPS, "w1", "default")
    want = [("ADDED", "w1", "ConfigMap"), ("ADDED", "w2", "ConfigMap"), ("MODIFIED", "w2", "ConfigMap"),
            ("DELETED", "w1", "ConfigMap")]
    over_http = await asyncio.wait_for(
        collect(pair.http.watch(CONFIGMAPS, "default", resource_version=start), 4), 5)
    local = await asyncio.wait_for(
        collect(pair.local.watch(CONFIGMAPS, "default", resource_version=start), 4), 5)
    assert local == over_http == want
    # live events after the watch started
    agen = pair.local.watch(CONFIGMAPS, None, resource_version=str(await pair.store.current_rv()))
    task = asyncio.create_task(collect(agen, 1))
    await asyncio.sleep(0.05)
    await pair.http.create(CONFIGMAPS, {"metadata": {"name": "live"}}, "default")
    assert await asyncio.wait_for(task, 5) == [("ADDED", "live", "ConfigMap")]


async def test_watch_too_old_is_410_as_over_http(pair: Pair) -> None:
    for i in range(60):  # the store keeps 50 events
        await pair.http.create(CONFIGMAPS, {"metadata": {"name": f"h{i}"}}, "default")
    e_http = await error_of(collect(pair.http.watch(CONFIGMAPS, "default", resource_version="2"), 1))
    e_local = await error_of(collect(pair.local.watch(CONFIGMAPS, "default", resource_version="2"), 1))
    assert (e_local.code, e_local.reason) == (e_http.code, e_http.reason) == (410, "Expired")
    assert e_local.status["message"] == e_http.status["message"]


async def test_watch_ends_when_the_store_closes(pair: Pair) -> None:
    agen = pair.local.watch(CONFIGMAPS, None, resource_version=str(await pair.store.current_rv()))
    task = asyncio.create_task(collect(agen, 1))
    await asyncio.sleep(0.05)
    await pair.store.close()
    assert await asyncio.wait_for(task, 5) == []
    with contextlib.suppress(Exception):
        await agen.aclose()  # type: ignore[attr-defined]
