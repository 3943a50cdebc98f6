"""The generic registry: create / get / list / update / status for every resource type.

This is the write pipeline of kube-apiserver, decoupled from HTTP:
    decode -> PrepareForCreate/Update -> defaults -> hooks (allocation) -> validation -> store
The hook's Reservation is released when a later step fails and committed after the
write. Deletion lives in `deletion.py`, PATCH and subresources in `subresources.py`;
both call into this class. Handlers and the garbage collector share one Registry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from podnet.api import bodies, objmeta, strategy
from podnet.api.admission import admit_pod
from podnet.api.errors import (
    APIError,
    already_exists,
    bad_request,
    conflict,
    continue_expired,
    invalid,
    namespace_not_found,
    namespace_terminating,
    not_found,
)
from podnet.api.hooks import NoReservation, Reservation, ResourceHooks
from podnet.api.selection import Filter
from podnet.model import kinds
from podnet.model.errors import required
from podnet.model.kinds import Obj, ResourceType
from podnet.store import base as store_base
from podnet.store.base import Store

log = logging.getLogger(__name__)

RemovedListener = Callable[[ResourceType, Obj], Awaitable[None] | None]


CONFLICT_RETRIES = 8


async def _conflict_pause(attempt: int) -> None:
    """A short, growing pause before retrying a write that raced another: back-to-back retries can
    read the same stale copy (a store whose reads lag its writes, e.g. etcd's watch cache) every time."""
    await asyncio.sleep(min(0.002 * (2 ** attempt), 0.1))


class StoreConflict(Exception):
    """The stored resourceVersion moved under an unconditional write: retry."""


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: str
    cont: str = ""
    remaining: int | None = None


class Registry:
    def __init__(self, store: Store, hooks: Mapping[str, ResourceHooks] | None = None):
        self.store = store
        self.hooks: dict[str, ResourceHooks] = dict(hooks or {})
        self.removed_listeners: list[RemovedListener] = []
        # namespace -> its terminating-or-not state, for the namespace check of every create (a store
        # read each time otherwise); kept only where the store tells each namespace write as it commits
        self._ns_open: dict[str, bool] | None = {}
        self._ns_writes = 0
        if not store.on_commit(kinds.NAMESPACES.key, self._namespace_written):
            self._ns_open = None

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        try:
            obj = await self.store.get(rt.key, ns if rt.namespaced else "", name)
        except store_base.NotFound:
            raise not_found(rt, name) from None
        return objmeta.with_type(rt, obj)

    async def list(self, rt: ResourceType, ns: str | None, flt: Filter, limit: int = 0,
                   cont: str = "") -> ListResult:
        scope = ns if rt.namespaced and ns else None
        exact = flt.fields.exact_name()
        if exact is not None and (scope is not None or not rt.namespaced):
            # one object by name (kubectl get x -w, kubectl delete --wait): no full scan
            rv = str(await self.store.current_rv())
            try:
                items = [await self.store.get(rt.key, scope or "", exact)]
            except store_base.NotFound:
                items = []
        else:
            all_items, rv_int = await self.store.list(rt.key, scope)
            rv, items = str(rv_int), all_items
        items = [objmeta.with_type(rt, o) for o in items if flt.matches(o)]
        start = None
        if cont:
            token_rv, start = _decode_continue(cont)
            if token_rv != "-1":
                try:
                    await self.store.check_retained(int(token_rv))
                except store_base.Expired:
                    raise continue_expired(_encode_continue("-1", start)) from None
        if start is not None:
            items = [o for o in items if (objmeta.namespace_of(o), objmeta.name_of(o)) > start]
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]
            token = _encode_continue(rv, (objmeta.namespace_of(last), objmeta.name_of(last)))
            return ListResult(items[:limit], rv, token, len(items) - limit)
        return ListResult(items, rv)

    # ---- create ----------------------------------------------------------------------------

    async def create(self, rt: ResourceType, ns: str, body: Obj, *, dry_run: bool = False,
                     body_is_ours: bool = False) -> Obj:
        """body_is_ours: the caller hands the body over (a freshly decoded request body) and will not
        use it again, so it is written to instead of deep-copied first."""
        obj = body if body_is_ours else await bodies.offload(copy.deepcopy, body)
        meta = objmeta.metadata(obj)
        self._scope_namespace(rt, ns, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = objmeta.generate_name(str(meta["generateName"]))
        if rt.namespaced:
            await self.check_namespace_open(rt, ns, str(meta.get("name") or ""))
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = objmeta.new_uid()
        meta["creationTimestamp"] = objmeta.now_rfc3339()
        objmeta.with_type(rt, obj)
        strategy.prepare_for_create(rt, obj)
        if rt is kinds.PODS:
            await admit_pod(obj, self._service_account)
        return await self.create_prepared(rt, obj, dry_run=dry_run)

    async def _service_account(self, ns: str, name: str) -> Obj | None:
        try:
            return await self.store.get(kinds.SERVICEACCOUNTS.key, ns, name)
        except store_base.NotFound:
            return None

    async def create_prepared(self, rt: ResourceType, obj: Obj, *, dry_run: bool = False) -> Obj:
        strategy.apply_defaults(obj)
        name = objmeta.name_of(obj)
        errs = await bodies.offload(strategy.type_errors, obj)  # kube-apiserver: at decoding, before hooks
        if errs:
            raise invalid(rt, name, errs)
        reservation = await self._before_create(rt, obj)
        try:
            # with no write hook nothing touched obj since its wire types were checked above
            errs = await bodies.offload(strategy.validate, obj, None, rt.key not in self.hooks)
            if errs:
                raise invalid(rt, name, errs)
            if dry_run:
                reservation.release()
                return objmeta.with_type(rt, obj)
            stored = await self.store.create(rt.key, obj)
        except store_base.AlreadyExists:
            reservation.release()
            raise already_exists(rt, name) from None
        except BaseException:
            reservation.release()
            raise
        reservation.commit()
        return objmeta.with_type(rt, stored)

    def _scope_namespace(self, rt: ResourceType, ns: str, meta: dict[str, Any]) -> None:
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace "
                                  "sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)

    async def check_namespace_open(self, rt: ResourceType, ns: str, name: str) -> None:
        cache = self._ns_open
        is_open = cache.get(ns) if cache is not None else None
        if is_open is None:
            writes = self._ns_writes
            try:
                nso = await self.store.get(kinds.NAMESPACES.key, "", ns)
            except store_base.NotFound:
                raise namespace_not_found(ns) from None  # not remembered: names that do not exist
            is_open = _namespace_open(nso)
            if cache is not None and writes == self._ns_writes:  # no namespace write since the read
                cache[ns] = is_open
        if not is_open:
            raise namespace_terminating(rt, name, ns)

    def _namespace_written(self, event: store_base.WatchEvent) -> None:
        self._ns_writes += 1
        if self._ns_open is None:
            return
        ns = objmeta.name_of(event.object)
        if event.type == "DELETED":
            self._ns_open.pop(ns, None)
        else:
            self._ns_open[ns] = _namespace_open(event.object)

    async def _before_create(self, rt: ResourceType, obj: Obj) -> Reservation:
        hook = self.hooks.get(rt.key)
        if hook is None:
            return NoReservation()
        return await hook.before_create(rt, obj)

    # ---- update ----------------------------------------------------------------------------

    async def update(self, rt: ResourceType, ns: str, name: str, body: Obj, *,
                     dry_run: bool = False) -> tuple[Obj, bool]:
        """PUT: returns (object, created)."""
        new_body = await bodies.offload(copy.deepcopy, body)
        meta = objmeta.metadata(new_body)
        if not meta.get("name"):
            meta["name"] = name
        if meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on "
                              f"the URL ({name})")
        self._scope_namespace(rt, ns, meta)
        objmeta.with_type(rt, new_body)
        precondition = str(meta.get("resourceVersion") or "")
        for attempt in range(CONFLICT_RETRIES):
            try:
                old = await self.store.get(rt.key, ns if rt.namespaced else "", name)
            except store_base.NotFound:
                if rt.key not in strategy.ALLOW_CREATE_ON_UPDATE:
                    raise not_found(rt, name) from None
                if precondition:
                    raise not_found(rt, name) from None
                try:
                    return await self.create(rt, ns, new_body, dry_run=dry_run), True
                except APIError as e:
                    if e.reason == "AlreadyExists":
                        continue
                    raise
            if precondition and precondition != objmeta.rv_of(old):
                raise conflict(rt, name)
            old_uid = objmeta.d(old.get("metadata")).get("uid")
            if meta.get("uid") and meta["uid"] != old_uid:
                raise conflict(rt, name, f"Precondition failed: UID in precondition: {meta['uid']}, "
                                         f"UID in object meta: {old_uid}")
            new = await bodies.offload(copy.deepcopy, new_body)
            strategy.prepare_for_update(rt, new, old)
            try:
                return await self.update_prepared(rt, new, old, dry_run=dry_run), False
            except StoreConflict:
                if precondition:
                    raise conflict(rt, name) from None
                await _conflict_pause(attempt)
        raise conflict(rt, name)

    async def update_prepared(self, rt: ResourceType, new: Obj, old: Obj, *, dry_run: bool = False) -> Obj:
        """defaults -> hooks.before_update -> validate -> store, with old's resourceVersion as the
        precondition. Raises StoreConflict when the object changed meanwhile."""
        strategy.apply_defaults(new)
        name = objmeta.name_of(new)
        errs = await bodies.offload(strategy.type_errors, new)
        if errs:
            raise invalid(rt, name, errs)
        hook = self.hooks.get(rt.key)
        reservation: Reservation = NoReservation()
        if hook is not None:
            reservation = await hook.before_update(rt, new, old)
        try:
            errs = await bodies.offload(strategy.validate, new, old, hook is None)
            if errs:
                raise invalid(rt, name, errs)
            strategy.bump_generation(rt, new, old)
            if dry_run:
                reservation.release()
                return objmeta.with_type(rt, new)
            stored = await self.store.update(rt.key, new, int(objmeta.rv_of(old) or 0))
        except store_base.Conflict:
            reservation.release()
            raise StoreConflict() from None
        except store_base.NotFound:
            reservation.release()
            raise not_found(rt, name) from None
        except BaseException:
            reservation.release()
            raise
        reservation.commit()
        return objmeta.with_type(rt, await self.remove_if_finalized(rt, stored))

    async def write_through(self, rt: ResourceType, ns: str, name: str,
                            change: Callable[[Obj], Obj], precondition: str = "",
                            *, dry_run: bool = False) -> Obj:
        """Read, let `change(old) -> new` build the new object, write through the update pipeline;
        retry on races unless the caller gave a resourceVersion precondition."""
        for attempt in range(CONFLICT_RETRIES):
            old = await self.get(rt, ns, name)
            if precondition and precondition != objmeta.rv_of(old):
                raise conflict(rt, name)
            new = change(copy.deepcopy(old))
            try:
                return await self.update_prepared(rt, new, old, dry_run=dry_run)
            except StoreConflict:
                if precondition:
                    raise conflict(rt, name) from None
                await _conflict_pause(attempt)
        raise conflict(rt, name)

    async def update_status(self, rt: ResourceType, ns: str, name: str, body: Obj, *,
                            dry_run: bool = False) -> Obj:
        """PUT .../status: only status changes (plus labels/annotations, as Kubernetes allows)."""
        bmeta = objmeta.d(body.get("metadata"))
        if bmeta.get("name") and bmeta["name"] != name:
            raise bad_request(f"the name of the object ({bmeta['name']}) does not match the name on "
                              f"the URL ({name})")

        def change(old: Obj) -> Obj:
            if "status" in body:
                old["status"] = copy.deepcopy(body["status"])
            else:
                old.pop("status", None)
            return old

        return await self.write_through(rt, ns, name, change, str(bmeta.get("resourceVersion") or ""),
                                        dry_run=dry_run)

    async def finalize_namespace(self, name: str, body: Obj) -> Obj:
        fins = objmeta.d(body.get("spec")).get("finalizers")

        def change(old: Obj) -> Obj:
            spec = old.setdefault("spec", {})
            if fins:
                spec["finalizers"] = list(fins)
            else:
                spec.pop("finalizers", None)
            return old

        return await self.write_through(kinds.NAMESPACES, "", name, change)

    async def bind(self, ns: str, name: str, binding: Obj) -> Obj:
        """POST pods/<name>/binding: assign the pod to target.name (once), as the scheduler does."""
        rt = kinds.PODS
        target: dict[str, Any] = binding["target"] if isinstance(binding.get("target"), dict) else {}
        node = str(target.get("name") or "")
        bname = str(objmeta.d(binding.get("metadata")).get("name") or name)
        if bname != name:
            raise bad_request(f"the name of the object ({bname}) does not match the name on the URL ({name})")
        if not node:
            raise invalid(kinds.ResourceType("", "v1", "Binding", "bindings", "binding", True), name,
                          [required("target.name")])
        for _ in range(8):
            try:
                pod = await self.store.get(rt.key, ns, name)
            except store_base.NotFound:
                raise not_found(rt, name) from None
            current = objmeta.d(pod.get("spec")).get("nodeName")
            why = ""
            want_uid = objmeta.d(binding.get("metadata")).get("uid")
            if want_uid and want_uid != objmeta.uid_of(pod):
                why = (f"Precondition failed: UID in precondition: {want_uid}, "
                       f"UID in object meta: {objmeta.uid_of(pod)}")
            elif objmeta.d(pod.get("metadata")).get("deletionTimestamp"):
                why = f"pod {name} is being deleted, cannot be assigned to a host"
            elif current:
                why = f'pod {name} is already assigned to node "{current}"'
            if why:
                msg = f'Operation cannot be fulfilled on pods/binding "{name}": {why}'
                raise APIError(409, "Conflict", msg, {"name": name, "kind": "pods/binding"})
            pod["spec"] = {**objmeta.d(pod.get("spec")), "nodeName": node}
            status = pod["status"] = objmeta.d(pod.get("status"))
            listed = status.get("conditions")
            conds = [c for c in listed if isinstance(c, dict) and c.get("type") != "PodScheduled"] \
                if isinstance(listed, list) else []
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": objmeta.rfc3339(objmeta.now())})
            status["conditions"] = conds
            try:
                await self.store.update(rt.key, pod, int(objmeta.rv_of(pod) or 0))
            except store_base.Conflict:
                continue
            except store_base.NotFound:
                raise not_found(rt, name) from None
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        raise conflict(rt, name)

    # ---- removal (shared with deletion) ------------------------------------------------------

    async def remove_if_finalized(self, rt: ResourceType, obj: Obj) -> Obj:
        """An object being deleted whose last finalizer is gone (and whose grace period is over)
        leaves the store now."""
        meta = objmeta.d(obj.get("metadata"))
        if not meta.get("deletionTimestamp") or objmeta.finalizers_of(obj):
            return obj
        if rt is kinds.NAMESPACES:
            return obj  # the namespace cleaner removes it once its contents are gone
        if int(meta.get("deletionGracePeriodSeconds") or 0) > 0:
            return obj
        try:
            removed = await self.store.delete(rt.key, objmeta.namespace_of(obj), objmeta.name_of(obj),
                                              int(objmeta.rv_of(obj) or 0))
        except (store_base.NotFound, store_base.Conflict):
            return obj
        await self.after_removed(rt, removed)
        return removed

    async def after_removed(self, rt: ResourceType, obj: Obj) -> None:
        hook = self.hooks.get(rt.key)
        if hook is not None:
            try:
                await hook.after_delete(rt, obj)
            except Exception:
                log.exception("after_delete hook failed for %s %s", rt.plural, objmeta.name_of(obj))
        for listener in self.removed_listeners:
            try:
                res = listener(rt, obj)
                if res is not None:
                    await res
            except Exception:
                log.exception("removal listener failed for %s %s", rt.plural, objmeta.name_of(obj))


def _namespace_open(nso: Obj) -> bool:
    return not (objmeta.d(nso.get("metadata")).get("deletionTimestamp")
                or objmeta.d(nso.get("status")).get("phase") == "Terminating")


def _encode_continue(rv: str, start: tuple[str, str]) -> str:
    raw = json.dumps({"v": 1, "rv": rv, "start": list(start)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[str, tuple[str, str]]:
    """(the resourceVersion of the first page, the last key it returned)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        ns, name = data["start"]
        rv = str(data.get("rv", "-1"))
        int(rv)
        return rv, (str(ns), str(name))
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError) as e:
        raise bad_request(f"continue key is not valid: {e}") from None
