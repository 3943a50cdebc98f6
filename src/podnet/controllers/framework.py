"""A small generic controller runner, shaped like kube-controller-manager's controllers.

A controller *declares* three things (`Controller`):

- what it watches: one `Watch` per resource, each with a function mapping an informer event
  (type, object, old object) to the queue keys it concerns;
- its reconcile function, called with one key at a time (level-triggered: it reads the caches);
- the keys it wants on start and at every periodic resync (and, optionally, its own shorter period).

`ControllerRunner` owns one shared informer per resource, runs cache hooks (index upkeep) before
any controller sees an event, gives each controller its own `WorkQueue` and workers, and retries a
failed key with backoff. Adding a controller is one declaration passed to `register`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from podnet.client.client import ApiClient, ApiError
from podnet.client.informer import Informer
from podnet.controllers.identity import CURRENT_LOOP
from podnet.controllers.workqueue import WorkQueue
from podnet.core.pacing import Pacer
from podnet.model.kinds import Obj, ResourceType

log = logging.getLogger(__name__)

KeysOf = Callable[[str, Obj, "Obj | None"], Iterable[str]]
"""keys(event_type, obj, old_obj) -> the queue keys an informer event concerns."""
CacheHook = Callable[[str, Obj, "Obj | None"], None]
"""hook(event_type, obj, old_obj): keeps indexes/bookkeeping in step with a cache; runs first."""


@dataclass(frozen=True)
class Watch:
    rt: ResourceType
    keys: KeysOf


@dataclass
class Controller:
    name: str
    reconcile: Callable[[str], Awaitable[None]]
    watches: tuple[Watch, ...] = ()
    all_keys: Callable[[], Iterable[str]] | None = None  # enqueued on start and at every resync
    workers: int = 1
    period: float | None = None  # also enqueue all_keys() this often (seconds)


def own_key(etype: str, obj: Obj, old: Obj | None) -> Iterable[str]:
    """The object's own key unless it was deleted (the usual watch of a controller's primary kind)."""
    if etype == "DELETED":
        return ()
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    return (f"{ns}/{meta.get('name')}" if ns else str(meta.get("name")),)


@dataclass
class ControlLoop:
    """A registered controller's queue and counters."""

    name: str
    sync: Callable[[str], Awaitable[None]]
    workers: int = 2
    queue: WorkQueue = field(default_factory=WorkQueue)
    syncs: int = 0
    errors: int = 0


class ControllerRunner:
    def __init__(self, client: ApiClient, *, resync_seconds: float = 60.0, tick_seconds: float = 1.0):
        self.client = client
        self.resync_seconds = resync_seconds
        self.tick_seconds = tick_seconds
        self.informers: dict[str, Informer] = {}
        self.controllers: dict[str, Controller] = {}
        self.loops: dict[str, ControlLoop] = {}
        self._hooks: dict[str, list[CacheHook]] = {}
        self._routes: dict[str, list[tuple[ControlLoop, KeysOf]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # ---- declarations -------------------------------------------------------------------
    def informer(self, rt: ResourceType) -> Informer:
        """The one shared informer of a resource (made on first use)."""
        inf = self.informers.get(rt.key)
        if inf is None:
            inf = self.informers[rt.key] = Informer(self.client, rt)
            self._hooks[rt.key] = []
            self._routes[rt.key] = []
            inf.add_handler(self._dispatcher(rt.key))
            if self._started:
                inf.start()
        return inf

    def add_cache_hook(self, rt: ResourceType, hook: CacheHook) -> None:
        self.informer(rt)
        self._hooks[rt.key].append(hook)

    def register(self, c: Controller) -> ControlLoop:
        if c.name in self.controllers:
            raise ValueError(f"controller {c.name!r} is registered already")
        self.controllers[c.name] = c
        loop = self.loops[c.name] = ControlLoop(c.name, c.reconcile, workers=c.workers)
        for w in c.watches:
            self.informer(w.rt)
            self._routes[w.rt.key].append((loop, w.keys))
        if self._started:
            self._start_workers(loop)
            self._enqueue_all(c)
        return loop

    def enqueue(self, controller: str, key: str) -> None:
        self.loops[controller].queue.add(key)

    def enqueue_after(self, controller: str, key: str, delay: float) -> None:
        self.loops[controller].queue.add_after(key, delay)

    def _dispatcher(self, rt_key: str) -> Callable[[str, Obj, Obj | None], None]:
        def on_event(etype: str, obj: Obj, old: Obj | None) -> None:
            for hook in self._hooks[rt_key]:
                hook(etype, obj, old)
            for loop, keys in self._routes[rt_key]:
                for k in keys(etype, obj, old):
                    loop.queue.add(k)
        return on_event

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self, sync_timeout: float | None = 30.0) -> None:
        """Start the informers, wait until each has listed once (None: as long as it takes; the
        informers retry on their own), then start the workers and queue every controller's keys."""
        self._started = True
        for inf in self.informers.values():
            inf.start()
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers.values())),
                               sync_timeout)
        for loop in self.loops.values():
            self._start_workers(loop)
        self._tasks.append(asyncio.create_task(self._ticker(), name="ctl-ticker"))
        self.enqueue_everything()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for loop in self.loops.values():
            loop.queue.close()
        for inf in self.informers.values():
            await inf.stop()
        self._started = False

    def _start_workers(self, loop: ControlLoop) -> None:
        for i in range(loop.workers):
            self._tasks.append(asyncio.create_task(self._worker(loop), name=f"ctl-{loop.name}-{i}"))

    def _enqueue_all(self, c: Controller) -> None:
        if c.all_keys is not None:
            q = self.loops[c.name].queue
            for k in c.all_keys():
                q.add(k)

    def enqueue_everything(self) -> None:
        for c in self.controllers.values():
            self._enqueue_all(c)

    async def _ticker(self) -> None:
        now = time.monotonic()
        last_resync = now
        last_run = {name: now for name in self.controllers}
        while True:
            await asyncio.sleep(self.tick_seconds)
            now = time.monotonic()
            for c in list(self.controllers.values()):
                if c.period is not None and now - last_run.get(c.name, 0.0) >= c.period:
                    last_run[c.name] = now
                    self._enqueue_all(c)
            if now - last_resync >= self.resync_seconds:
                last_resync = now
                self.enqueue_everything()

    async def _worker(self, loop: ControlLoop) -> None:
        # syncs through the in-process client, or with nothing to write, never suspend: without the
        # pacer a worker draining a long queue would starve the informers (their store watches
        # overflow and relist) and the API server's requests
        pacer = Pacer()
        CURRENT_LOOP.set(loop.name)  # who its requests are (controllers/identity.py); this task only
        while True:
            await pacer.tick()
            key = await loop.queue.get()
            try:
                await loop.sync(str(key))
                loop.syncs += 1
                loop.queue.forget(key)
            except asyncio.CancelledError:
                loop.queue.done(key)
                raise
            except ApiError as e:
                loop.errors += 1
                delay = loop.queue.retry(key)
                log.info("%s %s: %s (retry in %.2fs)", loop.name, key, e, delay)
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                loop.errors += 1
                delay = loop.queue.retry(key)
                log.info("%s %s: API unreachable: %s (retry in %.2fs)", loop.name, key, e, delay)
            except Exception:
                loop.errors += 1
                loop.queue.retry(key)
                log.exception("%s %s: reconcile failed", loop.name, key)
            loop.queue.done(key)
