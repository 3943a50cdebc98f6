"""The Store contract, run against every implementation in store_factories.FACTORIES."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from store_factories import Opener
from store_helpers import rv, svc, take

from podnet.store import AlreadyExists, Conflict, Expired, NotFound, Store, WatchEvent
from podnet.store._watch import DEFAULT_WATCH_BUFFER

Obj = dict[str, Any]


def node(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def brief(events: list[WatchEvent]) -> list[tuple[str, int, str]]:
    return [(e.type, e.resource_version, e.object["metadata"]["name"]) for e in events]


async def nothing_more(it: AsyncIterator[WatchEvent], wait: float = 0.05) -> None:
    """Assert the watch has no further event ready."""
    try:
        event = await asyncio.wait_for(it.__anext__(), wait)
    except TimeoutError:
        return
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    raise AssertionError(f"unexpected event {event.type} rv={event.resource_version}")


# -- resourceVersion and CRUD ----------------------------------------------------------------


async def test_rv_increases_strictly_across_kinds(store: Store) -> None:
    assert await store.current_rv() == 0
    seen = []
    seen.append(rv(await store.create("services", svc("a"))))
    seen.append(rv(await store.create("nodes", node("n1"))))
    seen.append(rv(await store.create("apps/deployments", {"metadata": {"name": "d", "namespace": "x"}})))
    seen.append(rv(await store.update("services", svc("a", tier="web"))))
    seen.append(rv(await store.delete("nodes", "", "n1")))
    assert seen == [1, 2, 3, 4, 5]
    assert await store.current_rv() == 5
    stored = await store.get("services", "default", "a")
    assert stored["metadata"]["resourceVersion"] == "4"  # a string on the wire


async def test_create_get_update_delete(store: Store) -> None:
    created = await store.create("services", svc("web", app="web"))
    assert created["metadata"]["resourceVersion"] == "1"
    assert created["spec"] == {"ports": [{"port": 80, "protocol": "TCP"}]}
    got = await store.get("services", "default", "web")
    assert got == created

    got["spec"]["ports"][0]["port"] = 8080
    updated = await store.update("services", got, expected_rv=1)
    assert rv(updated) == 2
    assert (await store.get("services", "default", "web"))["spec"]["ports"][0]["port"] == 8080

    deleted = await store.delete("services", "default", "web", expected_rv=2)
    assert deleted["spec"]["ports"][0]["port"] == 8080
    assert rv(deleted) == 3
    with pytest.raises(NotFound):
        await store.get("services", "default", "web")


async def test_objects_are_copied_in_and_out(store: Store) -> None:
    obj = svc("copy")
    created = await store.create("services", obj)
    obj["spec"]["ports"].append({"port": 1})
    created["metadata"]["labels"]["x"] = "y"
    got = await store.get("services", "default", "copy")
    assert got["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert got["metadata"]["labels"] == {}
    got["spec"]["ports"].clear()
    items, _ = await store.list("services")
    assert items[0]["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]


async def test_unknown_fields_are_kept(store: Store) -> None:
    obj = svc("keep")
    obj["spec"]["someFutureField"] = {"nested": [1, 2.5, None, True, "ü"]}
    await store.create("services", obj)
    got = await store.get("services", "default", "keep")
    assert got["spec"]["someFutureField"] == {"nested": [1, 2.5, None, True, "ü"]}


async def test_errors_name_the_object_and_consume_no_rv(store: Store) -> None:
    await store.create("services", svc("a"))
    with pytest.raises(AlreadyExists, match="services default/a already exists"):
        await store.create("services", svc("a"))
    with pytest.raises(NotFound, match="services default/missing not found"):
        await store.get("services", "default", "missing")
    with pytest.raises(NotFound):
        await store.update("services", svc("missing"))
    with pytest.raises(NotFound):
        await store.delete("services", "default", "missing")
    with pytest.raises(Conflict, match="services default/a: resourceVersion mismatch"):
        await store.update("services", svc("a"), expected_rv=7)
    with pytest.raises(Conflict):
        await store.delete("services", "default", "a", expected_rv=7)
    # Same name in another namespace or another kind is a different object.
    await store.create("services", svc("a", namespace="other"))
    await store.create("endpoints", {"metadata": {"name": "a", "namespace": "default"}})
    assert await store.current_rv() == 3
    assert rv(await store.get("services", "default", "a")) == 1
    # Failed writes produced no events.
    assert brief(await take(store.watch("services", None, 0), 2)) == [("ADDED", 1, "a"), ("ADDED", 2, "a")]


async def test_update_without_expected_rv_is_unconditional(store: Store) -> None:
    await store.create("services", svc("a"))
    await store.update("services", svc("a", v="1"))
    stale = svc("a", v="2")
    stale["metadata"]["resourceVersion"] = "1"
    assert rv(await store.update("services", stale)) == 3
    assert (await store.get("services", "default", "a"))["metadata"]["labels"] == {"v": "2"}


async def test_list_by_namespace_and_all(store: Store) -> None:
    for ns, name in [("b", "z"), ("a", "y"), ("b", "a"), ("a", "x")]:
        await store.create("services", svc(name, namespace=ns))
    await store.create("pods", {"metadata": {"name": "p", "namespace": "a"}})
    await store.create("nodes", node("n2"))
    await store.create("nodes", node("n1"))

    items, list_rv = await store.list("services")
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items] == [
        ("a", "x"), ("a", "y"), ("b", "a"), ("b", "z")]
    assert list_rv == 7
    items, _ = await store.list("services", "b")
    assert [o["metadata"]["name"] for o in items] == ["a", "z"]
    assert await store.list("services", "none") == ([], 7)
    assert [o["metadata"]["name"] for o in (await store.list("nodes"))[0]] == ["n1", "n2"]
    assert await store.list("configmaps") == ([], 7)
    await store.delete("services", "a", "x")
    items, list_rv = await store.list("services", "a")
    assert [o["metadata"]["name"] for o in items] == ["y"]
    assert list_rv == 8


# -- watch -----------------------------------------------------------------------------------


async def _scripted_writes(store: Store) -> None:
    await store.create("services", svc("a"))                         # 1
    await store.create("pods", {"metadata": {"name": "p", "namespace": "default"}})  # 2
    await store.create("services", svc("b", namespace="kube-system"))  # 3
    await store.update("services", svc("a", x="1"))                  # 4
    await store.delete("services", "kube-system", "b")               # 5
    await store.create("services", svc("c"))                         # 6


async def test_watch_from_zero_replays_everything(store: Store) -> None:
    await _scripted_writes(store)
    events = await take(store.watch("services", None, 0), 5)
    assert brief(events) == [("ADDED", 1, "a"), ("ADDED", 3, "b"), ("MODIFIED", 4, "a"),
                             ("DELETED", 5, "b"), ("ADDED", 6, "c")]
    assert all(e.key == "services" for e in events)
    assert [rv(e.object) for e in events] == [1, 3, 4, 5, 6]


async def test_watch_from_the_middle(store: Store) -> None:
    await _scripted_writes(store)
    assert brief(await take(store.watch("services", None, 3), 3)) == [
        ("MODIFIED", 4, "a"), ("DELETED", 5, "b"), ("ADDED", 6, "c")]
    await nothing_more(store.watch("services", None, 6))


async def test_watch_in_one_namespace(store: Store) -> None:
    await _scripted_writes(store)
    it = store.watch("services", "default", 0)
    assert brief(await take(it, 3)) == [("ADDED", 1, "a"), ("MODIFIED", 4, "a"), ("ADDED", 6, "c")]
    it = store.watch("services", "kube-system", 1)
    events = await take(it, 2)
    assert brief(events) == [("ADDED", 3, "b"), ("DELETED", 5, "b")]


async def test_watch_continues_with_live_events(store: Store) -> None:
    await store.create("services", svc("before"))
    it = store.watch("services", None, 0)
    task = asyncio.create_task(take(it, 4))
    await asyncio.sleep(0.01)
    await store.create("services", svc("live1"))
    await store.create("nodes", node("ignored"))
    await asyncio.sleep(0.01)
    await store.update("services", svc("live1", a="b"))
    await store.delete("services", "default", "before")
    assert brief(await task) == [("ADDED", 1, "before"), ("ADDED", 2, "live1"),
                                 ("MODIFIED", 4, "live1"), ("DELETED", 5, "before")]


async def test_deleted_event_carries_last_state(store: Store) -> None:
    await store.create("services", svc("gone", app="web"))
    obj = await store.get("services", "default", "gone")
    obj["spec"]["clusterIP"] = "10.96.0.7"
    await store.update("services", obj)
    it = store.watch("services", None, 2)
    task = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.01)
    await store.delete("services", "default", "gone")
    (event,) = await task
    assert event.type == "DELETED"
    assert event.resource_version == 3
    assert event.object["metadata"]["resourceVersion"] == "3"
    assert event.object["metadata"]["labels"] == {"app": "web"}
    assert event.object["spec"]["clusterIP"] == "10.96.0.7"


async def test_watch_from_compacted_rv_is_expired(store: Store) -> None:
    for i in range(10):
        await store.create("services", svc(f"s{i}"))
    await store.compact(6)  # events 1..5 dropped
    it = store.watch("services", None, 2)
    with pytest.raises(Expired, match=r"too old resource version: 2 \(10\)"):
        await it.__anext__()
    # From 5 every later event (6..10) is still there.
    assert [e.resource_version for e in await take(store.watch("services", None, 5), 5)] == [6, 7, 8, 9, 10]


async def test_history_limit_expires_old_watches(opener: Opener) -> None:
    store = opener.open(history=20)
    for i in range(300):
        await store.create("services", svc(f"s{i}"))
    with pytest.raises(Expired):
        await store.watch("services", None, 0).__anext__()
    with pytest.raises(Expired):
        await store.watch("services", None, 200).__anext__()
    assert [e.resource_version for e in await take(store.watch("services", None, 280), 20)] == list(
        range(281, 301))


async def test_reconnect_from_last_seen_rv_loses_and_duplicates_nothing(store: Store) -> None:
    rng = random.Random(1234)
    acked: list[tuple[str, int, str]] = []
    names: list[str] = []
    total = 400

    async def writer() -> None:
        for i in range(total):
            choice = rng.random()
            if names and choice < 0.3:
                name = rng.choice(names)
                acked.append(("MODIFIED", rv(await store.update("services", svc(name, i=str(i)))), name))
            elif names and choice < 0.45:
                name = names.pop(rng.randrange(len(names)))
                acked.append(("DELETED", rv(await store.delete("services", "default", name)), name))
            else:
                name = f"o{i}"
                names.append(name)
                acked.append(("ADDED", rv(await store.create("services", svc(name))), name))
            await store.create("pods", {"metadata": {"name": f"p{i}", "namespace": "default"}})
            if rng.random() < 0.2:
                await asyncio.sleep(0)

    seen: list[tuple[str, int, str]] = []

    async def reconnecting_reader() -> None:
        last = 0
        while len(seen) < total:
            chunk = rng.randint(1, 25)
            async with aclosing(store.watch("services", None, last)) as events:  # type: ignore[type-var]
                async for event in events:
                    seen.append((event.type, event.resource_version, event.object["metadata"]["name"]))
                    last = event.resource_version
                    chunk -= 1
                    if chunk == 0 or len(seen) == total:
                        break
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(writer(), reconnecting_reader()), 20)
    assert seen == acked


async def test_concurrent_watchers_see_the_same_order(store: Store) -> None:
    await store.create("services", svc("seed"))
    n = 60
    watchers = [asyncio.create_task(take(store.watch("services", None, 0), n + 1, timeout=10))
                for _ in range(6)]
    late = []
    for i in range(n):
        if i == n // 2:
            late.append(asyncio.create_task(take(store.watch("services", None, 0), n + 1, timeout=10)))
        if i % 3 == 2:
            await store.update("services", svc(f"s{i - 1}", v=str(i)))
        else:
            await store.create("services", svc(f"s{i}"))
        if i % 7 == 0:
            await asyncio.sleep(0)
    results = [brief(r) for r in await asyncio.gather(*watchers, *late)]
    assert len(results[0]) == n + 1
    assert [r[1] for r in results[0]] == sorted({r[1] for r in results[0]})
    for other in results[1:]:
        assert other == results[0]


async def test_slow_watcher_is_expired_without_blocking_writers(store: Store) -> None:
    store_buffer = DEFAULT_WATCH_BUFFER  # events a watcher may fall behind (every implementation)
    it = store.watch("services", None, 0)
    first_task: asyncio.Future[WatchEvent] = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0.01)
    await store.create("services", svc("first"))
    first = await asyncio.wait_for(first_task, 2)
    assert first.resource_version == 1
    # The watcher does not read; writes go on and its buffer overflows.
    for i in range(store_buffer + 50):
        await store.create("services", svc(f"s{i}"))
    events = []
    with pytest.raises(Expired):
        for _ in range(store_buffer + 100):
            events.append(await asyncio.wait_for(it.__anext__(), 2))
    assert len(events) <= store_buffer
    assert await store.current_rv() == store_buffer + 51


async def test_close_ends_live_watches(opener: Opener) -> None:
    store = opener.open()
    await store.create("services", svc("a"))
    seen: list[WatchEvent] = []

    async def consume() -> None:
        async for event in store.watch("services", None, 0):
            seen.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    await store.close()
    await asyncio.wait_for(task, 2)
    assert brief(seen) == [("ADDED", 1, "a")]


async def test_watch_from_future_rv_waits_for_it(store: Store) -> None:
    await store.create("services", svc("a"))
    task = asyncio.create_task(take(store.watch("services", None, 2), 1))
    await asyncio.sleep(0.01)
    await store.create("services", svc("b"))  # rv 2: not after 2
    await store.create("services", svc("c"))  # rv 3
    assert brief(await task) == [("ADDED", 3, "c")]


async def test_watch_events_are_copies(store: Store) -> None:
    await store.create("services", svc("a"))
    (e1,) = await take(store.watch("services", None, 0), 1)
    e1.object["spec"]["ports"].clear()
    (e2,) = await take(store.watch("services", None, 0), 1)
    assert e2.object["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert (await store.get("services", "default", "a"))["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]


# -- persistence -----------------------------------------------------------------------------


async def test_reopened_store_keeps_objects_rv_and_history(persistent_opener: Opener) -> None:
    opener = persistent_opener
    store = opener.open()
    await _scripted_writes(store)
    await store.close()

    again = opener.open()
    assert await again.current_rv() == 6
    items, list_rv = await again.list("services")
    assert [(o["metadata"]["name"], rv(o)) for o in items] == [("a", 4), ("c", 6)]
    assert list_rv == 6
    assert brief(await take(again.watch("services", None, 3), 3)) == [
        ("MODIFIED", 4, "a"), ("DELETED", 5, "b"), ("ADDED", 6, "c")]
    assert rv(await again.create("services", svc("d"))) == 7


async def test_reopened_store_keeps_compaction(persistent_opener: Opener) -> None:
    opener = persistent_opener
    store = opener.open()
    for i in range(8):
        await store.create("services", svc(f"s{i}"))
    await store.compact(5)
    await store.close()
    again = opener.open()
    with pytest.raises(Expired):
        await again.watch("services", None, 1).__anext__()
    assert [e.resource_version for e in await take(again.watch("services", None, 4), 4)] == [5, 6, 7, 8]
    # Even when every event was compacted away, the rv continues.
    await again.compact(100)
    await again.close()
    third = opener.open()
    assert await third.current_rv() == 8
    assert rv(await third.create("services", svc("next"))) == 9


# -- the object before each event (what label-selected watches from an old version need) -----


async def test_replayed_events_carry_the_object_before_them(store: Store) -> None:
    """A watch from an old resourceVersion gets each MODIFIED and DELETED event with the object as it was
    just before it (WatchEvent.prev), also when the events that wrote those versions are older than the
    compacted history; the API judges label-selected replays by it (api/watch.py)."""
    a = await store.create("services", svc("a", tier="hist"))  # 1
    await store.create("services", svc("b", tier="hist"))  # 2
    c = await store.create("services", svc("c", tier="other"))  # 3
    start = await store.current_rv()
    a["metadata"]["labels"] = {"tier": "other"}
    await store.update("services", a)  # 4: a stops matching tier=hist
    b = await store.get("services", "default", "b")
    b["spec"]["clusterIP"] = "10.96.0.9"
    await store.update("services", b, expected_rv=rv(b))  # 5
    await store.delete("services", "default", "b")  # 6
    c["metadata"]["labels"] = {"tier": "hist"}
    await store.update("services", c)  # 7: c starts matching
    await store.create("services", svc("d", tier="hist"))  # 8
    await store.compact(start + 1)  # the events that wrote versions 1..3 are no longer replayed
    events = await take(store.watch("services", None, start), 5)
    assert brief(events) == [("MODIFIED", 4, "a"), ("MODIFIED", 5, "b"), ("DELETED", 6, "b"),
                             ("MODIFIED", 7, "c"), ("ADDED", 8, "d")]
    prevs = [None if e.prev is None else (e.prev["metadata"]["labels"], rv(e.prev),
                                          e.prev["spec"].get("clusterIP")) for e in events]
    assert prevs == [({"tier": "hist"}, 1, None), ({"tier": "hist"}, 2, None),
                     ({"tier": "hist"}, 5, "10.96.0.9"), ({"tier": "other"}, 3, None), None]
    with pytest.raises(Expired):  # what the floor hides stays hidden, whatever is kept for prev
        await store.watch("services", None, start - 1).__anext__()


async def test_prev_survives_a_reopen_and_later_compactions(persistent_opener: Opener) -> None:
    store = persistent_opener.open(history=1000)
    obj = await store.create("services", svc("kept", tier="hist"))  # 1
    for i in range(5):  # 2..6, other objects
        await store.create("services", svc(f"x{i}"))
    await store.compact(6)
    await store.close()
    store = persistent_opener.open(history=1000)
    obj = await store.get("services", "default", "kept")
    obj["metadata"]["labels"] = {"tier": "gone"}
    await store.update("services", obj)  # 7
    await store.compact(7)
    (event,) = await take(store.watch("services", None, 6), 1)
    assert event.type == "MODIFIED" and event.prev is not None
    assert event.prev["metadata"]["labels"] == {"tier": "hist"} and rv(event.prev) == 1
    with pytest.raises(Expired):
        await store.watch("services", None, 5).__anext__()
