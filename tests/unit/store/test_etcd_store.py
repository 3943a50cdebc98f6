"""EtcdStore behaviour beyond the shared contract, on this process's throwaway etcd:
what lands in etcd, stores sharing a prefix, large replays and lists, and writes whose
answer was lost on the way back (a proxy that forwards a request, then drops the reply)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
from store_helpers import needs_etcd, rv, svc, take

from podnet.store import AlreadyExists, EtcdStore, StoreError
from podnet.store.etcd_local import EtcdCluster, shared_etcd

pytestmark = needs_etcd


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unique_prefix() -> str:
    return f"/t-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def raw_range(etcd: EtcdCluster, prefix: str) -> dict[str, bytes]:
    """Every key under `prefix` as etcd holds it, read without podnet."""
    body = json.dumps({"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))})
    url = etcd.members[0].client_url + "/v3/kv/range"
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        answer = json.loads(resp.read())
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
            for kv in answer.get("kvs", [])}


@pytest.fixture
def etcd() -> EtcdCluster:
    return shared_etcd()


@pytest.fixture
async def store(etcd: EtcdCluster) -> AsyncIterator[EtcdStore]:
    s = EtcdStore(etcd.endpoints, prefix=unique_prefix())
    try:
        yield s
    finally:
        await s.close()


async def test_layout_in_etcd(etcd: EtcdCluster, store: EtcdStore) -> None:
    await store.create("services", svc("web", app="web"))
    await store.create("nodes", {"apiVersion": "v1", "kind": "Node",
                                 "metadata": {"name": "n1", "resourceVersion": "999"}})
    await store.create("apps/deployments", {"metadata": {"name": "d", "namespace": "prod"}})
    raw = raw_range(etcd, store.prefix + "/")
    assert sorted(raw) == [store.prefix + "/.podnet/rv-origin", store.prefix + "/apps/deployments/prod/d",
                           store.prefix + "/nodes//n1", store.prefix + "/services/default/web"]
    # The value is the object's JSON; resourceVersion lives in etcd's mod_revision only.
    assert json.loads(raw[store.prefix + "/services/default/web"]) == svc("web", app="web")
    assert json.loads(raw[store.prefix + "/nodes//n1"]) == {"apiVersion": "v1", "kind": "Node",
                                                            "metadata": {"name": "n1"}}
    assert (await store.get("nodes", "", "n1"))["metadata"]["resourceVersion"] == "2"


async def test_stores_on_one_prefix_share_resource_versions(etcd: EtcdCluster, store: EtcdStore) -> None:
    await store.create("services", svc("a"))
    other = EtcdStore(etcd.endpoints, prefix=store.prefix)
    elsewhere = EtcdStore(etcd.endpoints, prefix=unique_prefix())
    try:
        assert rv(await other.get("services", "default", "a")) == 1
        assert rv(await other.create("services", svc("b"))) == 2
        assert rv(await store.update("services", svc("a", x="1"), expected_rv=1)) == 3
        # Writes under another prefix of the same etcd (its origin marker, then an object) move
        # the revision on: numbers jump, never go back, and both stores still agree.
        await elsewhere.create("services", svc("x"))
        assert await store.current_rv() == await other.current_rv() == 5
        assert rv(await other.create("services", svc("c"))) == 6
        events = await take(store.watch("services", None, 0), 4, timeout=5.0)
        assert [(e.type, e.resource_version, e.object["metadata"]["name"]) for e in events] == [
            ("ADDED", 1, "a"), ("ADDED", 2, "b"), ("MODIFIED", 3, "a"), ("ADDED", 6, "c")]
    finally:
        await other.close()
        await elsewhere.close()


async def test_large_list_and_replay(store: EtcdStore) -> None:
    blob = "x" * 2000
    n = 650  # more than one list page (500), and a replay of ~1.5 MB in one watch message
    await asyncio.gather(*(store.create("services", svc(f"s{i:04d}", blob=blob)) for i in range(n)))
    items, list_rv = await store.list("services")
    assert [o["metadata"]["name"] for o in items] == [f"s{i:04d}" for i in range(n)]
    assert list_rv == n
    assert sorted(rv(o) for o in items) == list(range(1, n + 1))
    events = await take(store.watch("services", None, 0), n, timeout=5.0)
    assert [e.resource_version for e in events] == list(range(1, n + 1))
    assert all(e.object["metadata"]["labels"]["blob"] == blob for e in events)


class DroppingProxy:
    """Stands in front of one etcd member: forwards every HTTP request and passes the answer
    back, except for requests whose body holds `marker`: those are applied by etcd, and then
    the client's connection is closed without an answer (a member dying mid-request)."""

    def __init__(self, target_port: int, marker: str):
        self.target_port = target_port
        self.marker = marker.encode()
        self.dropped = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                head = head[:-2] + b"Connection: close\r\n\r\n"
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
                up_w.write(head + body)
                await up_w.drain()
                answer = await up_r.read()  # etcd closes after answering (Connection: close)
                up_w.close()
                if self.marker in body:
                    self.dropped += 1
                    return  # the request was applied; its answer is lost
                writer.write(answer)
                await writer.drain()
                return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def test_a_write_whose_answer_was_lost_is_recognised_on_retry(etcd: EtcdCluster) -> None:
    prefix = unique_prefix()
    key = b64(f"{prefix}/services/default/lost")
    proxy = DroppingProxy(etcd.members[0].client_port, key)
    via_proxy = await proxy.start()
    stores: list[EtcdStore] = []

    def open_store() -> EtcdStore:  # the proxy first, etcd itself second
        s = EtcdStore([via_proxy, etcd.endpoints[0]], prefix=prefix, timeout=3.0)
        stores.append(s)
        return s

    try:
        # create: applied, answer lost, retried on the next endpoint → the key holds exactly
        # what this store wrote, so the create is reported done, not AlreadyExists.
        created = await open_store().create("services", svc("lost", v="1"))
        assert proxy.dropped == 1
        assert rv(created) == 1
        # update with a precondition: the retry's precondition fails (rv moved on by the
        # first attempt), but the value is this store's → done, not Conflict.
        updated = await open_store().update("services", svc("lost", v="2"), expected_rv=1)
        assert proxy.dropped == 2
        assert rv(updated) == 2
        # A create that really collides is still refused after a lost answer.
        with pytest.raises(AlreadyExists, match="services default/lost already exists"):
            await open_store().create("services", svc("lost", v="other"))
        assert proxy.dropped == 3
        # etcd saw each write once. (The reader's watch stream tries the proxy first, which
        # never answers a stream: after a third of the timeout it fails over to etcd itself.)
        reader = open_store()
        events = await take(reader.watch("services", None, 0), 2, timeout=5.0)
        assert [(e.type, e.resource_version, e.object["metadata"]["labels"]) for e in events] == [
            ("ADDED", 1, {"v": "1"}), ("MODIFIED", 2, {"v": "2"})]
        assert await reader.current_rv() == 2
    finally:
        for s in stores:
            await s.close()
        await proxy.close()


async def test_watch_of_one_namespace_sees_only_it(store: EtcdStore) -> None:
    # "team" and "team-a": a plain key-prefix match on "team" would take in both.
    await store.create("services", {"metadata": {"name": "x", "namespace": "team-a"}})
    await store.create("services", {"metadata": {"name": "y", "namespace": "team"}})
    await store.delete("services", "team-a", "x")
    await store.delete("services", "team", "y")
    events = await take(store.watch("services", "team", 0), 2, timeout=5.0)
    assert [(e.type, e.resource_version, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", 2, "y"), ("DELETED", 4, "y")]
    assert (await store.list("services", "team")) == ([], 4)


async def test_a_value_not_written_by_podnet_is_reported_with_its_key(etcd: EtcdCluster,
                                                                      store: EtcdStore) -> None:
    await store.create("services", svc("good"))
    key = f"{store.prefix}/services/default/junk"
    body = json.dumps({"key": b64(key), "value": b64("not json")}).encode()
    put = urllib.request.Request(etcd.members[0].client_url + "/v3/kv/put", data=body, method="POST")
    with urllib.request.urlopen(put, timeout=5):
        pass
    message = f"etcd key {key!r} does not hold a JSON object (was it written by podnet?)"
    with pytest.raises(StoreError) as err:
        await store.get("services", "default", "junk")
    assert str(err.value).startswith(message)
    with pytest.raises(StoreError) as err:
        await store.list("services")
    assert str(err.value).startswith(message)
    with pytest.raises(StoreError) as err:
        await take(store.watch("services", None, 0), 2, timeout=5.0)
    assert str(err.value).startswith(message)
