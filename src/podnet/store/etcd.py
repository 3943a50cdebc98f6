"""etcd Store: the same contract as SqliteStore, kept in an etcd cluster (issue #9).

Client choice. etcd's own JSON gRPC-gateway (served by every member on its client URL:
`/v3/kv/range`, `/v3/kv/txn`, `/v3/kv/compaction`, streaming `/v3/watch`) spoken with
aiohttp, which podnet already depends on. It is the same v3 API as over gRPC, with no
gRPC/protobuf stack to carry. On PyPI, `etcd3` (last release 2020) is unmaintained and
pins an old protobuf; the maintained clients either bring grpcio + protobuf (aetcd,
etcd3aio) or are synchronous on `requests` (etcd3gw, for this same gateway), which would
block the event loop. The gateway needs a few hundred lines here and nothing new installed.
Transport and failover are in etcd_http.py, one watch's reader in etcd_watch.py, a local
etcd launcher for tests and benchmarks in etcd_local.py.

Mapping onto etcd:
- key `<prefix>/<store key>/<namespace>/<name>` (namespace "" for cluster-scoped objects,
  so a namespace's range never takes in another's); the value is the object's JSON
  without `metadata.resourceVersion`, which is set on every read from the key's
  mod_revision, as the kube-apiserver does.
- resourceVersion = etcd revision - origin. The origin is the revision at which the
  first EtcdStore on this prefix created the marker key `<prefix>/.podnet/rv-origin`, so
  a fresh store starts at 0 exactly like the others, every store on the same prefix
  (also after a restart) hands out the same numbers, and the order is etcd's cluster-wide
  revision order. Writes by others to the same etcd (another prefix) make the numbers
  jump, never go back.
- create: txn `create_revision == 0` → put, else AlreadyExists; update and delete: txn
  `mod_revision == expected` (or "exists" without one), else NotFound / Conflict from the
  failure branch's read. A failed txn uses no revision, so errors consume no rv.
- list: range read (paged, at one revision) whose header revision is the list's rv.
- watch: etcd watch with prev_kv, so DELETED carries the last state; compacted → Expired.
- compaction is etcd's own, and etcd compacts the whole keyspace: a store compacting
  keeps `history` revisions of every prefix in that etcd, not only its own.

close() ends live watches, after giving a watch opened in the last 0.3 s the history etcd
had not sent it yet (etcd replays history from a sync loop that runs every 100 ms).

A write whose answer was lost (the member died mid-request) is retried on another member.
If the retry finds the key already holding exactly the bytes this store wrote, the first
attempt was applied and the write is reported as done (create, and update with an expected
resourceVersion). Known limits: an update without one is simply applied again (a second
MODIFIED event with the same content), and a retried delete that finds the key gone
reports NotFound.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from podnet.store._clone import clone_obj
from podnet.store._keys import Obj, identity, stamp
from podnet.store._watch import DEFAULT_WATCH_BUFFER
from podnet.store.base import AlreadyExists, Conflict, NotFound, Store, StoreError, WatchEvent
from podnet.store.etcd_http import CODE_OUT_OF_RANGE, EtcdHttp, EtcdRequestError, Json, normalize_endpoint
from podnet.store.etcd_watch import EtcdWatch, decode_value

_PAGE = 500  # keys per range request in list()
_MARKER = "/.podnet/rv-origin"

__all__ = ["EtcdStore", "parse_etcd_url"]

URL_FORM = "etcd://HOST:PORT[,HOST:PORT...][/key-prefix]"


def parse_etcd_url(url: str) -> tuple[list[str], str]:
    """`etcd://HOST:PORT[,HOST:PORT...][/key-prefix]` → (endpoints, key prefix; default /registry).
    Raises ValueError naming the URL, the bad part and the accepted form."""
    scheme, sep, rest = url.partition("://")
    if scheme != "etcd" or not sep:
        raise ValueError(f"store URL {url!r} is not an etcd URL; use {URL_FORM}")
    hosts, _, path = rest.partition("/")
    endpoints = [h.strip() for h in hosts.split(",") if h.strip()]
    if not endpoints:
        raise ValueError(f"store URL {url!r} names no etcd endpoint; use {URL_FORM}")
    for endpoint in endpoints:
        if "://" in endpoint:
            raise ValueError(f"store URL {url!r}: endpoint {endpoint!r} must be HOST:PORT; use {URL_FORM}")
        try:
            normalize_endpoint(endpoint)
        except ValueError:
            raise ValueError(f"store URL {url!r}: endpoint {endpoint!r} is not HOST:PORT "
                             f"(e.g. 127.0.0.1:2379); use {URL_FORM}") from None
    prefix = "/" + path.strip("/") if path.strip("/") else "/registry"
    if "//" in path.strip("/"):
        raise ValueError(f"store URL {url!r}: key prefix {'/' + path!r} has an empty part; use {URL_FORM}")
    return endpoints, prefix


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _range_end(prefix: bytes) -> bytes:
    """The smallest key after every key that starts with `prefix`."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\x00"  # whole keyspace


def _rev(answer: Json) -> int:
    return int((answer.get("header") or {}).get("revision") or 0)


def _failure_kv(answer: Json) -> Json | None:
    """The key read by a txn's failure branch, or None if it does not exist."""
    responses = answer.get("responses") or [{}]
    kvs = (responses[0].get("response_range") or {}).get("kvs") or []
    return kvs[0] if kvs else None


def _encode(obj: Obj) -> tuple[Obj, str]:
    """(a private copy of obj, the base64 value to store: its JSON without resourceVersion)."""
    stored = clone_obj(obj)
    meta = stored.get("metadata")
    plain: dict[str, Any] = stored
    if isinstance(meta, dict) and "resourceVersion" in meta:
        plain = {**stored, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    text = json.dumps(plain, separators=(",", ":"), ensure_ascii=False)
    return stored, _b64(text)


async def _list_pages(http: EtcdHttp, start: str, end: str, origin: int) -> tuple[list[Obj], int]:
    """All objects in [start, end), read in pages at one revision, and that revision."""
    items: list[Obj] = []
    rev = 0
    cursor = start
    while True:
        body: Json = {"key": cursor, "range_end": end, "limit": str(_PAGE)}
        if rev:
            body["revision"] = str(rev)
        answer, _ = await http.call("/v3/kv/range", body)
        rev = rev or _rev(answer)
        kvs = answer.get("kvs") or []
        for kv in kvs:
            obj = decode_value(kv.get("value"), kv.get("key") or "")
            stamp(obj, int(kv["mod_revision"]) - origin)
            items.append(obj)
        if not answer.get("more") or not kvs:
            return items, rev
        cursor = _b64(base64.b64decode(kvs[-1]["key"]) + b"\x00")


class EtcdStore(Store):
    """Store on etcd v3 at `endpoints` (`HOST:PORT` or `http://HOST:PORT`), keys under `prefix`.

    `timeout` bounds each call, failover included. `history` is how many revisions of
    watch history to keep (older ones are compacted, etcd-wide); `watch_buffer` how many
    events a watcher may fall behind before it is ended with Expired."""

    def __init__(self, endpoints: list[str], prefix: str = "/registry", *, timeout: float = 5.0,
                 history: int = 100000, watch_buffer: int = DEFAULT_WATCH_BUFFER):
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        if watch_buffer < 1:
            raise ValueError(f"watch_buffer must be at least 1, got {watch_buffer}")
        clean = prefix.rstrip("/")
        if not clean.startswith("/") or "//" in clean:
            raise ValueError(f"etcd key prefix {prefix!r} is not valid; use an absolute path such as "
                             "/registry")
        self._http = EtcdHttp(list(endpoints), timeout)
        self.prefix = clean
        self.history = history
        self._compact_slack = max(100, history // 20)
        self._watch_buffer = watch_buffer
        self._origin: int | None = None
        self._origin_lock = asyncio.Lock()
        self._compacted_to = 0  # etcd revision this store last compacted to
        self._compacting = False
        self._watches: set[EtcdWatch] = set()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> EtcdStore:
        """The store named by `etcd://HOST:PORT[,HOST:PORT...][/key-prefix]`."""
        endpoints, prefix = parse_etcd_url(url)
        return cls(endpoints, prefix, timeout=timeout)

    @property
    def endpoints(self) -> list[str]:
        return list(self._http.endpoints)

    def stats(self) -> dict[str, int]:
        """Counters since open: `failed_attempts` (calls that moved on to another endpoint or
        tried again), `watch_reconnects` (watch streams reopened after breaking), `live_watches`."""
        return {"failed_attempts": self._http.failed_attempts,
                "watch_reconnects": self._http.stream_reconnects,
                "live_watches": len(self._watches)}

    # -- keys -------------------------------------------------------------------------------

    def _key(self, key: str, namespace: str, name: str) -> str:
        for what, value in (("metadata.namespace", namespace), ("metadata.name", name)):
            if "/" in value:
                raise ValueError(f"{what} {value!r} contains '/', which no object name may contain")
        return _b64(f"{self.prefix}/{key}/{namespace}/{name}")

    def _range(self, key: str, namespace: str | None) -> tuple[str, str]:
        start = f"{self.prefix}/{key}/" + ("" if namespace is None else f"{namespace}/")
        raw = start.encode()
        return _b64(raw), _b64(_range_end(raw))

    async def _ready(self) -> int:
        """The origin revision (rv 0), creating the marker key on first use of the prefix."""
        if self._origin is not None:
            return self._origin
        async with self._origin_lock:
            if self._origin is None:
                marker = _b64(self.prefix + _MARKER)
                answer, _ = await self._http.call("/v3/kv/txn", {
                    "compare": [{"key": marker, "target": "CREATE", "result": "EQUAL",
                                 "create_revision": "0"}],
                    "success": [{"request_put": {"key": marker, "value": _b64("podnet rv origin")}}],
                    "failure": [{"request_range": {"key": marker}}]})
                if answer.get("succeeded"):
                    self._origin = _rev(answer)
                else:
                    kv = _failure_kv(answer)
                    if kv is None:
                        raise StoreError(f"etcd: marker {self.prefix + _MARKER} vanished while read")
                    self._origin = int(kv["create_revision"])
            return self._origin

    async def _txn(self, body: Json) -> tuple[Json, bool, int]:
        if self._closed:
            raise StoreError("etcd store is closed")
        origin = await self._ready()
        answer, ambiguous = await self._http.call("/v3/kv/txn", body)
        return answer, ambiguous, origin

    # -- writes -----------------------------------------------------------------------------

    async def create(self, key: str, obj: Obj) -> Obj:
        namespace, name = identity(obj)
        k = self._key(key, namespace, name)
        stored, value = _encode(obj)
        answer, ambiguous, origin = await self._txn({
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": value}}],
            "failure": [{"request_range": {"key": k}}]})
        if answer.get("succeeded"):
            rev = _rev(answer)
        else:
            kv = _failure_kv(answer)
            if not (ambiguous and kv is not None and kv.get("value") == value
                    and kv.get("create_revision") == kv.get("mod_revision")):
                raise AlreadyExists(key, namespace, name)
            rev = int(kv["mod_revision"])  # our first attempt went through
        stamp(stored, rev - origin)
        await self._after_write(rev)
        return stored

    async def get(self, key: str, namespace: str, name: str) -> Obj:
        if self._closed:
            raise StoreError("etcd store is closed")
        k = self._key(key, namespace, name)
        origin = await self._ready()
        answer, _ = await self._http.call("/v3/kv/range", {"key": k})
        kvs = answer.get("kvs") or []
        if not kvs:
            raise NotFound(key, namespace, name)
        obj = decode_value(kvs[0].get("value"), k)
        stamp(obj, int(kvs[0]["mod_revision"]) - origin)
        return obj

    async def update(self, key: str, obj: Obj, expected_rv: int | None = None) -> Obj:
        namespace, name = identity(obj)
        k = self._key(key, namespace, name)
        stored, value = _encode(obj)
        origin = await self._ready()
        answer, ambiguous, origin = await self._txn({
            "compare": [self._precondition(k, expected_rv, origin)],
            "success": [{"request_put": {"key": k, "value": value}}],
            "failure": [{"request_range": {"key": k}}]})
        if answer.get("succeeded"):
            rev = _rev(answer)
        else:
            kv = _failure_kv(answer)
            if kv is None:
                raise NotFound(key, namespace, name)
            if not (ambiguous and kv.get("value") == value):
                raise Conflict(key, namespace, name)
            rev = int(kv["mod_revision"])  # our first attempt went through
        stamp(stored, rev - origin)
        await self._after_write(rev)
        return stored

    async def delete(self, key: str, namespace: str, name: str, expected_rv: int | None = None) -> Obj:
        k = self._key(key, namespace, name)
        origin = await self._ready()
        answer, _, origin = await self._txn({
            "compare": [self._precondition(k, expected_rv, origin)],
            "success": [{"request_delete_range": {"key": k, "prev_kv": True}}],
            "failure": [{"request_range": {"key": k}}]})
        if not answer.get("succeeded"):
            if _failure_kv(answer) is None:
                raise NotFound(key, namespace, name)
            raise Conflict(key, namespace, name)
        responses = answer.get("responses") or [{}]
        prev = (responses[0].get("response_delete_range") or {}).get("prev_kvs") or []
        if not prev:
            raise NotFound(key, namespace, name)
        rev = _rev(answer)
        last = decode_value(prev[0].get("value"), k)
        stamp(last, rev - origin)
        await self._after_write(rev)
        return last

    @staticmethod
    def _precondition(k: str, expected_rv: int | None, origin: int) -> Json:
        if expected_rv is None:  # the key exists
            return {"key": k, "target": "CREATE", "result": "GREATER", "create_revision": "0"}
        return {"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": str(expected_rv + origin)}

    # -- reads ------------------------------------------------------------------------------

    async def list(self, key: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        if self._closed:
            raise StoreError("etcd store is closed")
        origin = await self._ready()
        start, end = self._range(key, namespace)
        for attempt in range(3):
            try:
                items, rev = await _list_pages(self._http, start, end, origin)
                break
            except EtcdRequestError as e:
                # A compaction between two pages: read again at a newer revision.
                if e.code != CODE_OUT_OF_RANGE or attempt == 2:
                    raise
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return items, rev - origin

    async def current_rv(self) -> int:
        return await self._etcd_revision() - await self._ready()

    async def _etcd_revision(self) -> int:
        if self._closed:
            raise StoreError("etcd store is closed")
        origin = await self._ready()
        answer, _ = await self._http.call("/v3/kv/range", {"key": _b64(self.prefix + _MARKER),
                                                           "count_only": True})
        return max(_rev(answer), origin)

    # -- watch ------------------------------------------------------------------------------

    async def watch(self, key: str, namespace: str | None, from_rv: int) -> AsyncIterator[WatchEvent]:
        if self._closed:
            return
        origin = await self._ready()
        start, end = self._range(key, namespace)
        w = EtcdWatch(self._http, key, start, end, from_rv + origin, origin, self._watch_buffer)
        self._watches.add(w)
        w.start()
        try:
            while True:
                event = await w.next()
                if event is None:
                    return
                yield event
        finally:
            self._watches.discard(w)
            await w.stop()

    # -- compaction -------------------------------------------------------------------------

    async def compact(self, keep_from_rv: int) -> None:
        origin = await self._ready()
        target = min(keep_from_rv - 1 + origin, await self._etcd_revision())
        await self._compact_to(target)

    async def _after_write(self, rev: int) -> None:
        floor = max(self._compacted_to, self._origin or 0)
        if rev - floor > self.history + self._compact_slack and not self._compacting:
            self._compacting = True
            try:
                await self._compact_to(rev - self.history)
            finally:
                self._compacting = False

    async def _compact_to(self, target: int) -> None:
        if target <= self._compacted_to:
            return
        try:
            await self._http.call("/v3/kv/compaction", {"revision": str(target)})
        except EtcdRequestError as e:
            if e.code != CODE_OUT_OF_RANGE:  # "already compacted" past target is fine
                raise
        self._compacted_to = max(self._compacted_to, target)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        watches = list(self._watches)
        self._watches.clear()
        await asyncio.gather(*(w.finish() for w in watches))
        await self._http.close()
