"""Helpers shared by store implementations: object identity and resourceVersion stamping."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def identity(obj: Obj) -> tuple[str, str]:
    """(namespace, name) of an object; namespace is "" for cluster-scoped objects."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ValueError("object has no metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("object has no metadata.name")
    namespace = meta.get("namespace") or ""
    if not isinstance(namespace, str):
        raise ValueError(f"metadata.namespace must be a string, got {namespace!r}")
    return namespace, name


def stamp(obj: Obj, rv: int) -> None:
    """Set metadata.resourceVersion (a string on the wire) in place."""
    obj.setdefault("metadata", {})["resourceVersion"] = str(rv)


def rv_of(obj: Obj) -> int:
    meta = obj.get("metadata") or {}
    try:
        return int(meta.get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0
