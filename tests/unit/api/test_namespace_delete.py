"""Deleting a big namespace (issue 19 item 13): the DELETED event kubectl waits for, on every store,
and other requests answered while the namespace is emptied.

`kubectl delete ns X` lists `namespaces?fieldSelector=metadata.name=X&resourceVersion=0`, then
watches from the list's resourceVersion with the same field selector and allowWatchBookmarks, and
returns when a DELETED event arrives (kubectl/pkg/cmd/wait/delete.go IsDeleted).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from api_support import Api, make_api, pod, service

from podnet.store import MemoryStore, SqliteStore
from podnet.store.base import Store
from podnet.store.etcd import EtcdStore
from podnet.store.etcd_local import etcd_binary, shared_etcd


def _etcd(directory: Path) -> Store:
    """On this process's shared throwaway etcd (stopped at exit: other modules' fixtures may hold it)."""
    if etcd_binary() is None:
        pytest.skip("etcd is not installed (/usr/bin/etcd missing; apt-get install etcd-server)")
    return EtcdStore(shared_etcd().endpoints, prefix=f"/podnet-test/ns-{uuid.uuid4().hex[:8]}")


STORES: dict[str, Callable[[Path], Store]] = {
    "memory": lambda _d: MemoryStore(),
    "sqlite": lambda d: SqliteStore(d / "store.db"),
    "etcd": _etcd,
}


@pytest.fixture(params=sorted(STORES))
async def store_api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    with tempfile.TemporaryDirectory(prefix="podnet-nsdel-") as d:
        store = STORES[request.param](Path(d))
        api = await make_api(store=store)
        try:
            yield api
        finally:
            await api.client.close()
            await store.close()


async def _fill(api: Api, ns: str, services: int, bound_pods: int) -> None:
    code, _ = await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    assert code == 201
    for i in range(services):
        code, body = await api.call("POST", f"/api/v1/namespaces/{ns}/services", service(f"s{i}"))
        assert code == 201, body
    for i in range(bound_pods):
        code, body = await api.call("POST", f"/api/v1/namespaces/{ns}/pods", pod(f"p{i}", node="n1"))
        assert code == 201, body


async def _events_until_deleted(api: Api, ns: str, rv: str, timeout: float) -> list[str]:
    """Watch as kubectl's IsDeleted does; the event types seen, up to the first DELETED."""
    params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": rv,
              "fieldSelector": f"metadata.name={ns}", "timeoutSeconds": "60"}
    seen: list[str] = []
    async with api.client.get("/api/v1/namespaces", params=params) as resp:
        assert resp.status == 200
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(resp.content.readline(), deadline - time.monotonic())
            assert line, f"the watch ended before DELETED (saw {seen})"
            ev = json.loads(line)
            seen.append(ev["type"])
            if ev["type"] == "DELETED":
                assert ev["object"]["metadata"]["name"] == ns and ev["object"]["kind"] == "Namespace"
                return seen
    raise AssertionError(f"no DELETED event within {timeout} s (saw {seen})")


async def test_kubectl_style_watch_sees_the_namespace_deleted_when_its_pods_finish_later(
        store_api: Api) -> None:
    api = store_api
    await _fill(api, "load", 300, 3)
    code, lst = await api.call("GET", "/api/v1/namespaces",
                               params={"fieldSelector": "metadata.name=load", "resourceVersion": "0",
                                       "limit": "500"})
    assert code == 200 and [i["metadata"]["name"] for i in lst["items"]] == ["load"]
    code, _ = await api.call("DELETE", "/api/v1/namespaces/load")
    assert code == 200
    watch = asyncio.ensure_future(_events_until_deleted(api, "load", lst["metadata"]["resourceVersion"], 20))
    # the Services go; the bound pods wait for their node agent, and the namespace for them
    for _ in range(200):
        code, svcs = await api.call("GET", "/api/v1/namespaces/load/services")
        if not svcs["items"]:
            break
        await asyncio.sleep(0.05)
    assert svcs["items"] == []
    code, nso = await api.call("GET", "/api/v1/namespaces/load")
    assert code == 200 and nso["status"]["phase"] == "Terminating" and not watch.done()
    for i in range(3):  # what the agent does once the containers stopped
        await api.call("DELETE", f"/api/v1/namespaces/load/pods/p{i}", {"gracePeriodSeconds": 0})
    seen = await watch
    assert seen[-1] == "DELETED"
    code, _ = await api.call("GET", "/api/v1/namespaces/load")
    assert code == 404


async def test_watch_started_after_the_namespace_went_from_an_older_version_still_gets_deleted(
        store_api: Api) -> None:
    api = store_api
    await _fill(api, "late", 50, 0)
    code, lst = await api.call("GET", "/api/v1/namespaces",
                               params={"fieldSelector": "metadata.name=late", "resourceVersion": "0"})
    assert code == 200
    await api.call("DELETE", "/api/v1/namespaces/late")
    for _ in range(200):
        if (await api.call("GET", "/api/v1/namespaces/late"))[0] == 404:
            break
        await asyncio.sleep(0.05)
    # the watch starts after the namespace is gone, from the list's (older) resourceVersion
    seen = await _events_until_deleted(api, "late", lst["metadata"]["resourceVersion"], 10)
    assert seen[-1] == "DELETED"


async def test_requests_are_answered_while_a_big_namespace_is_emptied(api: Api) -> None:
    await _fill(api, "big", 1500, 0)
    code, _ = await api.call("DELETE", "/api/v1/namespaces/big")
    assert code == 200
    # a small GET sent as the cleanup starts is answered while Services are still being deleted:
    # the cleanup gives the event loop back between slices instead of holding it for the whole pass
    await asyncio.sleep(0)
    answered_with_left: list[int] = []
    for _ in range(5):
        code, _ = await api.call("GET", "/api/v1/namespaces/default")
        assert code == 200
        left = len((await api.store.list("services", "big"))[0])
        answered_with_left.append(left)
        if not left:
            break
    assert answered_with_left[0] > 0, answered_with_left
    assert api.server.gc.pacer.yields > 0
    await api.server.gc.idle(30)
    assert (await api.call("GET", "/api/v1/namespaces/big"))[0] == 404


async def test_creates_follow_the_namespace_through_termination_removal_and_recreation(
        store_api: Api) -> None:
    """The namespace check of a create (remembered per namespace where the store tells its writes at
    commit) sees each step at once, on every store."""
    api = store_api
    svc_path = "/api/v1/namespaces/cycle/services"
    code, _ = await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": "cycle"}})
    assert code == 201
    code, _ = await api.call("POST", svc_path, service("a"))
    assert code == 201
    code, _ = await api.call("DELETE", "/api/v1/namespaces/cycle")
    assert code == 200
    code, st = await api.call("POST", svc_path, service("b"))
    assert code == 403 and "because it is being terminated" in st["message"]
    deadline = time.monotonic() + 20
    while True:  # the namespace cleaner empties and removes it
        code, _ = await api.call("GET", "/api/v1/namespaces/cycle")
        if code == 404 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert code == 404
    code, st = await api.call("POST", svc_path, service("c"))
    assert code == 404 and st["message"] == 'namespaces "cycle" not found'
    code, _ = await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": "cycle"}})
    assert code == 201
    code, _ = await api.call("POST", svc_path, service("d"))
    assert code == 201
