"""Unknown fields: what Kubernetes' strict decoding reports, and drops, for a request body.

Valid YAML can still put a field where its kind has no such field — `selector:` indented
under a Service port is the classic. The API server decodes into the v1 Go types, so such a
field is never stored; with field validation it is reported as `unknown field
"spec.ports[0].selector"` (a `Warning` with `fieldValidation=Warn`, a 400 with `Strict`, which
kubectl asks for by default). The API side is `podnet.api.fieldvalidation`.

- `unknown_fields(obj, kind=None)` -> the paths, in document order (`spec.ports[0].selector`)
- `drop_unknown_fields(obj, kind=None)` -> the same paths, removed from `obj` in place
- `strict_decoding_error(paths)` -> `strict decoding error: unknown field "a", unknown field "b"`
- `field_position(text, obj, path)` -> (line, column) of that field's key in the manifest text

Kinds without a table in `podnet.model.v1_fields.ROOTS` report nothing.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

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
        ref = fields.get(key)
        if ref is None:
            out.append((f"{path}.{key}" if path else key, value, key))
            continue
        if not ref:
            continue  # a leaf (the path is only built where it is reported or recursed into)
        if ref.startswith("["):
            if isinstance(child, list):
                here = f"{path}.{key}" if path else key
                item_type = ref[1:-1]
                for i, item in enumerate(child):
                    if isinstance(item, dict):
                        _visit(item, item_type, f"{here}[{i}]", out)
        elif isinstance(child, dict):
            _visit(child, ref, f"{path}.{key}" if path else key, out)


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """`spec.ports[0].selector` -> ["spec", "ports", 0, "selector"]."""
    return [int(idx) if idx else name for name, idx in _SEGMENT.findall(path)]


def field_position(text: str, obj: Obj, path: str) -> tuple[int, int] | None:
    """1-based (line, column) of the key at `path` in the YAML document of `text` that holds
    `obj` (matched by kind and metadata.name; `kind: List` items too), or None."""
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    want = (str(obj.get("kind") or ""), str((obj.get("metadata") or {}).get("name") or ""))
    for doc in docs:
        for node in _object_nodes(doc):
            if (_scalar(_child(node, "kind")), _scalar(_child(_child(node, "metadata"), "name"))) != want:
                continue
            found = _key_at(node, split_path(path))
            if found is not None:
                return found.start_mark.line + 1, found.start_mark.column + 1
    return None


def _object_nodes(doc: yaml.Node | None) -> list[yaml.Node]:
    items = _child(doc, "items")
    if isinstance(items, yaml.SequenceNode) and str(_scalar(_child(doc, "kind"))).endswith("List"):
        return list(items.value)
    return [doc] if doc is not None else []


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                value: yaml.Node = v
                return value
    return None


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _key_at(node: yaml.Node | None, parts: list[str | int]) -> yaml.Node | None:
    """The key node of the last part of `parts`, walking mappings and sequences."""
    cur = node
    for i, part in enumerate(parts):
        if isinstance(part, int):
            if not isinstance(cur, yaml.SequenceNode) or part >= len(cur.value):
                return None
            cur = cur.value[part]
            continue
        if not isinstance(cur, yaml.MappingNode):
            return None
        pairs = [(k, v) for k, v in cur.value if isinstance(k, yaml.ScalarNode) and k.value == part]
        if not pairs:
            return None
        if i == len(parts) - 1:
            key_node: yaml.Node = pairs[-1][0]
            return key_node
        cur = pairs[-1][1]
    return None


__all__ = [
    "drop_unknown_fields",
    "field_position",
    "split_path",
    "strict_decoding_error",
    "unknown_field_message",
    "unknown_fields",
]
