"""Strategic merge patch (application/strategic-merge-patch+json) for the kinds podnet serves.

Maps merge recursively (`null` deletes a key); lists tagged `patchStrategy: merge` in
the Kubernetes types merge element-wise by their `patchMergeKey`; every other list is
replaced. Directives kubectl emits are honoured: `$patch: replace|delete|merge`,
`$retainKeys`, `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`.
"""

from __future__ import annotations

import copy
from typing import Any

from podnet.model.kinds import ResourceType

Path = tuple[str, ...]
PRIMITIVE = "<primitive>"  # a merged list of scalars (e.g. metadata.finalizers)


class PatchError(ValueError):
    pass


_CONTAINER: dict[Path, str] = {
    ("ports",): "containerPort",
    ("env",): "name",
    ("volumeMounts",): "mountPath",
    ("volumeDevices",): "devicePath",
}

_POD_SPEC: dict[Path, str] = {
    ("volumes",): "name",
    ("imagePullSecrets",): "name",
    ("hostAliases",): "ip",
    ("containers",): "name",
    ("initContainers",): "name",
    ("ephemeralContainers",): "name",
}
for _c in ("containers", "initContainers", "ephemeralContainers"):
    for _p, _k in _CONTAINER.items():
        _POD_SPEC[(_c, *_p)] = _k

_META: dict[Path, str] = {
    ("metadata", "ownerReferences"): "uid",
    ("metadata", "finalizers"): PRIMITIVE,
}


def _under(prefix: Path, table: dict[Path, str]) -> dict[Path, str]:
    return {prefix + p: k for p, k in table.items()}


_CONDITIONS: dict[Path, str] = {("status", "conditions"): "type"}

MERGE_KEYS: dict[str, dict[Path, str]] = {
    "pods": {**_under(("spec",), _POD_SPEC), **_CONDITIONS, ("status", "podIPs"): "ip",
             ("status", "hostIPs"): "ip"},
    "apps/deployments": {**_under(("spec", "template", "spec"), _POD_SPEC), **_CONDITIONS},
    "apps/replicasets": {**_under(("spec", "template", "spec"), _POD_SPEC), **_CONDITIONS},
    "services": {("spec", "ports"): "port", **_CONDITIONS},
    "nodes": {**_CONDITIONS, ("status", "addresses"): "type", ("spec", "podCIDRs"): PRIMITIVE},
    "namespaces": {**_CONDITIONS},
}


def merge_key(rt: ResourceType | None, path: Path) -> str | None:
    if path in _META:
        return _META[path]
    if rt is None:
        return None
    return MERGE_KEYS.get(rt.key, {}).get(path)


class _Delete:
    pass


_DELETE = _Delete()


def apply_strategic_merge(rt: ResourceType | None, original: dict[str, Any], patch: Any,
                          base: Path = ()) -> dict[str, Any]:
    """The patched document; `original` is not modified. `base` is the path of `original` inside
    the object (used when patching a part, e.g. a Scale). Raises PatchError."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch body must be a JSON object")
    result = _merge_map(rt, copy.deepcopy(original), patch, base)
    return {} if isinstance(result, _Delete) else result


def _merge_map(rt: ResourceType | None, orig: dict[str, Any], patch: dict[str, Any],
               path: Path) -> dict[str, Any] | _Delete:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        stripped = _merge_map(rt, {}, {k: v for k, v in patch.items() if k != "$patch"}, path)
        return stripped
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive} in map: {patch}")
    result = orig
    retain = patch.get("$retainKeys")
    orders: dict[str, Any] = {}
    prim_deletes: dict[str, Any] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.partition("/")[2]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            prim_deletes[k.partition("/")[2]] = v
            continue
        if v is None:
            result.pop(k, None)
            continue
        sub = (*path, k)
        cur = result.get(k)
        if isinstance(v, dict):
            merged = _merge_map(rt, cur if isinstance(cur, dict) else {}, v, sub)
            if isinstance(merged, _Delete):
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            result[k] = _merge_list(rt, cur if isinstance(cur, list) else [], v, sub)
        else:
            result[k] = copy.deepcopy(v)
    for field, values in prim_deletes.items():
        if isinstance(result.get(field), list) and isinstance(values, list):
            result[field] = [x for x in result[field] if x not in values]
    for field, order in orders.items():
        if isinstance(result.get(field), list) and isinstance(order, list):
            result[field] = _reorder(merge_key(rt, (*path, field)), result[field], order)
    if isinstance(retain, list):
        keep = {str(x) for x in retain}
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_list(rt: ResourceType | None, cur: list[Any], patch: list[Any], path: Path) -> list[Any]:
    key = merge_key(rt, path)
    if key is None:
        out: list[Any] = []
        for item in patch:
            if isinstance(item, dict):
                merged = _merge_map(rt, {}, item, path)
                if not isinstance(merged, _Delete):
                    out.append(merged)
            else:
                out.append(copy.deepcopy(item))
        return out
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if key == PRIMITIVE:
        result = list(cur)
        for item in patch:
            if item not in result:
                result.append(copy.deepcopy(item))
        return result
    result = list(cur)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"unable to find api field in struct for the list element {item!r} "
                             f"of {'.'.join(path)}: merging list elements requires objects")
        if key not in item:
            raise PatchError(f"map: {_go_map(item)} does not contain declared merge key: {key}")
        idx = next((i for i, x in enumerate(result) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
            continue
        merged = _merge_map(rt, copy.deepcopy(result[idx]) if idx is not None else {}, item, path)
        if isinstance(merged, _Delete):
            if idx is not None:
                del result[idx]
        elif idx is None:
            result.append(merged)
        else:
            result[idx] = merged
    return result


def _reorder(key: str | None, items: list[Any], order: list[Any]) -> list[Any]:
    if key is None:
        return items
    if key == PRIMITIVE:
        wanted = list(order)
        ident = [x for x in items]
    else:
        wanted = [o.get(key) if isinstance(o, dict) else None for o in order]
        ident = [x.get(key) if isinstance(x, dict) else None for x in items]
    pos = {repr(v): i for i, v in enumerate(wanted)}
    ranked = sorted(range(len(items)), key=lambda i: (pos.get(repr(ident[i]), len(wanted)), i))
    return [items[i] for i in ranked]


def _go_map(item: dict[str, Any]) -> str:
    return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(item.items())) + "]"
