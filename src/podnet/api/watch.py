"""Watch streams: chunked JSON lines `{"type": ..., "object": ...}`, as kube-apiserver sends them.

- resourceVersion "" or "0": the current state first, as ADDED events, then changes.
- a resourceVersion N: changes after N; N older than the store's history gives one ERROR
  event carrying the 410 Expired Status (inside the 200 stream), then the stream ends.
- label/field selectors filter events; an object that stops matching is sent as DELETED and
  one that starts matching as ADDED.
- allowWatchBookmarks: a BOOKMARK with the last resourceVersion every `bookmark_every` seconds.
- sendInitialEvents=true (watch-list): the current state as ADDED events, then a BOOKMARK annotated
  `k8s.io/initial-events-end: "true"`, then changes.
- timeoutSeconds closes the stream cleanly; so does the client going away or the server stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from podnet.api import objmeta
from podnet.api.errors import APIError, gone
from podnet.api.selection import Filter
from podnet.core.pacing import Pacer
from podnet.model.kinds import Obj, ResourceType
from podnet.store import base as store_base
from podnet.store.base import Store, WatchEvent

DEFAULT_TIMEOUT = 1800.0  # kube-apiserver's --min-request-timeout; a random part is added, as it does
TableFn = Callable[[list[Obj]], Obj]

_END = object()


WATCH_QUEUE_MAX = 1000  # events in flight between the store's watch and one HTTP stream
WRITE_BATCH = 100  # events at most in one write to the client

class Watcher:
    def __init__(self, store: Store, stopping: asyncio.Event, *, bookmark_every: float = 30.0):
        self.store = store
        self.stopping = stopping
        self.bookmark_every = bookmark_every

    async def serve(self, request: web.Request, rt: ResourceType, ns: str | None, flt: Filter,
                    resource_version: str, timeout: float | None, bookmarks: bool,
                    table: TableFn | None, send_initial_events: bool = False) -> web.StreamResponse:
        scope = ns if rt.namespaced and ns else None
        initial: list[Obj] = []
        if resource_version in ("", "0") or send_initial_events:
            items, start_rv = await self.store.list(rt.key, scope)
            initial = [o for o in items if flt.matches(o)]
            state = _MatchState({_key(o) for o in initial}, start_rv)
        else:
            try:
                start_rv = int(resource_version)
            except ValueError:
                raise APIError(400, "BadRequest", f'resourceVersion: Invalid value: "{resource_version}": '
                               f"must be a number") from None
            state = _MatchState(set(), start_rv)
            if flt.active:
                # what matches now is what matched before each live event; replayed events (from
                # start_rv to now) are judged against the object as it was (WatchEvent.prev)
                items, now_rv = await self.store.list(rt.key, scope)
                state = _MatchState({_key(o) for o in items if flt.matches(o)}, now_rv)

        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        send = _Sender(resp, rt, table)
        # Bounded: a slow HTTP client stops this reader, so the store's own per-watcher buffer fills and
        # ends the watch with Expired (the client relists) instead of memory growing without bound.
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=WATCH_QUEUE_MAX)
        reader = asyncio.create_task(self._read(rt, scope, start_rv, queue))
        loop = asyncio.get_running_loop()
        limit = timeout if timeout is not None else DEFAULT_TIMEOUT * (1 + random.random())
        deadline = loop.time() + limit
        next_bookmark = loop.time() + self.bookmark_every
        last_rv = start_rv
        if limit <= 0:
            initial = []  # timeoutSeconds < 0: the stream ends at once
        try:
            for o in initial:
                await send.add_and_maybe_flush("ADDED", o)
            if send_initial_events and bookmarks:
                await send.bookmark(start_rv, initial_events_end=True)
            await send.flush()
            ended = False
            while not ended and not self.stopping.is_set():
                now = loop.time()
                if now >= deadline or _gone(request):
                    break
                if queue.empty():
                    wait = min(deadline - now, 1.0, max(next_bookmark - now, 0.0) if bookmarks else 1.0)
                    try:
                        first = await asyncio.wait_for(queue.get(), max(wait, 0.01))
                    except TimeoutError:
                        if bookmarks and loop.time() >= next_bookmark:
                            await send.bookmark(last_rv)
                            await send.flush()
                            next_bookmark = loop.time() + self.bookmark_every
                        continue
                else:
                    first = queue.get_nowait()
                # what is queued already goes out in one write (a namespace of 1,000 Services
                # deleted is thousands of events: one syscall each would hold the event loop)
                item: Any = first
                for n in range(WRITE_BATCH):
                    if item is _END:
                        ended = True
                        break
                    if isinstance(item, store_base.Expired):
                        send.add("ERROR", gone(str(item.requested), str(item.current)).status())
                        ended = True
                        break
                    ev: WatchEvent = item
                    last_rv = ev.resource_version
                    for typ, obj in _filtered(ev, flt, state):
                        send.add_event(typ, obj)
                    if n == WRITE_BATCH - 1 or queue.empty():
                        break  # a full batch leaves the rest queued (taking one more here lost it)
                    item = queue.get_nowait()
                await send.flush()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp

    async def _read(self, rt: ResourceType, scope: str | None, start_rv: int,
                    queue: asyncio.Queue[Any]) -> None:
        agen = self.store.watch(rt.key, scope, start_rv)
        pacer = Pacer()
        try:
            async for ev in agen:
                await queue.put(ev)
                await pacer.tick()  # the store's generator does not suspend while events wait
            await queue.put(_END)
        except store_base.Expired as e:
            await queue.put(e)
        except store_base.StoreError:
            # the store lost its backend (e.g. etcd unreachable): end the stream; the client
            # re-watches from its last resourceVersion, as after any dropped connection
            await queue.put(_END)
        finally:
            with contextlib.suppress(Exception):
                await agen.aclose()  # type: ignore[attr-defined]


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _key(obj: Obj) -> tuple[str, str]:
    return objmeta.namespace_of(obj), objmeta.name_of(obj)


class _MatchState:
    """Which objects matched the selector just before the next event, as far as this stream knows.

    `seen` holds the answer for every object an event of this stream touched. For the others:
    after `known_rv` (a list taken at that resourceVersion) the answer is `known`; an event at or
    before it (history replayed from an older resourceVersion) is judged by the object as it was
    before that event when the store says (WatchEvent.prev), else by the event itself: ADDED did
    not exist, DELETED carries its last state, a MODIFIED object counts as having matched (a
    DELETED the client may not need beats an object it would keep for ever)."""

    def __init__(self, known: set[tuple[str, str]], known_rv: int):
        self.known = known
        self.known_rv = known_rv
        self.seen: dict[tuple[str, str], bool] = {}

    def matched_before(self, ev: WatchEvent, flt: Filter) -> bool:
        key = _key(ev.object)
        if key in self.seen:
            return self.seen[key]
        if ev.resource_version > self.known_rv:
            return key in self.known
        if ev.type == "ADDED":
            return False
        if ev.prev is not None:
            return flt.matches(ev.prev)
        return True if ev.type == "MODIFIED" else flt.matches(ev.object)


def _filtered(ev: WatchEvent, flt: Filter, state: _MatchState) -> list[tuple[str, Obj]]:
    """kube-apiserver's cacheWatcher.convertToWatchEvent: the event judged against the object
    before and after it. Starts matching: ADDED; keeps matching: MODIFIED; stops matching (or
    deleted while matching): DELETED carrying the object as it last matched, at the event's
    resourceVersion."""
    if not flt.active:
        return [(ev.type, ev.object)]
    before = state.matched_before(ev, flt)
    now = ev.type != "DELETED" and flt.matches(ev.object)
    state.seen[_key(ev.object)] = now
    if now:
        return [("MODIFIED" if before else "ADDED", ev.object)]
    if not before:
        return []
    last = ev.prev if ev.prev is not None and flt.matches(ev.prev) else ev.object
    if last is not ev.object:
        last = dict(last)
        last["metadata"] = {**objmeta.d(last.get("metadata")), "resourceVersion": str(ev.resource_version)}
    return [("DELETED", last)]


class _Sender:
    """Event lines buffered with add*, written with flush (one write per batch)."""

    FLUSH_BYTES = 64 * 1024

    def __init__(self, resp: web.StreamResponse, rt: ResourceType, table: TableFn | None):
        self.resp, self.rt, self.table = resp, rt, table
        self._lines: list[str] = []
        self._size = 0

    def add_event(self, typ: str, obj: Obj) -> None:
        obj = objmeta.with_type(self.rt, obj)
        self.add(typ, self.table([obj]) if self.table is not None else obj)

    async def bookmark(self, rv: int, initial_events_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        self.add("BOOKMARK", {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": meta})

    def add(self, typ: str, obj: Obj) -> None:
        line = json.dumps({"type": typ, "object": obj}, separators=(",", ":")) + "\n"
        self._lines.append(line)
        self._size += len(line)

    async def add_and_maybe_flush(self, typ: str, obj: Obj) -> None:
        self.add_event(typ, obj)
        if self._size >= self.FLUSH_BYTES:
            await self.flush()
            await asyncio.sleep(0)  # a long initial list gives other requests their turn

    async def flush(self) -> None:
        if self._lines:
            data = "".join(self._lines).encode()
            self._lines.clear()
            self._size = 0
            await self.resp.write(data)
