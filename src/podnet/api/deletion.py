"""DELETE semantics: preconditions, graceful pod deletion, finalizers, propagation policies.

- A Pod bound to a node is deleted gracefully: it gets metadata.deletionTimestamp (now + grace)
  and deletionGracePeriodSeconds and stays; the node agent stops it and deletes it again with
  gracePeriodSeconds=0. An unbound or finished Pod, or grace 0, goes at once.
- An object with finalizers only gets deletionTimestamp; it leaves the store when the last
  finalizer is removed (Registry.remove_if_finalized).
- Propagation: Background (default) deletes the object now and lets the garbage collector take
  the dependents; Foreground keeps the object (finalizer `foregroundDeletion`) until its dependents
  are gone; Orphan strips the ownerReferences from the dependents first.
- A Namespace turns Terminating; the namespace cleaner empties and then removes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from podnet.api import objmeta
from podnet.api.dependents import OwnerIndex, find_dependents, strip_owner_refs
from podnet.api.errors import APIError, conflict, forbidden
from podnet.api.registry import Registry
from podnet.model import kinds
from podnet.model.kinds import Obj, ResourceType
from podnet.store import base as store_base

POLICIES = ("Foreground", "Background", "Orphan")
FOREGROUND_FINALIZER = "foregroundDeletion"
DEFAULT_POD_GRACE = 30
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")  # NamespaceLifecycle admission

Notify = Callable[[ResourceType, Obj], Awaitable[None] | None]


@dataclass
class DeleteOptions:
    propagation: str | None = None
    grace: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False

    @classmethod
    def from_request(cls, body: Any, query: dict[str, str]) -> DeleteOptions:
        """DeleteOptions from a JSON body and/or query parameters (the body wins)."""
        opts = cls()
        b = body if isinstance(body, dict) else {}
        prop = b.get("propagationPolicy") or query.get("propagationPolicy")
        if prop is None:
            orphan = b.get("orphanDependents", query.get("orphanDependents"))
            if orphan is not None:
                prop = "Orphan" if str(orphan).lower() == "true" else "Background"
        if prop is not None:
            if prop not in POLICIES:
                raise APIError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                               f'Unsupported value: "{prop}": supported values: "Foreground", "Background", '
                               f'"Orphan"')
            opts.propagation = str(prop)
        grace = b.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        if grace is not None:
            try:
                opts.grace = int(grace)
            except (TypeError, ValueError):
                raise APIError(400, "BadRequest", f"gracePeriodSeconds: invalid value {grace!r}: "
                               f"must be an integer") from None
        pre = objmeta.d(b.get("preconditions"))
        if isinstance(pre, dict):
            opts.uid = pre.get("uid") or None
            opts.resource_version = pre.get("resourceVersion") or None
        dry = b.get("dryRun") or query.get("dryRun")
        opts.dry_run = bool(dry) and dry != []
        return opts


class Deleter:
    def __init__(self, registry: Registry):
        self.registry = registry
        self.store = registry.store
        self.index: OwnerIndex | None = None  # set by the server once the garbage collector runs
        self.on_foreground: list[Notify] = []  # an owner now waits for its dependents
        self.on_namespace_terminating: list[Notify] = []

    async def delete(self, rt: ResourceType, ns: str, name: str, opts: DeleteOptions) -> tuple[Obj, bool]:
        """Returns (object, removed now)."""
        for _ in range(8):
            obj = await self.registry.get(rt, ns, name)
            self._check_preconditions(rt, obj, opts)
            if rt is kinds.NAMESPACES and name in IMMORTAL_NAMESPACES:
                raise forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted')
            if opts.dry_run:
                return obj, True
            try:
                if rt is kinds.NAMESPACES:
                    return await self._delete_namespace(obj), False
                return await self._delete_once(rt, obj, opts)
            except (store_base.Conflict, store_base.NotFound, _Retry):
                continue  # changed or removed meanwhile: read it again (a 404 then says so)
        raise conflict(rt, name)

    def _check_preconditions(self, rt: ResourceType, obj: Obj, opts: DeleteOptions) -> None:
        if opts.uid and opts.uid != objmeta.uid_of(obj):
            raise conflict(rt, objmeta.name_of(obj), f"Precondition failed: UID in precondition: {opts.uid}, "
                                               f"UID in object meta: {objmeta.uid_of(obj)}")
        if opts.resource_version and opts.resource_version != objmeta.rv_of(obj):
            raise conflict(rt, objmeta.name_of(obj), f"Precondition failed: ResourceVersion in precondition: "
                                               f"{opts.resource_version}, ResourceVersion in object meta: "
                                               f"{objmeta.rv_of(obj)}")

    async def _delete_once(self, rt: ResourceType, obj: Obj, opts: DeleteOptions) -> tuple[Obj, bool]:
        policy = opts.propagation or "Background"
        meta = objmeta.metadata(obj)
        grace = pod_grace(obj, opts.grace) if rt is kinds.PODS else 0
        if policy == "Orphan":
            for drt, dep in await find_dependents(self.store, rt, obj, self.index):
                await strip_owner_refs(self.store, drt, dep, {objmeta.uid_of(obj)})
        fins = objmeta.finalizers_of(obj)
        if policy == "Foreground" and FOREGROUND_FINALIZER not in fins and \
                await find_dependents(self.store, rt, obj, self.index):
            fins.append(FOREGROUND_FINALIZER)
        if fins or grace > 0:
            return await self._mark_deleting(rt, obj, fins, grace, policy), False
        try:
            removed = await self.store.delete(rt.key, objmeta.namespace_of(obj), objmeta.name_of(obj),
                                              int(meta.get("resourceVersion") or 0))
        except store_base.NotFound:
            raise _Retry() from None
        await self.registry.after_removed(rt, removed)
        return objmeta.with_type(rt, removed), True

    async def _mark_deleting(self, rt: ResourceType, obj: Obj, fins: list[str], grace: int,
                             policy: str) -> Obj:
        meta = objmeta.metadata(obj)
        changed = False
        deadline = objmeta.now() + dt.timedelta(seconds=grace)
        current_grace = meta.get("deletionGracePeriodSeconds")
        if not meta.get("deletionTimestamp") or current_grace is None or grace < int(current_grace):
            meta["deletionTimestamp"] = objmeta.rfc3339(deadline)
            meta["deletionGracePeriodSeconds"] = grace
            changed = True
        if fins != objmeta.finalizers_of(obj):
            meta["finalizers"] = fins
            changed = True
        if not changed:
            return obj
        stored = await self.store.update(rt.key, obj, int(meta.get("resourceVersion") or 0))
        stored = objmeta.with_type(rt, stored)
        if FOREGROUND_FINALIZER in fins:
            await _notify(self.on_foreground, rt, stored)
        result = await self.registry.remove_if_finalized(rt, stored)
        return objmeta.with_type(rt, result)

    async def _delete_namespace(self, obj: Obj) -> Obj:
        meta = objmeta.metadata(obj)
        if meta.get("deletionTimestamp"):
            return obj
        meta["deletionTimestamp"] = objmeta.rfc3339(objmeta.now())
        meta["deletionGracePeriodSeconds"] = 0
        obj.setdefault("status", {})["phase"] = "Terminating"
        stored = await self.store.update(kinds.NAMESPACES.key, obj, int(meta.get("resourceVersion") or 0))
        stored = objmeta.with_type(kinds.NAMESPACES, stored)
        await _notify(self.on_namespace_terminating, kinds.NAMESPACES, stored)
        return stored


class _Retry(Exception):
    pass


def pod_grace(pod: Obj, requested: int | None) -> int:
    """The grace period a pod deletion gets (`CheckGracefulDelete` for pods)."""
    spec = objmeta.d(pod.get("spec"))
    phase = objmeta.d(pod.get("status")).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    if requested is None:
        tgps = spec.get("terminationGracePeriodSeconds")
        grace = int(tgps) if isinstance(tgps, int) and not isinstance(tgps, bool) else DEFAULT_POD_GRACE
    else:
        grace = requested if requested >= 0 else 1
    current = objmeta.d(pod.get("metadata")).get("deletionGracePeriodSeconds")
    if current is not None and grace > int(current):
        grace = int(current)
    return grace


async def _notify(listeners: list[Notify], rt: ResourceType, obj: Obj) -> None:
    for fn in listeners:
        res = fn(rt, obj)
        if res is not None:
            await res
