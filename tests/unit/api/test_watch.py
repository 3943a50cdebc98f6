"""Watch streams: initial state, resume, Expired, selectors, bookmarks, timeouts, Table events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from api_support import POD_PATH, SVC_PATH, Api, make_api, pod, service

from podnet.api.server import APIServer
from podnet.store.base import Store
from podnet.store.etcd import EtcdStore
from podnet.store.etcd_local import etcd_binary, shared_etcd
from podnet.store.memory import MemoryStore
from podnet.store.sqlite import SqliteStore


async def next_event(resp: ClientResponse, timeout: float = 3.0) -> dict[str, Any]:
    line = await asyncio.wait_for(resp.content.readline(), timeout)
    assert line, "stream ended"
    ev: dict[str, Any] = json.loads(line)
    return ev


async def test_watch_from_zero_sends_current_state_then_changes(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("a"))
    await api.call("POST", SVC_PATH, service("b"))
    async with api.client.get(SVC_PATH, params={"watch": "1", "resourceVersion": "0"}) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        first = [await next_event(resp), await next_event(resp)]
        got = [(e["type"], e["object"]["metadata"]["name"]) for e in first]
        assert got == [("ADDED", "a"), ("ADDED", "b")]
        assert first[0]["object"]["kind"] == "Service"
        await api.call("PATCH", SVC_PATH + "/a", {"metadata": {"labels": {"v": "2"}}},
                       ctype="application/merge-patch+json")
        ev = await next_event(resp)
        assert ev["type"] == "MODIFIED" and ev["object"]["metadata"]["labels"] == {"app": "a", "v": "2"}
        await api.call("DELETE", SVC_PATH + "/b")
        ev = await next_event(resp)
        assert ev["type"] == "DELETED" and ev["object"]["metadata"]["name"] == "b"


async def test_watch_resumes_after_a_resource_version_without_duplicates(api: Api) -> None:
    _, a = await api.call("POST", SVC_PATH, service("a"))
    await api.call("POST", SVC_PATH, service("b"))
    await api.call("POST", "/api/v1/namespaces/kube-system/services", service("other-ns"))
    async with api.client.get(SVC_PATH, params={"watch": "true",
                                                "resourceVersion": a["metadata"]["resourceVersion"]}) as resp:
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "b")
        await api.call("POST", SVC_PATH, service("c"))
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "c")


async def test_all_namespaces_watch_sees_every_namespace(api: Api) -> None:
    async with api.client.get("/api/v1/services", params={"watch": "1"}) as resp:
        await api.call("POST", "/api/v1/namespaces/kube-system/services", service("k"))
        await api.call("POST", SVC_PATH, service("d"))
        got = [(await next_event(resp))["object"]["metadata"]["namespace"] for _ in range(2)]
        assert got == ["kube-system", "default"]


async def test_too_old_resource_version_gives_an_expired_error_event() -> None:
    store = MemoryStore(history=3)
    server = APIServer(store)
    await server.bootstrap()
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    try:
        for i in range(6):
            await client.post(SVC_PATH, json=service(f"s{i}"))
        current = await store.current_rv()
        async with client.get(SVC_PATH, params={"watch": "1", "resourceVersion": "1"}) as resp:
            assert resp.status == 200
            ev = await next_event(resp)
            assert ev == {"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": f"too old resource version: 1 ({current})", "reason": "Expired", "code": 410}}
            assert await asyncio.wait_for(resp.content.readline(), 3) == b""
    finally:
        await client.close()


async def test_selectors_filter_and_turn_leaving_objects_into_deleted(api: Api) -> None:
    await api.call("POST", POD_PATH, pod("x", labels={"app": "web"}))
    await api.call("POST", POD_PATH, pod("y", labels={"app": "db"}))
    async with api.client.get(POD_PATH, params={"watch": "1", "labelSelector": "app=web"}) as resp:
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "x")
        await api.call("PATCH", POD_PATH + "/y", {"metadata": {"labels": {"app": "web"}}},
                       ctype="application/merge-patch+json")
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "y")
        await api.call("PATCH", POD_PATH + "/x", {"metadata": {"labels": {"app": "db"}}},
                       ctype="application/merge-patch+json")
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "x")


async def test_field_selector_on_name_like_kubectl_get_w(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("a"))
    await api.call("POST", SVC_PATH, service("b"))
    async with api.client.get(SVC_PATH, params={"watch": "1", "fieldSelector": "metadata.name=b"}) as resp:
        ev = await next_event(resp)
        assert ev["object"]["metadata"]["name"] == "b"
        await api.call("DELETE", SVC_PATH + "/a")
        await api.call("DELETE", SVC_PATH + "/b")
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "b")


async def test_timeout_seconds_ends_the_stream() -> None:
    store = MemoryStore()
    server = APIServer(store)
    await server.bootstrap()
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with client.get(SVC_PATH, params={"watch": "1", "timeoutSeconds": "1"}) as resp:
            assert await asyncio.wait_for(resp.content.readline(), 5) == b""
        assert 0.9 <= loop.time() - t0 < 3
    finally:
        await client.close()


async def test_bookmarks_carry_the_last_resource_version() -> None:
    store = MemoryStore()
    server = APIServer(store)
    server.watcher.bookmark_every = 0.2
    await server.bootstrap()
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    try:
        params = {"watch": "1", "allowWatchBookmarks": "true", "labelSelector": "app=wanted"}
        async with client.get(SVC_PATH, params=params) as resp:
            await client.post(SVC_PATH, json=service("filtered-out"))
            ev = await next_event(resp)
            assert ev["type"] == "BOOKMARK"
            assert ev["object"] == {"kind": "Service", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": str(await store.current_rv())}}
    finally:
        await client.close()


async def test_table_watch_sends_one_row_tables(api: Api) -> None:
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    async with api.client.get(SVC_PATH, params={"watch": "1"}, headers=headers) as resp:
        await api.call("POST", SVC_PATH, service("t"))
        ev = await next_event(resp)
        assert ev["type"] == "ADDED" and ev["object"]["kind"] == "Table"
        assert len(ev["object"]["rows"]) == 1 and ev["object"]["rows"][0]["cells"][0] == "t"


async def test_bad_resource_version_is_400(api: Api) -> None:
    code, st = await api.call("GET", SVC_PATH, params={"watch": "1", "resourceVersion": "abc"})
    assert code == 400 and st["reason"] == "BadRequest"


async def test_send_initial_events_ends_with_an_annotated_bookmark(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("a"))
    params = {"watch": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan"}
    async with api.client.get(SVC_PATH, params=params) as resp:
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "a")
        ev = await next_event(resp)
        assert ev["type"] == "BOOKMARK"
        assert ev["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_with_a_negative_timeout_ends_at_once(api: Api) -> None:
    # kube-apiserver: context.WithTimeout(ctx, -5s) has expired already (handlers/get.go)
    await api.call("POST", SVC_PATH, service("a"))
    async with api.client.get(SVC_PATH, params={"watch": "1", "timeoutSeconds": "-5"}) as resp:
        assert resp.status == 200
        assert await asyncio.wait_for(resp.read(), 3) == b""


async def _watch_lines(api: Api, params: dict[str, str], count: int) -> list[dict[str, Any]]:
    async with api.client.get(SVC_PATH, params={"watch": "1", **params}) as resp:
        assert resp.status == 200
        return [await next_event(resp) for _ in range(count)]


@pytest.fixture(params=["memory", "sqlite", "etcd"])
async def any_store_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """The API server over each store implementation (their replays must give the same events)."""
    store: Store
    if request.param == "memory":
        store = MemoryStore()
    elif request.param == "sqlite":
        store = SqliteStore(tmp_path / "store.db")
    else:
        if etcd_binary() is None:
            pytest.skip("etcd is not installed (/usr/bin/etcd missing; apt-get install etcd-server)")
        store = EtcdStore(shared_etcd().endpoints, prefix=f"/podnet-watch-test/{uuid.uuid4().hex[:8]}")
    api = await make_api(store=store)
    try:
        yield api
    finally:
        await api.client.close()
        await store.close()


async def test_label_selected_watch_from_an_old_rv_judges_each_event_by_the_object_then(
        any_store_api: Api) -> None:
    # kube-apiserver's cacheWatcher.convertToWatchEvent: prev and current object against the selector,
    # with every store (each replays its history with the object before each event)
    api = any_store_api
    for name, app in (("gone", "w"), ("moves-away", "w"), ("moves-in", "other"), ("never", "other")):
        body = {**service(name), "metadata": {"name": name, "labels": {"app": app}}}
        await api.call("POST", SVC_PATH, body)
    _, lst = await api.call("GET", SVC_PATH, params={"labelSelector": "app=w"})
    old_rv = lst["metadata"]["resourceVersion"]
    merge = "application/merge-patch+json"
    await api.call("DELETE", SVC_PATH + "/gone")
    await api.call("PATCH", SVC_PATH + "/moves-away", {"metadata": {"labels": {"app": "x"}}}, ctype=merge)
    await api.call("PATCH", SVC_PATH + "/moves-in", {"metadata": {"labels": {"app": "w"}}}, ctype=merge)
    await api.call("POST", SVC_PATH, {**service("new"), "metadata": {"name": "new", "labels": {"app": "w"}}})
    await api.call("POST", SVC_PATH, {**service("unrelated"), "metadata": {"name": "unrelated"}})
    # never matched, changed, then deleted: no event at all (without the object before each replayed
    # event a store made this an extra DELETED)
    await api.call("PATCH", SVC_PATH + "/never", {"metadata": {"labels": {"app": "still-other"}}},
                   ctype=merge)
    await api.call("DELETE", SVC_PATH + "/never")
    await api.call("POST", SVC_PATH, {**service("last"),
                                      "metadata": {"name": "last", "labels": {"app": "w"}}})
    events = await _watch_lines(api, {"labelSelector": "app=w", "resourceVersion": old_rv}, 5)
    got = [(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["labels"]["app"])
           for e in events]
    # before: the DELETED of "gone" was dropped (chosen from the current objects)
    assert got == [("DELETED", "gone", "w"), ("DELETED", "moves-away", "w"), ("ADDED", "moves-in", "w"),
                   ("ADDED", "new", "w"), ("ADDED", "last", "w")]
    # the stop-matching DELETED carries the object as it last matched, at the event's resourceVersion
    _, now = await api.call("GET", SVC_PATH + "/moves-away")
    assert events[1]["object"]["metadata"]["resourceVersion"] == now["metadata"]["resourceVersion"]
    # live events after the watch started follow the same rules
    params = {"watch": "1", "labelSelector": "app=w", "resourceVersion": now["metadata"]["resourceVersion"]}
    async with api.client.get(SVC_PATH, params=params) as resp:
        first = [await next_event(resp) for _ in range(3)]  # replay: moves-in, new, last
        assert [e["type"] for e in first] == ["ADDED", "ADDED", "ADDED"]
        await api.call("PATCH", SVC_PATH + "/new", {"metadata": {"labels": {"app": "y"}}}, ctype=merge)
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "new")


async def test_label_selected_watch_from_an_old_rv_on_sqlite_sees_the_delete(tmp_path: Any) -> None:
    from podnet.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "s.db")
    server = APIServer(store)
    await server.bootstrap()
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    api = Api(client, server, store)  # type: ignore[arg-type]
    try:
        await api.call("POST", SVC_PATH, service("a"))
        _, lst = await api.call("GET", SVC_PATH, params={"labelSelector": "app=a"})
        await api.call("DELETE", SVC_PATH + "/a")
        events = await _watch_lines(api, {"labelSelector": "app=a",
                                          "resourceVersion": lst["metadata"]["resourceVersion"]}, 1)
        assert (events[0]["type"], events[0]["object"]["metadata"]["name"]) == ("DELETED", "a")
    finally:
        await client.close()
        await store.close()
