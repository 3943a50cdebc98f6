"""In-memory Store: the reference implementation and the fake for tests.

Objects live in one dict per resource key; the watch history is a bounded deque
of the last `history` events (all keys, in resourceVersion order). Everything runs
on the event loop without awaiting, so each write is atomic with respect to
readers and watchers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from itertools import islice

from podnet.store._clone import clone_obj
from podnet.store._keys import Obj, identity, rv_of, stamp
from podnet.store._watch import DEFAULT_WATCH_BUFFER, HubStore, event_namespace
from podnet.store.base import AlreadyExists, Conflict, EventType, Expired, NotFound, WatchEvent


class MemoryStore(HubStore):
    def __init__(self, history: int = 10000, *, watch_buffer: int = DEFAULT_WATCH_BUFFER):
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        super().__init__(watch_buffer)
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._history_events: deque[WatchEvent] = deque(maxlen=history)
        self._compacted_to = 0  # events with rv <= this may be gone (explicit compaction)

    # -- writes -----------------------------------------------------------------------------

    def _commit(self, type_: EventType, key: str, obj: Obj, prev: Obj | None = None) -> WatchEvent:
        self._rv += 1
        stamp(obj, self._rv)
        event = WatchEvent(type_, obj, self._rv, key, prev)
        self._history_events.append(event)
        self._publish(event)
        return event

    async def create(self, key: str, obj: Obj) -> Obj:
        ident = identity(obj)
        objects = self._objects.setdefault(key, {})
        if ident in objects:
            raise AlreadyExists(key, *ident)
        stored = clone_obj(obj)
        self._commit("ADDED", key, stored)
        objects[ident] = stored
        return clone_obj(stored)

    async def get(self, key: str, namespace: str, name: str) -> Obj:
        stored = self._objects.get(key, {}).get((namespace, name))
        if stored is None:
            raise NotFound(key, namespace, name)
        return clone_obj(stored)

    async def update(self, key: str, obj: Obj, expected_rv: int | None = None) -> Obj:
        ident = identity(obj)
        objects = self._objects.get(key, {})
        current = objects.get(ident)
        if current is None:
            raise NotFound(key, *ident)
        if expected_rv is not None and rv_of(current) != expected_rv:
            raise Conflict(key, *ident)
        stored = clone_obj(obj)
        self._commit("MODIFIED", key, stored, current)
        objects[ident] = stored
        return clone_obj(stored)

    async def delete(self, key: str, namespace: str, name: str, expected_rv: int | None = None) -> Obj:
        objects = self._objects.get(key, {})
        current = objects.get((namespace, name))
        if current is None:
            raise NotFound(key, namespace, name)
        if expected_rv is not None and rv_of(current) != expected_rv:
            raise Conflict(key, namespace, name)
        del objects[(namespace, name)]
        last = clone_obj(current)
        self._commit("DELETED", key, last, current)
        return clone_obj(last)

    # -- reads ------------------------------------------------------------------------------

    async def list(self, key: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        objects = self._objects.get(key, {})
        idents = sorted(objects) if namespace is None else sorted(i for i in objects if i[0] == namespace)
        return [clone_obj(objects[i]) for i in idents], self._rv

    # -- watch history ----------------------------------------------------------------------

    def _oldest_missing(self) -> int:
        """The highest rv whose event may no longer be retained."""
        if self._history_events:
            return max(self._compacted_to, self._history_events[0].resource_version - 1)
        return self._rv

    def _check_watchable(self, from_rv: int) -> None:
        floor = self._oldest_missing()
        if from_rv < floor:
            raise Expired(from_rv, floor + 1, self._rv)

    async def _history(self, key: str, namespace: str | None, from_rv: int,
                       to_rv: int) -> AsyncIterator[WatchEvent]:
        # Taken synchronously: the deque may not change while it is being sliced.
        events = self._history_events
        start = from_rv + 1 - events[0].resource_version if events else 0
        selected = [e for e in islice(events, max(start, 0), None)
                    if e.resource_version <= to_rv and e.key == key
                    and (namespace is None or event_namespace(e) == namespace)]
        for event in selected:
            yield event

    async def compact(self, keep_from_rv: int) -> None:
        events = self._history_events
        while events and events[0].resource_version < keep_from_rv:
            events.popleft()
        self._compacted_to = max(self._compacted_to, min(keep_from_rv - 1, self._rv))

    async def close(self) -> None:
        self._close_watches()
