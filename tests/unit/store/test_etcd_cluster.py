"""EtcdStore on a real 3-member etcd cluster on loopback: one member is SIGKILLed mid-write
(the leader, which is also the endpoint the store talks to) and the store carries on through
the other two; every acknowledged write is there, and a watch that streamed from the dead
member sees every event exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest
from store_helpers import needs_etcd, rv, svc

from podnet.store import EtcdStore, NotFound, WatchEvent
from podnet.store.etcd_local import EtcdCluster, EtcdMember, scratch_dir, start_etcd_cluster

pytestmark = needs_etcd


def status(member: EtcdMember) -> dict[str, Any]:
    req = urllib.request.Request(member.client_url + "/v3/maintenance/status", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=2) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    return answer


def leader_of(cluster: EtcdCluster) -> EtcdMember:
    for _ in range(50):
        for member in cluster.members:
            st = status(member)
            if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                return member
    raise AssertionError("the cluster has no leader")


@pytest.fixture
def cluster() -> Iterator[EtcdCluster]:
    directory = scratch_dir("podnet-etcd3")
    try:
        c = start_etcd_cluster(3, directory / "cluster")
        try:
            yield c
        finally:
            c.cleanup()
    finally:
        import shutil
        shutil.rmtree(directory, ignore_errors=True)


async def test_killing_the_leader_loses_no_acknowledged_write(cluster: EtcdCluster) -> None:
    leader = leader_of(cluster)
    others = [m for m in cluster.members if m is not leader]
    # The store talks to the leader first: its connections and its watch stream die with it.
    store = EtcdStore([leader.endpoint] + [m.endpoint for m in others],
                      prefix=f"/failover-{os.getpid()}-{uuid.uuid4().hex[:6]}", timeout=5.0)
    acked: list[tuple[str, int, str]] = []
    seen: list[WatchEvent] = []
    total = 240
    kill_at = 80
    killed = asyncio.Event()

    async def watcher() -> None:
        async with aclosing(store.watch("services", None, 0)) as events:  # type: ignore[type-var]
            async for event in events:
                seen.append(event)
                if len(seen) == total:
                    return

    async def writer() -> None:
        latest: dict[str, int] = {}
        for i in range(total):
            if i == kill_at:
                leader.kill()  # SIGKILL by PID, with writes and the watch in flight
                killed.set()
            if i % 4 == 3:
                name = f"s{i - 1}"
                done = await store.update("services", svc(name, i=str(i)), expected_rv=latest[name])
                acked.append(("MODIFIED", rv(done), name))
            else:
                name = f"s{i}"
                done = await store.create("services", svc(name))
                acked.append(("ADDED", rv(done), name))
            latest[name] = rv(done)

    try:
        watch_task = asyncio.create_task(watcher())
        await asyncio.wait_for(writer(), 30)
        await asyncio.wait_for(watch_task, 15)

        assert killed.is_set() and not leader.running()
        # The store's calls and its watch stream really were on the killed member, and moved.
        assert store.stats()["failed_attempts"] >= 1
        assert store.stats()["watch_reconnects"] >= 1
        # Every acknowledged write, in order, exactly once, through the reconnected watch.
        assert [(e.type, e.resource_version, e.object["metadata"]["name"]) for e in seen] == acked
        assert [rv(e.object) for e in seen] == [a[1] for a in acked]
        assert sorted({a[1] for a in acked}) == [a[1] for a in acked]  # strictly increasing

        # Reads go on through the survivors and see the final state of every object.
        final = {name: version for _, version, name in acked}
        items, list_rv = await store.list("services")
        assert {o["metadata"]["name"]: rv(o) for o in items} == final
        assert list_rv == acked[-1][1]
        got = await store.get("services", "default", "s2")
        assert got["metadata"]["labels"] == {"i": "3"}

        # A new store whose first endpoint is the dead member fails over on its first call,
        # and agrees on every resourceVersion.
        again = EtcdStore([leader.endpoint] + [m.endpoint for m in others], prefix=store.prefix, timeout=5.0)
        try:
            items2, rv2 = await again.list("services")
            assert {o["metadata"]["name"]: rv(o) for o in items2} == final and rv2 == list_rv
            deleted = await again.delete("services", "default", "s0")
            assert rv(deleted) == list_rv + 1
            with pytest.raises(NotFound):
                await store.get("services", "default", "s0")
        finally:
            await again.close()
    finally:
        await store.close()
