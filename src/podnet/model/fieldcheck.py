"""Unknown fields: what Kubernetes' strict decoding reports, and drops, for a request body.

Valid YAML can still put a field where its kind has no such field — `selector:` indented
under a Service port is the classic. The API server decodes into the v1 Go types, so such a
field is never stored; with field validation it is reported as `unknown field
"spec.ports[0].selector"` (a `Warning` by default, a 400 with `fieldValidation=Strict`).

- `unknown_fields(obj, kind=None)` -> the paths, in document order (`spec.ports[0].selector`)
- `drop_unknown_fields(obj, kind=None)` -> the same paths, removed from `obj` in place
- `strict_decoding_error(paths)` -> `strict decoding error: unknown field "a", unknown field "b"`

Kinds without a table in `podnet.model.v1_fields.ROOTS` report nothing.
"""

from __future__ import annotations

from typing import Any

from podnet.model.kinds import Obj
from podnet.model.v1_fields import ROOTS, TYPES

_Found = list[tuple[str, dict[str, Any], str]]  # (path, the dict holding the field, its key)


def unknown_fields(obj: Obj, kind: str | None = None) -> list[str]:
    """Paths of the fields in `obj` that the kind's v1 schema does not have."""
    return [path for path, _parent, _key in _walk(obj, kind)]


def drop_unknown_fields(obj: Obj, kind: str | None = None) -> list[str]:
    """Remove the unknown fields from `obj` (as decoding into the Go types does); their paths."""
    found = list(_walk(obj, kind))
    for _path, parent, key in found:
        parent.pop(key, None)
    return [path for path, _parent, _key in found]


def unknown_field_message(path: str) -> str:
    """One strict-decoding finding, as the warning and the error word it: `unknown field "x"`."""
    return f'unknown field "{path}"'


def strict_decoding_error(paths: list[str]) -> str:
    """`runtime.NewStrictDecodingError(...).Error()` for unknown fields."""
    return "strict decoding error: " + ", ".join(unknown_field_message(p) for p in paths)


def _walk(obj: Any, kind: str | None) -> _Found:
    if not isinstance(obj, dict):
        return []
    root = ROOTS.get(str(kind if kind is not None else obj.get("kind") or ""))
    if root is None:
        return []
    out: _Found = []
    _visit(obj, root, "", out)
    return out


def _visit(value: dict[str, Any], type_name: str, path: str, out: _Found) -> None:
    fields = TYPES.get(type_name)
    if fields is None:
        return
    for key, child in value.items():
        here = f"{path}.{key}" if path else key
        if key not in fields:
            out.append((here, value, key))
            continue
        ref = fields[key]
        if not ref:
            continue
        if ref.startswith("["):
            if isinstance(child, list):
                item_type = ref[1:-1]
                for i, item in enumerate(child):
                    if isinstance(item, dict):
                        _visit(item, item_type, f"{here}[{i}]", out)
        elif isinstance(child, dict):
            _visit(child, ref, here, out)


__all__ = ["drop_unknown_fields", "strict_decoding_error", "unknown_field_message", "unknown_fields"]
