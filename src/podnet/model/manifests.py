"""Reading manifests: multi-document YAML or JSON, `kind: List` flattened, empty documents skipped.

`load_manifests(source, text=None)` returns the objects (plain dicts). Anything wrong raises
`ManifestError` with `.filename`, `.line`, `.column` (1-based), `.snippet` (the offending line
and a caret) and a `str()` a beginner can act on, e.g.::

    broken.yaml:12:7: "selector" is indented under "ports" (line 12); it belongs under "spec"
       12 |       selector:
          |       ^
    hint: move "selector" left so it lines up with "ports" (2 spaces), as a field of "spec".
"""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass
from typing import Any

import yaml

from podnet.model import manifest_schema as schema
from podnet.model.kinds import Obj
from podnet.model.manifest_text import align_hint, doc_start, explain_yaml_error, snippet, yaml_hint


class ManifestError(Exception):
    """A manifest that cannot be used, located in its file."""

    def __init__(
        self,
        message: str,
        filename: str = "",
        line: int = 0,
        column: int = 0,
        snippet: str = "",
        hint: str = "",
    ):
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column
        self.snippet = snippet
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.filename or "<input>"
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.snippet:
            text += "\n" + self.snippet
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self._render()


class _Loader(yaml.SafeLoader):
    """SafeLoader as kubectl's YAML→JSON sees it: timestamps stay strings, keys become strings,
    and a key repeated in one mapping is an error."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class _DupKey(Exception):
    key: str
    line: int
    column: int
    first_line: int


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, bool):
            skey = "true" if key else "false"
        elif key is None:
            skey = "null"
        else:
            skey = str(key)
        if skey in seen:
            raise _DupKey(skey, key_node.start_mark.line + 1, key_node.start_mark.column + 1, seen[skey])
        seen[skey] = key_node.start_mark.line + 1
        out[skey] = loader.construct_object(value_node, deep=deep)
    return out


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _node_at(node: yaml.Node, path: list[str | int]) -> yaml.Node | None:
    cur: yaml.Node | None = node
    for part in path:
        if cur is None:
            return None
        if isinstance(part, int):
            if not isinstance(cur, yaml.SequenceNode) or part >= len(cur.value):
                return None
            cur = cur.value[part]
        else:
            if not isinstance(cur, yaml.MappingNode):
                return None
            nxt = None
            for k, v in cur.value:
                if isinstance(k, yaml.ScalarNode) and k.value == part:
                    nxt = v
            cur = nxt
    return cur


def _key_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k
    return None


def _check_placement(obj: Any, kind: str, root: yaml.Node | None, filename: str, lines: list[str]) -> None:
    """Raise ManifestError for a known field sitting under the wrong parent in valid YAML."""

    def walk(value: Any, path: str, raw: list[str | int]) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                target = schema.belongs(kind, path, key)
                if target is None:
                    _check_too_shallow(kind, path, key, raw, root, filename, lines)
                if target is not None:
                    parent_raw = [p for p in raw]
                    # the nearest named ancestor in the file ("ports" for spec.ports[0])
                    parent_name = next((str(p) for p in reversed(parent_raw) if isinstance(p, str)), "")
                    parent_node = _node_at(root, [p for p in raw[: _last_str_index(raw)]]) if root else None
                    pk = _key_node(parent_node, parent_name)
                    kn = _key_node(_node_at(root, raw) if root else None, key)
                    line = kn.start_mark.line + 1 if kn else 0
                    col = kn.start_mark.column + 1 if kn else 0
                    pline = pk.start_mark.line + 1 if pk else line
                    where = f'under "{target}"' if target else "at the top level (no indentation)"
                    msg = f'"{key}" is indented under "{parent_name}" (line {pline}); it belongs {where}'
                    start = doc_start(lines, line) if line else 1
                    raise ManifestError(
                        msg,
                        filename,
                        line,
                        col,
                        snippet(lines, line, col),
                        align_hint(lines, key, target, start),
                    )
                sub = f"{path}.{key}" if path else key
                walk(child, sub, [*raw, key])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[]", [*raw, i])

    walk(obj, "", [])


def _check_too_shallow(
    kind: str,
    path: str,
    key: str,
    raw: list[str | int],
    root: yaml.Node | None,
    filename: str,
    lines: list[str],
) -> None:
    """A known field written too far left: `selector:` at the top level instead of under `spec:`."""
    target = schema.too_shallow(kind, path, key)
    if target is None:
        return
    kn = _key_node(_node_at(root, raw) if root else None, key)
    line = kn.start_mark.line + 1 if kn else 0
    col = kn.start_mark.column + 1 if kn else 0
    shown = schema.display(target)
    if path:
        parent = next((str(p) for p in reversed(raw) if isinstance(p, str)), path)
        msg = f'"{key}" is directly under "{parent}" (line {line}); it belongs under "{shown}"'
    else:
        msg = f'"{key}" is at the top level (line {line}); it belongs under "{shown}"'
    start = doc_start(lines, line) if line else 1
    raise ManifestError(
        msg, filename, line, col, snippet(lines, line, col), align_hint(lines, key, target, start)
    )


def _last_str_index(raw: list[str | int]) -> int:
    for i in range(len(raw) - 1, -1, -1):
        if isinstance(raw[i], str):
            return i
    return 0


def _located_check(
    obj: Any, doc_index: int, node: yaml.Node | None, filename: str, lines: list[str], item: int | None = None
) -> None:
    """Every object needs apiVersion, kind and metadata.name (or generateName)."""
    line = node.start_mark.line + 1 if node is not None else 0
    what = f"document {doc_index}" + (f", item {item}" if item is not None else "")
    if not isinstance(obj, dict):
        raise ManifestError(
            f"{what} is {_kind_of(obj)}, not an object: a manifest must be a mapping "
            "with apiVersion, kind and metadata",
            filename,
            line,
            1,
            snippet(lines, line, 1),
        )
    missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
    meta = obj.get("metadata")
    if missing:
        kind = obj.get("kind") or "object"
        raise ManifestError(
            f"{what} ({kind}) has no {' and no '.join(missing)}",
            filename,
            line,
            1,
            snippet(lines, line, 1),
            'every object starts with e.g. "apiVersion: v1" and "kind: Service" at the top level.',
        )
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        mnode = _key_node(node, "metadata") if node is not None else None
        mline = mnode.start_mark.line + 1 if mnode else line
        raise ManifestError(
            f"{what} ({obj['kind']}) has no metadata.name",
            filename,
            mline,
            1,
            snippet(lines, mline, 1),
            'add a name under metadata, e.g. "metadata:\\n  name: my-app" '
            "(or metadata.generateName for a generated one).",
        )


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"plain text ({value[:30]!r})"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "empty"


def _flatten(obj: Obj) -> list[Obj] | None:
    kind = str(obj.get("kind") or "")
    if (kind == "List" or kind.endswith("List")) and isinstance(obj.get("items"), list):
        return list(obj["items"])
    return None


def _check_objects(docs: list[tuple[Any, yaml.Node | None]], filename: str, lines: list[str]) -> list[Obj]:
    out: list[Obj] = []
    for n, (doc, node) in enumerate(docs, start=1):
        if isinstance(doc, dict):
            items = _flatten(doc)
            if items is not None:
                items_node = _node_at(node, ["items"]) if node is not None else None
                for i, item in enumerate(items):
                    inode = items_node.value[i] if isinstance(items_node, yaml.SequenceNode) else None
                    _located_check(item, n, inode, filename, lines, i)
                    _check_placement(item, str(item.get("kind")), inode, filename, lines)
                    out.append(item)
                continue
        _located_check(doc, n, node, filename, lines)
        _check_placement(doc, str(doc.get("kind")), node, filename, lines)
        out.append(doc)
    return out


def _load_json(text: str, filename: str, lines: list[str]) -> list[Obj]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"JSON syntax error: {exc.msg}",
            filename,
            exc.lineno,
            exc.colno,
            snippet(lines, exc.lineno, exc.colno),
            "check for a missing comma, quote or bracket just before this point.",
        ) from None
    items = data if isinstance(data, list) else [data]
    docs: list[tuple[Any, yaml.Node | None]] = [(d, None) for d in items]
    return _check_objects(docs, filename, lines)


def _load_yaml(text: str, filename: str, lines: list[str]) -> list[Obj]:
    docs: list[tuple[Any, yaml.Node | None]] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            docs.append((data, node))
    except _DupKey as dup:
        raise ManifestError(
            f'key "{dup.key}" already set in this map (first set on line {dup.first_line})',
            filename,
            dup.line,
            dup.column,
            snippet(lines, dup.line, dup.column),
            f'remove one of the two "{dup.key}" entries, or fix the indentation if one of them '
            "belongs to another object.",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        problem = str(exc.problem or exc.context or "invalid YAML")
        explained = explain_yaml_error(lines, line) if line else None
        if explained is not None:
            msg, hint, eline, ecol = explained
            raise ManifestError(
                f"YAML indentation error: {msg}", filename, eline, ecol, snippet(lines, eline, ecol), hint
            ) from None
        line_text = lines[line - 1] if 1 <= line <= len(lines) else ""
        raise ManifestError(
            f"YAML syntax error: {problem}",
            filename,
            line,
            col,
            snippet(lines, line, col),
            yaml_hint(problem, line_text),
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"YAML error: {exc}", filename) from None
    finally:
        loader.dispose()
    return _check_objects(docs, filename, lines)


MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # YAML's non-printables


def read_manifest_text(source: str | pathlib.Path) -> str:
    """A manifest file's text: at most MAX_MANIFEST_BYTES (so /dev/zero or a huge file ends with an
    error, not with all memory), UTF-8. Raises ManifestError."""
    filename = str(source)
    try:
        with open(source, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(
            "no such file", filename, hint="check the path; it is relative to the current directory."
        ) from None
    except IsADirectoryError:
        raise ManifestError("is a directory, not a manifest file", filename) from None
    except OSError as exc:
        raise ManifestError(f"cannot read: {exc.strerror}", filename) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"is larger than {MAX_MANIFEST_BYTES // 2**20} MiB; a manifest file is "
                            "text, and the API server takes at most 3 MiB per object", filename)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError("is not UTF-8 text (is it a binary file?)", filename) from None


def _check_characters(text: str, filename: str, lines: list[str]) -> None:
    """YAML and JSON allow no control characters but tab and newlines: name the first one, located."""
    m = _FORBIDDEN.search(text)
    if m is None:
        return
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    code = ord(m.group())
    what = "a NUL byte" if code == 0 else f"the control character U+{code:04X}"
    raise ManifestError(f"{what} (U+{code:04X}) is not allowed in YAML or JSON", filename, line, col,
                        snippet(lines, line, col),
                        "is it a binary file? Remove the character, or write it as an escape (\\u0000) "
                        "inside a double-quoted string.")


def load_manifests(source: str | pathlib.Path, text: str | None = None) -> list[Obj]:
    """Load every object from a manifest file (or from `text`, with `source` naming it in errors)."""
    filename = str(source)
    if text is None:
        text = read_manifest_text(source)
    lines = text.splitlines()
    _check_characters(text, filename, lines)
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        return _load_json(text, filename, lines)
    return _load_yaml(text, filename, lines)


__all__ = ["ManifestError", "load_manifests", "read_manifest_text"]
