"""Owner/dependent lookups by metadata.ownerReferences.

`OwnerIndex` keeps, from one list+watch per resource, which objects reference which owner
uid and which uids are alive, so finding dependents costs a dictionary lookup instead of
a scan of every resource. `find_dependents` uses the index when it runs and falls back to
scanning the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from podnet.core.pacing import Pacer
from podnet.model import kinds
from podnet.model.kinds import Obj, ResourceType
from podnet.store.base import Conflict, Expired, NotFound, Store, StoreError, WatchEvent

log = logging.getLogger(__name__)

Ident = tuple[str, str, str]  # (store key, namespace, name)


def owner_refs(obj: Obj) -> list[dict[str, Any]]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


class OwnerIndex:
    """uid -> dependents, and the set of live uids, kept current from the store's watch."""

    def __init__(self, store: Store):
        self.store = store
        self._dependents: dict[str, set[Ident]] = {}
        self._owners: dict[Ident, set[str]] = {}
        self._uid_of: dict[Ident, str] = {}
        self._live: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_removed: list[Callable[[ResourceType, Obj], None]] = []
        self.ready = False

    def dependents_of(self, uid: str) -> list[Ident]:
        return sorted(self._dependents.get(uid, ()))

    def dangling(self) -> list[Ident]:
        """Objects with an ownerReference to a uid that no longer exists."""
        return sorted(i for i, owners in self._owners.items() if any(u not in self._live for u in owners))

    async def start(self) -> None:
        for rt in kinds.ALL_RESOURCES:
            items, rv = await self.store.list(rt.key)
            for o in items:
                self._put(rt.key, o)
            self._tasks.append(asyncio.create_task(self._follow(rt, rv), name=f"owner-index-{rt.plural}"))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    async def _follow(self, rt: ResourceType, rv: int) -> None:
        pacer = Pacer()
        while True:
            try:
                async for ev in self.store.watch(rt.key, None, rv):
                    rv = ev.resource_version
                    self._apply(rt, ev)
                    await pacer.tick()  # the store's watch does not suspend while events wait
                return
            except (Expired, StoreError) as e:
                if not isinstance(e, Expired):  # e.g. etcd unreachable: retry, then resync by a list
                    log.warning("owner index lost its watch of %s: %s", rt.plural, e)
                    await asyncio.sleep(1.0)
                try:
                    items, rv = await self.store.list(rt.key)
                except StoreError:
                    continue
                stale = {i for i in self._uid_of if i[0] == rt.key}
                for o in items:
                    stale.discard(self._put(rt.key, o))
                for ident in stale:
                    self._drop(ident)

    def _apply(self, rt: ResourceType, ev: WatchEvent) -> None:
        if ev.type == "DELETED":
            meta = ev.object.get("metadata") or {}
            self._drop((rt.key, str(meta.get("namespace") or ""), str(meta.get("name") or "")))
            for fn in self.on_removed:
                try:
                    fn(rt, ev.object)
                except Exception:
                    log.exception("owner index listener failed")
        else:
            self._put(rt.key, ev.object)

    def _put(self, key: str, obj: Obj) -> Ident:
        meta = obj.get("metadata") or {}
        ident = (key, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        self._drop(ident)
        uid = str(meta.get("uid") or "")
        if uid:
            self._uid_of[ident] = uid
            self._live.add(uid)
        owners = {str(r.get("uid")) for r in owner_refs(obj) if r.get("uid")}
        if owners:
            self._owners[ident] = owners
            for u in owners:
                self._dependents.setdefault(u, set()).add(ident)
        return ident

    def _drop(self, ident: Ident) -> None:
        uid = self._uid_of.pop(ident, None)
        if uid is not None:
            self._live.discard(uid)
        for u in self._owners.pop(ident, set()):
            deps = self._dependents.get(u)
            if deps is not None:
                deps.discard(ident)
                if not deps:
                    del self._dependents[u]


async def find_dependents(store: Store, owner_rt: ResourceType, owner: Obj,
                          index: OwnerIndex | None = None) -> list[tuple[ResourceType, Obj]]:
    """Objects with an ownerReference to owner's uid (same namespace, or anywhere for a cluster-scoped
    owner)."""
    uid = (owner.get("metadata") or {}).get("uid")
    if not uid:
        return []
    if index is not None and index.ready:
        out: list[tuple[ResourceType, Obj]] = []
        for key, dns, dname in index.dependents_of(str(uid)):
            rt = kinds.by_key(key)
            if rt is None:
                continue
            try:
                obj = await store.get(key, dns, dname)
            except NotFound:
                continue
            if any(r.get("uid") == uid for r in owner_refs(obj)):
                out.append((rt, obj))
        return out
    ns: str | None = (owner.get("metadata") or {}).get("namespace") or None
    found: list[tuple[ResourceType, Obj]] = []
    for rt in kinds.ALL_RESOURCES:
        if ns is not None and not rt.namespaced:
            continue
        items, _ = await store.list(rt.key, ns if rt.namespaced else None)
        for o in items:
            if any(r.get("uid") == uid for r in owner_refs(o)):
                found.append((rt, o))
    return found


async def owner_exists(store: Store, dependent: Obj, ref: dict[str, Any]) -> bool:
    """Whether the owner a reference names still exists with the referenced uid."""
    rt = kinds.by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
    if rt is None:
        return True  # a kind podnet does not serve: never collect on its account
    ns = (dependent.get("metadata") or {}).get("namespace") or "" if rt.namespaced else ""
    try:
        owner = await store.get(rt.key, ns, str(ref.get("name", "")))
    except NotFound:
        return False
    return bool((owner.get("metadata") or {}).get("uid") == ref.get("uid"))


async def strip_owner_refs(store: Store, rt: ResourceType, obj: Obj, uids: set[str]) -> None:
    """Remove ownerReferences to the given uids (retrying on write races)."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace") or "", str(meta.get("name", ""))
    for _ in range(10):
        try:
            cur = await store.get(rt.key, ns, name)
        except NotFound:
            return
        refs = owner_refs(cur)
        keep = [r for r in refs if r.get("uid") not in uids]
        if len(keep) == len(refs):
            return
        if keep:
            cur["metadata"]["ownerReferences"] = keep
        else:
            cur["metadata"].pop("ownerReferences", None)
        try:
            await store.update(rt.key, cur, int(cur["metadata"].get("resourceVersion") or 0))
            return
        except Conflict:
            continue
        except NotFound:
            return
