"""One etcd watch behind `EtcdStore.watch`: a reader task, a bounded buffer, reconnects.

The reader task keeps the HTTP stream drained into the watcher's own buffer, so etcd never
waits on a slow consumer; a consumer that falls `limit` events behind is ended with
`Expired` (as the other stores do), and its client relists.

Reconnects: when the stream breaks (the member died, the connection reset) the task opens
a new watch on the next endpoint from the last revision it handed on. It asks etcd for
`start_revision = last` (not last + 1) and drops what it already has: etcd only refuses a
start revision *below* its compaction point, and one equal to it may silently lack a
deletion made at that revision, so asking from `last` turns "the event after `last` was
compacted" into an exact `Expired`. Every write of the store changes one key, so one
revision is one event.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from typing import Any

import aiohttp

from podnet.store._keys import Obj, stamp
from podnet.store.base import EventType, Expired, StoreError, WatchEvent
from podnet.store.etcd_http import EtcdHttp, EtcdUnavailable, Json, messages

_RECONNECT_PAUSE = 0.05
CATCH_UP_GRACE = 0.3
"""etcd replays a watch's history from its sync loop, every 100 ms: how long `close` lets a
new watch receive what was committed before the watch was opened."""


def decode_value(value: str | None, raw_key: str = "") -> Obj:
    """An object stored by EtcdStore: base64 of its JSON (without resourceVersion). Raises
    StoreError naming the key for a value that is not a JSON object (not written by podnet)."""
    try:
        obj: Any = json.loads(base64.b64decode(value or ""))
    except ValueError as e:
        obj = e
    if not isinstance(obj, dict):
        key = base64.b64decode(raw_key).decode("utf-8", "replace") if raw_key else "?"
        raise StoreError(f"etcd key {key!r} does not hold a JSON object (was it written by podnet?): "
                         f"{str(obj)[:100]}")
    return obj


def object_from_key(raw_key: str) -> Obj:
    """The identity of an object from its etcd key `<prefix>/<key>/<namespace>/<name>`, for a
    deletion whose previous value etcd no longer has."""
    parts = base64.b64decode(raw_key).decode("utf-8", "replace").rsplit("/", 2)
    namespace, name = (parts[-2], parts[-1]) if len(parts) == 3 else ("", parts[-1])
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta}


class EtcdWatch:
    """Events of one key range from etcd revision `after` on; `next()` hands them out."""

    def __init__(self, http: EtcdHttp, store_key: str, range_start: str, range_end: str,
                 after: int, origin: int, limit: int):
        self.http = http
        self.store_key = store_key
        self.range_start = range_start  # base64
        self.range_end = range_end  # base64
        self.last = max(after, 1)  # etcd revision of the last event handed on (or the start point)
        self.origin = origin
        self.limit = limit
        self.pending: deque[WatchEvent] = deque()
        self.wakeup = asyncio.Event()
        self.error: BaseException | None = None
        self.finished = False
        self.header_rev = 0
        self.delivered = after - origin  # rv of the last event next() returned
        self.reconnects = 0
        self.opened_at = time.monotonic()
        self.caught_up = asyncio.Event()  # history up to the revision at creation handed on
        self._created_rev = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"etcd-watch-{self.store_key}")

    async def finish(self) -> None:
        """Let a watch opened less than CATCH_UP_GRACE ago receive the history etcd has not sent
        yet (events committed before it was opened), then stop it."""
        remaining = self.opened_at + CATCH_UP_GRACE - time.monotonic()
        if remaining > 0 and self.error is None and not self.caught_up.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.caught_up.wait(), remaining)
        await self.stop()

    async def stop(self) -> None:
        """End the watch: the reader stops, and `next()` returns None once the buffer is empty."""
        self.finished = True
        self.wakeup.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def next(self) -> WatchEvent | None:
        while True:
            if self.pending:
                event = self.pending.popleft()
                self.delivered = event.resource_version
                return event
            if self.error is not None:
                raise self.error
            if self.finished:
                return None
            self.wakeup.clear()
            await self.wakeup.wait()

    # -- reader -----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # handed to the consumer, which raises it
            self.error = e
        finally:
            self.wakeup.set()

    async def _follow(self) -> None:
        failing_since: float | None = None
        while not self.finished:
            body = {"create_request": {"key": self.range_start, "range_end": self.range_end,
                                       "start_revision": str(self.last), "prev_kv": True}}
            resp, endpoint = await self.http.open_stream("/v3/watch", body)
            try:
                async for message in messages(resp):
                    if self._handle(message):
                        failing_since = None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass  # the connection broke: reconnect below
            finally:
                resp.close()
            if self.finished:
                return
            self.http.note_stream_failure(endpoint)
            self.reconnects += 1
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since > self.http.timeout:
                raise EtcdUnavailable(f"etcd watch on {self.store_key}: no endpoint kept a stream open "
                                      f"for {self.http.timeout:g}s (last tried {endpoint})")
            await asyncio.sleep(_RECONNECT_PAUSE)

    def _handle(self, message: Json) -> bool:
        """Take in one stream message; True once etcd confirmed the watch."""
        result = message.get("result")
        if not isinstance(result, dict):
            error = message.get("error")
            raise aiohttp.ClientPayloadError(f"etcd watch stream error: {error!r}")
        header_rev = int((result.get("header") or {}).get("revision") or 0)
        if header_rev:
            self.header_rev = max(self.header_rev, header_rev)
        if result.get("canceled"):
            compacted = int(result.get("compact_revision") or 0)
            if compacted:
                current = max(self.header_rev, compacted)
                raise Expired(self.last - self.origin, compacted - self.origin + 1, current - self.origin)
            reason = result.get("cancel_reason") or "no reason given"
            raise StoreError(f"etcd cancelled the watch on {self.store_key}: {reason}")
        if result.get("created"):
            self._created_rev = header_rev
            if self.last >= header_rev:
                self.caught_up.set()  # nothing to replay
        for raw in result.get("events") or ():
            self._take(raw)
        return bool(result.get("created")) or bool(result.get("events"))

    def _take(self, raw: Json) -> None:
        kv = raw.get("kv") or {}
        rev = int(kv.get("mod_revision") or 0)
        if rev <= self.last:
            return  # already handed on before a reconnect
        type_: EventType
        prev_kv = raw.get("prev_kv")
        # the object before this event (prev_kv: etcd reads it at the revision before, also in replays)
        prev: Obj | None = None
        if prev_kv:
            prev = decode_value(prev_kv.get("value"), str(prev_kv.get("key") or ""))
            stamp(prev, int(prev_kv.get("mod_revision") or 0) - self.origin)
        if raw.get("type") == "DELETE":
            obj = (decode_value(prev_kv.get("value"), str(prev_kv.get("key") or "")) if prev_kv
                   else object_from_key(str(kv.get("key") or "")))
            type_ = "DELETED"
        else:
            obj = decode_value(kv.get("value"), str(kv.get("key") or ""))
            type_ = "ADDED" if kv.get("create_revision") == kv.get("mod_revision") else "MODIFIED"
            if type_ == "ADDED":
                prev = None
        self.last = rev
        if self._created_rev and rev >= self._created_rev:
            self.caught_up.set()
        stamp(obj, rev - self.origin)
        if len(self.pending) >= self.limit:
            self.pending.clear()
            current = max(self.header_rev, rev) - self.origin
            raise Expired(self.delivered, rev - self.origin, current)
        self.pending.append(WatchEvent(type_, obj, rev - self.origin, self.store_key, prev))
        self.wakeup.set()
