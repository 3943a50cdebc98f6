"""PATCH (all four patch types, incl. server-side apply) and the status / scale subresources."""

from __future__ import annotations

import copy
from typing import Any

from podnet.api import fieldvalidation, objmeta, patching, strategy
from podnet.api.errors import APIError, bad_request, conflict, invalid
from podnet.api.registry import Registry, StoreConflict
from podnet.api.smp import PatchError, apply_strategic_merge
from podnet.model import kinds
from podnet.model.errors import FieldError
from podnet.model.kinds import Obj, ResourceType

SCALE_API_VERSION = "autoscaling/v1"


def scale_of(rt: ResourceType, obj: Obj) -> Obj:
    meta = objmeta.d(obj.get("metadata"))
    spec, status = objmeta.d(obj.get("spec")), objmeta.d(obj.get("status"))
    replicas = spec.get("replicas")
    return {
        "kind": "Scale", "apiVersion": SCALE_API_VERSION,
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": 1 if replicas is None else replicas},
        "status": {"replicas": int(status.get("replicas") or 0),
                   "selector": strategy.label_selector_string(spec.get("selector"))},
    }


def _scale_invalid(name: str, errs: list[FieldError]) -> APIError:
    scale_rt = kinds.ResourceType("autoscaling", "v1", "Scale", "scale", "scale", True)
    return invalid(scale_rt, name, errs)


class Subresources:
    def __init__(self, registry: Registry):
        self.registry = registry

    # ---- scale -----------------------------------------------------------------------------

    async def get_scale(self, rt: ResourceType, ns: str, name: str) -> Obj:
        return scale_of(rt, await self.registry.get(rt, ns, name))

    async def update_scale(self, rt: ResourceType, ns: str, name: str, body: Obj, *,
                           dry_run: bool = False) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of a Scale update must be a JSON object")
        replicas = objmeta.d(body.get("spec")).get("replicas", 0)
        errs = strategy.validate_replicas(replicas)
        if errs:
            raise _scale_invalid(name, errs)
        precondition = str(objmeta.d(body.get("metadata")).get("resourceVersion") or "")

        def change(obj: Obj) -> Obj:
            obj.setdefault("spec", {})["replicas"] = replicas
            return obj

        updated = await self.registry.write_through(rt, ns, name, change, precondition, dry_run=dry_run)
        return scale_of(rt, updated)

    # ---- patch -----------------------------------------------------------------------------

    async def patch(self, rt: ResourceType, ns: str, name: str, content_type: str, raw: bytes, *,
                    subresource: str = "", field_manager: str = "",
                    dry_run: bool = False, field_validation: str = fieldvalidation.IGNORE,
                    warnings: list[str] | None = None) -> tuple[Obj, bool]:
        """Returns (object, created): only server-side apply creates. Unknown fields of the
        patched object are dropped; with `field_validation` Warn their warnings are appended to
        `warnings`, with Strict the patch is refused (podnet.api.fieldvalidation)."""
        ctype = patching.media_type(content_type)
        if ctype not in patching.PATCH_TYPES:
            raise patching.unsupported_media_type(ctype)
        patching.validate_patch_options(ctype, field_manager)
        body = await patching.decode_patch(ctype, raw)
        if ctype == patching.APPLY:
            if subresource:
                return await self._patch_loop(rt, ns, name, subresource, patching.STRATEGIC,
                                              body, dry_run), False
            if isinstance(body, dict):
                fieldvalidation.check_applied(rt, name, body)
            return await self.apply(rt, ns, name, body, field_manager, dry_run=dry_run)
        return await self._patch_loop(rt, ns, name, subresource, ctype, body, dry_run,
                                      field_validation, warnings), False

    async def _patch_loop(self, rt: ResourceType, ns: str, name: str, subresource: str, ctype: str,
                          body: Any, dry_run: bool, field_validation: str = fieldvalidation.IGNORE,
                          warnings: list[str] | None = None) -> Obj:
        found: list[str] = []
        for _ in range(8):
            old = await self.registry.get(rt, ns, name)
            if subresource == "scale":
                patched_scale = patching.apply_patch(None, ctype, scale_of(rt, old), body)
                replicas = objmeta.d(patched_scale.get("spec")).get("replicas")
                errs = strategy.validate_replicas(replicas)
                if errs:
                    raise _scale_invalid(name, errs)
                new = copy.deepcopy(old)
                new.setdefault("spec", {})["replicas"] = replicas
                precondition = str(objmeta.d(patched_scale.get("metadata")).get("resourceVersion") or "")
            else:
                patched = patching.apply_patch(rt, ctype, old, body)
                found = fieldvalidation.check_patched(rt, patched, field_validation,
                                                      fieldvalidation.patch_value(ctype, body, patched), old)
                precondition = str(objmeta.d(patched.get("metadata")).get("resourceVersion") or "")
                new = self._accept_patched(rt, ns, name, patched, old, subresource)
            if precondition and precondition != objmeta.rv_of(old):
                raise conflict(rt, name)
            try:
                result = await self.registry.update_prepared(rt, new, old, dry_run=dry_run)
            except StoreConflict:
                if precondition:
                    raise conflict(rt, name) from None
                continue
            if warnings is not None:
                warnings.extend(found)
            return scale_of(rt, result) if subresource == "scale" else result
        raise conflict(rt, name)

    def _accept_patched(self, rt: ResourceType, ns: str, name: str, patched: Obj, old: Obj,
                        subresource: str) -> Obj:
        meta = patched.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("the patched object has no metadata")
        if meta.get("name") != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on "
                              f"the URL ({name})")
        if rt.namespaced and (meta.get("namespace") or ns) != ns:
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in patched:
                new["status"] = patched["status"]
            else:
                new.pop("status", None)
            return new
        objmeta.with_type(rt, patched)
        strategy.prepare_for_update(rt, patched, old)
        return patched

    # ---- server-side apply -----------------------------------------------------------------

    async def apply(self, rt: ResourceType, ns: str, name: str, config: Any, manager: str, *,
                    dry_run: bool = False) -> tuple[Obj, bool]:
        """A basic field manager: create when absent, else merge the applied configuration over the
        live object and drop the map keys this manager applied before but no longer does;
        managedFields records the manager and the fields it applied. No conflict detection."""
        if not isinstance(config, dict):
            raise bad_request("error decoding YAML: the applied configuration must be an object")
        if not config.get("apiVersion") or not config.get("kind"):
            raise bad_request("invalid object type: apiVersion and kind must be set in an applied "
                              "configuration")
        if config.get("apiVersion") != rt.api_version or config.get("kind") != rt.kind:
            raise bad_request(f"the API version and kind in the data ({config.get('apiVersion')}, "
                              f"{config.get('kind')}) do not match the expected "
                              f"({rt.api_version}, {rt.kind})")
        if "metadata" in config and not isinstance(config["metadata"], dict):
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                              f"the metadata of an applied configuration must be an object")
        cmeta: dict[str, Any] = config["metadata"] if isinstance(config.get("metadata"), dict) else {}
        if cmeta.get("name") not in (None, name):
            raise bad_request(f"the name of the object ({cmeta.get('name')}) does not match the name on "
                              f"the URL ({name})")
        entry = _managed_entry(rt, config, manager)
        for _ in range(8):
            try:
                old = await self.registry.get(rt, ns, name)
            except APIError as e:
                if e.code != 404:
                    raise
                new = copy.deepcopy(config)
                new.setdefault("metadata", {})["name"] = name
                new["metadata"]["managedFields"] = [entry]
                try:
                    return await self.registry.create(rt, ns, new, dry_run=dry_run), True
                except APIError as ce:
                    if ce.reason == "AlreadyExists":
                        continue
                    raise
            applied = copy.deepcopy(config)
            applied.get("metadata", {}).pop("resourceVersion", None)
            try:
                merged = apply_strategic_merge(rt, old, applied)
            except PatchError as e:
                raise bad_request(str(e)) from e
            entries = merged["metadata"].get("managedFields") or []
            previous = next((f for f in entries if isinstance(f, dict) and f.get("manager") == manager
                             and f.get("operation") == "Apply"), None)
            if previous is not None and isinstance(previous.get("fieldsV1"), dict):
                _prune(merged, previous["fieldsV1"], entry["fieldsV1"])
            fields = [f for f in entries if f is not previous]
            merged["metadata"]["managedFields"] = [*fields, entry]
            new = self._accept_patched(rt, ns, name, merged, old, "")
            try:
                return await self.registry.update_prepared(rt, new, old, dry_run=dry_run), False
            except StoreConflict:
                continue
        raise conflict(rt, name)


def _prune(live: dict[str, Any], before: dict[str, Any], now: dict[str, Any]) -> None:
    """Remove from live the keys `before` lists (fieldsV1 `f:<key>`) that `now` no longer does."""
    for fk, sub_before in before.items():
        if not fk.startswith("f:"):
            continue
        key = fk[2:]
        if key in ("metadata", "apiVersion", "kind", "name", "namespace"):
            if key == "metadata" and isinstance(live.get(key), dict) and isinstance(now.get(fk), dict):
                _prune(live[key], sub_before, now[fk])
            continue
        if fk not in now:
            live.pop(key, None)
        elif isinstance(sub_before, dict) and isinstance(live.get(key), dict) and isinstance(now[fk], dict):
            _prune(live[key], sub_before, now[fk])


def _fields_v1(value: Any) -> Any:
    if isinstance(value, dict):
        return {f"f:{k}": _fields_v1(v) for k, v in value.items() if k not in ("apiVersion", "kind")}
    return {}


def _managed_entry(rt: ResourceType, config: Obj, manager: str) -> dict[str, Any]:
    return {"manager": manager, "operation": "Apply", "apiVersion": rt.api_version,
            "time": objmeta.rfc3339(objmeta.now()), "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(config)}
