"""Garbage collection inside the API server process: dependents, foreground waits, namespaces.

- When an object leaves the store, its dependents (objects with an ownerReference to its uid)
  are deleted in the background once none of their owners exist any more; references to owners
  that are gone are stripped from dependents that keep another owner.
- An owner deleted with propagationPolicy=Foreground keeps the finalizer `foregroundDeletion`
  until its dependents are gone; the collector deletes them and then drops the finalizer.
- A Terminating namespace is emptied (every namespaced object deleted, pods gracefully) and
  removed when nothing is left in it.
- A periodic sweep catches dependents created after their owner went away.

Store calls on SQLite and in memory complete without suspending, so a loop over thousands of
objects (emptying a namespace of 1,600 Services, their dependents) would hold the event loop for
seconds. Every loop here goes through a `Pacer`, which gives the loop back after each few
milliseconds of work (`core/pacing.py`): other requests wait at most about one slice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from podnet.api import objmeta
from podnet.api.deletion import FOREGROUND_FINALIZER, DeleteOptions, Deleter
from podnet.api.dependents import OwnerIndex, find_dependents, owner_exists, owner_refs, strip_owner_refs
from podnet.api.errors import APIError
from podnet.core.pacing import Pacer
from podnet.core.waiting import wait_event
from podnet.model import kinds
from podnet.model.kinds import Obj, ResourceType
from podnet.store import base as store_base

log = logging.getLogger(__name__)

class GarbageCollector:
    def __init__(self, deleter: Deleter, *, poll: float = 0.2, sweep_every: float = 10.0):
        self.deleter = deleter
        self.registry = deleter.registry
        self.store = deleter.store
        self.index = OwnerIndex(self.store)
        self.poll = poll
        self.sweep_every = sweep_every
        self._removed: asyncio.Queue[tuple[ResourceType, Obj]] = asyncio.Queue()
        self._foreground: dict[tuple[str, str, str], ResourceType] = {}
        self._namespaces: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self.pacer = Pacer(backlog=True)
        self.index.on_removed.append(self._on_removed)
        deleter.on_foreground.append(self._on_foreground)
        deleter.on_namespace_terminating.append(self._on_namespace)

    # ---- notifications ---------------------------------------------------------------------

    def _on_removed(self, rt: ResourceType, obj: Obj) -> None:
        self._removed.put_nowait((rt, obj))

    def _on_foreground(self, rt: ResourceType, obj: Obj) -> None:
        self._foreground[(rt.key, objmeta.namespace_of(obj), objmeta.name_of(obj))] = rt
        self._wake.set()

    def _on_namespace(self, rt: ResourceType, obj: Obj) -> None:
        self._namespaces.add(objmeta.name_of(obj))
        self._wake.set()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Index owners, then pick up work left by a previous run (terminating namespaces, foreground
        owners, dependents whose owners are gone)."""
        await self.index.start()
        self.deleter.index = self.index
        namespaces, _ = await self.store.list(kinds.NAMESPACES.key)
        for ns in namespaces:
            if (ns.get("metadata") or {}).get("deletionTimestamp"):
                self._namespaces.add(objmeta.name_of(ns))
        for rt in kinds.ALL_RESOURCES:
            items, _ = await self.store.list(rt.key)
            for o in items:
                if FOREGROUND_FINALIZER in objmeta.finalizers_of(o):
                    self._foreground[(rt.key, objmeta.namespace_of(o), objmeta.name_of(o))] = rt
        self._tasks = [asyncio.create_task(self._removed_loop(), name="gc-removed"),
                       asyncio.create_task(self._pending_loop(), name="gc-pending"),
                       asyncio.create_task(self._sweep_loop(), name="gc-sweep")]

    async def stop(self) -> None:
        self.deleter.index = None
        await self.index.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    async def idle(self, timeout: float = 5.0) -> None:
        """Wait until queued work is done (tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (not self._removed.empty() or self._foreground or self._namespaces) and loop.time() < deadline:
            await asyncio.sleep(0.02)

    # ---- background dependents -------------------------------------------------------------

    async def _removed_loop(self) -> None:
        while True:
            rt, obj = await self._removed.get()
            await self.pacer.tick()  # Queue.get does not suspend while items are queued
            try:
                await self.collect_dependents(rt, obj)
            except Exception:
                log.exception("garbage collection after %s %s failed", rt.plural, objmeta.name_of(obj))

    async def collect_dependents(self, owner_rt: ResourceType, owner: Obj) -> None:
        for rt, dep in await find_dependents(self.store, owner_rt, owner, self.index):
            await self._collect_one(rt, dep)
            await self.pacer.tick()

    async def _collect_one(self, rt: ResourceType, dep: Obj) -> None:
        gone: set[str] = set()
        alive = False
        for ref in owner_refs(dep):
            if await owner_exists(self.store, dep, ref):
                alive = True
            else:
                gone.add(str(ref.get("uid")))
        if not gone:
            return
        if alive:
            await strip_owner_refs(self.store, rt, dep, gone)
            return
        if (dep.get("metadata") or {}).get("deletionTimestamp"):
            return
        with contextlib.suppress(APIError):
            await self.deleter.delete(rt, objmeta.namespace_of(dep), objmeta.name_of(dep),
                                      DeleteOptions(propagation="Background", uid=objmeta.uid_of(dep)))

    # ---- foreground owners and terminating namespaces -------------------------------------

    async def _pending_loop(self) -> None:
        while True:
            for key, rt in list(self._foreground.items()):
                try:
                    if await self._advance_foreground(rt, key[1], key[2]):
                        self._foreground.pop(key, None)
                except Exception:
                    log.exception("foreground deletion of %s %s/%s failed", rt.plural, key[1], key[2])
            for ns in list(self._namespaces):
                try:
                    if await self._advance_namespace(ns):
                        self._namespaces.discard(ns)
                except Exception:
                    log.exception("emptying namespace %s failed", ns)
            self._wake.clear()
            await wait_event(self._wake, self.poll)

    async def _advance_foreground(self, rt: ResourceType, ns: str, name: str) -> bool:
        """One step for an owner deleted in the foreground; True when finished."""
        try:
            owner = await self.store.get(rt.key, ns, name)
        except store_base.NotFound:
            return True
        if FOREGROUND_FINALIZER not in objmeta.finalizers_of(owner):
            return True
        deps = await find_dependents(self.store, rt, owner, self.index)
        for drt, dep in deps:
            if not (dep.get("metadata") or {}).get("deletionTimestamp"):
                with contextlib.suppress(APIError):
                    await self.deleter.delete(drt, objmeta.namespace_of(dep), objmeta.name_of(dep),
                                              DeleteOptions(propagation="Foreground"))
                await self.pacer.tick()
        if deps:
            return False

        def drop(obj: Obj) -> Obj:
            fins = [f for f in objmeta.finalizers_of(obj) if f != FOREGROUND_FINALIZER]
            if fins:
                obj["metadata"]["finalizers"] = fins
            else:
                obj["metadata"].pop("finalizers", None)
            return obj

        with contextlib.suppress(APIError):
            await self.registry.write_through(rt, ns, name, drop)
        return True

    async def _advance_namespace(self, ns: str) -> bool:
        try:
            nso = await self.store.get(kinds.NAMESPACES.key, "", ns)
        except store_base.NotFound:
            return True
        if not (nso.get("metadata") or {}).get("deletionTimestamp"):
            return True
        remaining = 0
        for rt in (*kinds.ALL_RESOURCES, *kinds.custom_resources()):
            if not rt.namespaced:
                continue
            items, _ = await self.store.list(rt.key, ns)
            await self.pacer.tick()
            remaining += len(items)
            for o in items:
                if (o.get("metadata") or {}).get("deletionTimestamp"):
                    continue
                with contextlib.suppress(APIError):
                    await self.deleter.delete(rt, ns, objmeta.name_of(o),
                                              DeleteOptions(propagation="Background"))
                await self.pacer.tick()
        if remaining or objmeta.finalizers_of(nso):
            return False
        try:
            removed = await self.store.delete(kinds.NAMESPACES.key, "", ns, int(objmeta.rv_of(nso) or 0))
        except (store_base.NotFound, store_base.Conflict):
            return False
        await self.registry.after_removed(kinds.NAMESPACES, removed)
        return True

    # ---- periodic sweep --------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        first = True
        while True:
            if not first:
                await asyncio.sleep(self.sweep_every)
            first = False
            try:
                await self.sweep()
            except Exception:
                log.exception("garbage collection sweep failed")

    async def sweep(self) -> None:
        """Collect objects whose owners are gone (e.g. created after the owner was deleted)."""
        for key, ns, name in self.index.dangling():
            rt = kinds.by_key(key)
            if rt is None:
                continue
            try:
                obj = await self.store.get(key, ns, name)
            except store_base.NotFound:
                continue
            if owner_refs(obj):
                await self._collect_one(rt, obj)
            await self.pacer.tick()
