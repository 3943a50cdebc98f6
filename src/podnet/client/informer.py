"""Informer: list, then watch from the list's resourceVersion; keep a local cache; call handlers.

On a dropped stream it resumes from the last seen resourceVersion (nothing lost,
nothing duplicated); on 410 Expired it relists and reports the differences as
events, as client-go's reflector does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from podnet.client.client import ApiClient, ApiError
from podnet.core.pacing import Pacer
from podnet.model.kinds import Obj, ResourceType

log = logging.getLogger(__name__)

Handler = Callable[[str, Obj, Obj | None], Awaitable[None] | None]
"""handler(event_type, obj, old_obj): event_type is ADDED, MODIFIED or DELETED."""


def obj_key(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace", "")
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


class Informer:
    def __init__(self, client: ApiClient, rt: ResourceType, namespace: str | None = None, *,
                 label_selector: str = "", field_selector: str = "",
                 transform: Callable[[Obj], Obj] | None = None):
        self.client = client
        self.rt = rt
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        # applied to every object before it is cached (as client-go's SetTransform): a compact copy
        # holding only what the informer's users read; the key fields (metadata name, namespace,
        # resourceVersion) must stay
        self.transform = transform
        self.cache: dict[str, Obj] = {}  # one dict for the informer's life: relists update it in place
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._task: asyncio.Task[None] | None = None

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def remove_handler(self, handler: Handler) -> None:
        """Stop calling `handler` (users of a shared informer that stop before it does)."""
        with contextlib.suppress(ValueError):
            self.handlers.remove(handler)

    def list(self) -> list[Obj]:
        return list(self.cache.values())

    def get(self, name: str, namespace: str = "") -> Obj | None:
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    async def _emit(self, etype: str, obj: Obj, old: Obj | None) -> None:
        for h in self.handlers:
            try:
                res = h(etype, obj, old)
                if asyncio.iscoroutine(res):
                    await res
            except Exception:  # a handler bug must not stop the informer
                log.exception("informer handler failed for %s %s", self.rt.plural, obj_key(obj))

    async def _relist(self) -> None:
        lst = await self.client.list(self.rt, self.namespace, label_selector=self.label_selector,
                                     field_selector=self.field_selector)
        items = lst.get("items") or []
        for o in items:
            o.setdefault("apiVersion", self.rt.api_version)
            o.setdefault("kind", self.rt.kind)
        fresh = {obj_key(o): self._shape(o) for o in items}
        del items, lst["items"]
        # update the cache in place (users may hold it): changed entries keep their position,
        # new ones are appended, vanished ones removed; then the events, as client-go's Replace
        cache = self.cache
        events: list[tuple[str, Obj, Obj | None]] = []
        for k, o in fresh.items():
            prev = cache.get(k)
            if prev is None:
                events.append(("ADDED", o, None))
            elif prev.get("metadata", {}).get("resourceVersion") != o["metadata"].get("resourceVersion"):
                events.append(("MODIFIED", o, prev))
            else:
                continue
            cache[k] = o
        gone = [k for k in cache if k not in fresh]
        for k in gone:
            events.append(("DELETED", cache.pop(k), None))
        self.resource_version = str(lst.get("metadata", {}).get("resourceVersion", ""))
        for etype, o, prev in events:
            await self._emit(etype, o, o if etype == "DELETED" else prev)

    def _shape(self, obj: Obj) -> Obj:
        return self.transform(obj) if self.transform is not None else obj

    async def run(self) -> None:
        backoff = 0.1
        need_list = True
        pacer = Pacer()
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                    self.synced.set()
                async for ev in self.client.watch(self.rt, self.namespace,
                                                  resource_version=self.resource_version,
                                                  timeout_seconds=300,
                                                  label_selector=self.label_selector,
                                                  field_selector=self.field_selector):
                    backoff = 0.1
                    obj = ev.object
                    rv = str(obj.get("metadata", {}).get("resourceVersion", ""))
                    if ev.type == "BOOKMARK":
                        self.resource_version = rv or self.resource_version
                        continue
                    obj = self._shape(obj)
                    k = obj_key(obj)
                    prev = self.cache.get(k)
                    if ev.type == "DELETED":
                        self.cache.pop(k, None)
                    else:
                        self.cache[k] = obj
                    self.resource_version = rv or self.resource_version
                    await self._emit(ev.type, obj, prev)
                    await pacer.tick()  # buffered watch lines are read without suspending
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.code == 410:
                    need_list = True
                    continue
                log.warning("watch %s failed: %s", self.rt.plural, e)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as e:
                log.debug("watch %s interrupted: %s", self.rt.plural, e)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.rt.plural}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
