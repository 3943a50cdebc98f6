"""Watch fan-out shared by the store implementations.

A writer publishes each committed event to `WatchHub.publish`, synchronously and
in resourceVersion order. Every watcher has its own bounded buffer: the writer
only appends (never waits), and a watcher whose buffer overflows is ended with
`Expired` instead of holding memory without bound — the client relists and
watches again, as it would after a compaction.

`HubStore.watch` gives the gap-free, duplicate-free join of history and live
events: it registers the watcher first (live events from then on are buffered),
notes the store's resourceVersion at that instant, replays history up to that
point, then drains the buffer. Implementations supply `_check_watchable` and
`_history`.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from podnet.core import fastjson
from podnet.store._clone import clone_obj
from podnet.store.base import Expired, Store, WatchEvent

DEFAULT_WATCH_BUFFER = 10000
"""Events a watcher may fall behind before it is ended with Expired."""


class _Watcher:
    __slots__ = ("closed", "key", "limit", "namespace", "overflow_at", "pending", "wakeup")

    def __init__(self, key: str, namespace: str | None, limit: int):
        self.key = key
        self.namespace = namespace
        self.limit = limit
        self.pending: deque[WatchEvent] = deque()
        self.wakeup = asyncio.Event()
        self.overflow_at = 0  # rv of the event that did not fit; 0 = no overflow
        self.closed = False

    def offer(self, event: WatchEvent) -> None:
        if self.overflow_at or self.closed:
            return
        if self.namespace is not None and event_namespace(event) != self.namespace:
            return
        if len(self.pending) >= self.limit:
            self.overflow_at = event.resource_version
            self.pending.clear()
        else:
            self.pending.append(event)
        self.wakeup.set()


def event_namespace(event: WatchEvent) -> str:
    meta = event.object.get("metadata") or {}
    return str(meta.get("namespace") or "")


class WatchHub:
    """Live fan-out of committed events to the registered watchers of each key."""

    def __init__(self, buffer_limit: int = DEFAULT_WATCH_BUFFER):
        self.buffer_limit = buffer_limit
        self._by_key: dict[str, set[_Watcher]] = {}
        self._listeners: dict[str, list[Callable[[WatchEvent], None]]] = {}
        self.closed = False

    def listen(self, key: str, fn: Callable[[WatchEvent], None]) -> None:
        """Call fn(event) for each committed event of `key`, synchronously as it is published."""
        self._listeners.setdefault(key, []).append(fn)

    def register(self, key: str, namespace: str | None) -> _Watcher:
        watcher = _Watcher(key, namespace, self.buffer_limit)
        self._by_key.setdefault(key, set()).add(watcher)
        return watcher

    def unregister(self, watcher: _Watcher) -> None:
        watchers = self._by_key.get(watcher.key)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._by_key[watcher.key]

    def publish(self, event: WatchEvent) -> None:
        """Hand an event (whose object the store no longer mutates) to every matching watcher."""
        for fn in self._listeners.get(event.key, ()):
            fn(event)
        watchers = self._by_key.get(event.key)
        if watchers:
            for watcher in watchers:
                watcher.offer(event)

    def close(self) -> None:
        self.closed = True
        for watchers in self._by_key.values():
            for watcher in watchers:
                watcher.closed = True
                watcher.wakeup.set()
        self._by_key.clear()


class HubStore(Store, abc.ABC):
    """A Store whose watch is history replay + live fan-out through a WatchHub."""

    def __init__(self, watch_buffer: int = DEFAULT_WATCH_BUFFER):
        self._hub = WatchHub(watch_buffer)
        self._rv = 0

    @abc.abstractmethod
    def _check_watchable(self, from_rv: int) -> None:
        """Raise Expired unless every event after from_rv is still retained."""

    @abc.abstractmethod
    def _history(self, key: str, namespace: str | None, from_rv: int,
                 to_rv: int) -> AsyncIterator[WatchEvent]:
        """Retained events of `key` with from_rv < rv <= to_rv, in order. The objects are the
        store's own (the caller copies). Raises Expired if some of them were compacted meanwhile."""

    async def current_rv(self) -> int:
        return self._rv

    async def check_retained(self, rv: int) -> None:
        self._check_watchable(rv)

    async def watch(self, key: str, namespace: str | None, from_rv: int) -> AsyncIterator[WatchEvent]:
        if self._hub.closed:
            return
        # No await between the check, the registration and reading self._rv: writes run to
        # completion on the event loop, so the replay bound and the live stream meet exactly.
        self._check_watchable(from_rv)
        watcher = self._hub.register(key, namespace)
        snapshot_rv = self._rv
        try:
            last = from_rv
            if from_rv < snapshot_rv:
                async for event in self._history(key, namespace, from_rv, snapshot_rv):
                    last = event.resource_version
                    yield _copy_event(event)
            last = max(last, snapshot_rv)
            while True:
                while watcher.pending:
                    event = watcher.pending.popleft()
                    if event.resource_version > last:
                        last = event.resource_version
                        yield _copy_event(event)
                if watcher.overflow_at:
                    raise Expired(last, watcher.overflow_at, self._rv)
                if watcher.closed:
                    return
                watcher.wakeup.clear()
                await watcher.wakeup.wait()
        finally:
            self._hub.unregister(watcher)

    def on_commit(self, key: str, fn: Callable[[WatchEvent], None]) -> bool:
        # published in the same step as the commit: a listener is never behind the store
        self._hub.listen(key, fn)
        return True

    def _publish(self, event: WatchEvent) -> None:
        self._hub.publish(event)

    def _close_watches(self) -> None:
        self._hub.close()


def _copy_event(event: WatchEvent) -> WatchEvent:
    prev = clone_obj(event.prev) if event.prev is not None else None
    obj = fastjson.loads(event.text) if event.text is not None else clone_obj(event.object)
    return WatchEvent(event.type, obj, event.resource_version, event.key, prev)
