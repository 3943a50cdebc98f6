"""CustomResourceDefinitions: serving the resources they define (apiextensions-apiserver's role).

`CRDHooks` is the registry hook of `customresourcedefinitions`: once a CRD is written, its
storage version is served (discovery, CRUD, watch, status/scale subresources, table columns
from `additionalPrinterColumns`, `openAPIV3Schema` validation and pruning); once it is deleted,
the resource is no longer served and its objects are removed from the store.
`load(store)` serves the CRDs already stored when the API server starts.
"""

from __future__ import annotations

import logging
from typing import Any

from podnet.api import tables, tables_kinds
from podnet.api.hooks import NoReservation, Reservation
from podnet.model import kinds, openapi_schema
from podnet.model.kinds import Obj, ResourceType
from podnet.store import base as store_base
from podnet.store.base import Store

log = logging.getLogger(__name__)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def served_version(crd: Obj) -> dict[str, Any] | None:
    """The version podnet serves: the storage version when served, else the first served one."""
    versions = [_d(v) for v in _d(crd.get("spec")).get("versions") or []]
    served = [v for v in versions if v.get("served") is True]
    for v in served:
        if v.get("storage") is True:
            return v
    return served[0] if served else None


def resource_type(crd: Obj) -> ResourceType | None:
    spec = _d(crd.get("spec"))
    version = served_version(crd)
    crd_names = _d(spec.get("names"))
    if version is None or not spec.get("group") or not crd_names.get("plural") or not crd_names.get("kind"):
        return None
    subs = _d(version.get("subresources"))
    subresources = tuple(s for s in ("status", "scale") if s in subs)
    kind = str(crd_names["kind"])
    return ResourceType(
        str(spec["group"]),
        str(version.get("name")),
        kind,
        str(crd_names["plural"]),
        str(crd_names.get("singular") or kind.lower()),
        spec.get("scope") != "Cluster",
        tuple(str(s) for s in crd_names.get("shortNames") or []),
        tuple(str(c) for c in crd_names.get("categories") or []),
        subresources=subresources,
        list_kind=str(crd_names.get("listKind") or f"{kind}List"),
    )


def serve(crd: Obj) -> ResourceType | None:
    rt = resource_type(crd)
    if rt is None:
        return None
    builtin = kinds.by_plural(rt.group, rt.plural)
    if builtin is not None and not kinds.is_custom(builtin):
        log.warning("CRD %s names a built-in resource; not served", rt.group_resource)
        return None
    kinds.register_custom(rt)
    version = served_version(crd) or {}
    schema = _d(_d(version.get("schema")).get("openAPIV3Schema"))
    openapi_schema.register(rt.api_version, rt.kind, schema, rt.namespaced)
    tables.set_custom_printer(rt, tables_kinds.custom_printer(version))
    return rt


def stop_serving(crd: Obj) -> ResourceType | None:
    spec = _d(crd.get("spec"))
    group, plural = str(spec.get("group") or ""), str(_d(spec.get("names")).get("plural") or "")
    rt = kinds.by_plural(group, plural)
    if rt is None or not kinds.is_custom(rt):
        return None
    kinds.unregister_custom(group, plural)
    openapi_schema.unregister(rt.api_version, rt.kind)
    tables.set_custom_printer(rt, None)
    return rt


class _Serve:
    def __init__(self, crd: Obj):
        self.crd = crd

    def release(self) -> None:
        pass

    def commit(self) -> None:
        serve(self.crd)


class CRDHooks:
    def __init__(self) -> None:
        self.store: Store | None = None

    async def load(self, store: Store) -> None:
        self.store = store
        items, _ = await store.list(kinds.CUSTOMRESOURCEDEFINITIONS.key)
        for crd in items:
            if not _d(crd.get("metadata")).get("deletionTimestamp"):
                serve(crd)

    async def before_create(self, rt: ResourceType, obj: Obj) -> Reservation:
        return _Serve(obj)

    async def before_update(self, rt: ResourceType, new: Obj, old: Obj) -> Reservation:
        if _d(new.get("metadata")).get("deletionTimestamp"):
            return NoReservation()
        return _Serve(new)

    async def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        served = stop_serving(obj)
        if served is None or self.store is None:
            return
        items, _ = await self.store.list(served.key)
        for item in items:
            meta = _d(item.get("metadata"))
            try:
                await self.store.delete(served.key, str(meta.get("namespace") or ""), str(meta.get("name")))
            except store_base.NotFound:
                pass
