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


def _snippet(lines: list[str], line: int, column: int) -> str:
    """`   12 | <line>` plus a caret under `column` (both 1-based)."""
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1].replace("\t", " ")
    gutter = f"{line:>5} | "
    caret = " " * 5 + " | " + " " * max(column - 1, 0) + "^"
    return gutter + src + "\n" + caret


# --------------------------------------------------------------------------- YAML loading


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


def _yaml_hint(problem: str, line_text: str) -> str:
    if "\t" in line_text or "'\\t'" in problem:
        return "YAML does not allow tab characters for indentation; indent with spaces only."
    if "mapping values are not allowed" in problem:
        return (
            'a "key: value" line is indented deeper than the line above allows, or an unquoted value '
            'contains ": ". Line this key up with its siblings, or quote the value.'
        )
    if "expected <block end>" in problem or "did not find expected key" in problem:
        return (
            "this line's indentation does not match the lines around it: every field of one object must "
            "start in the same column."
        )
    if "did not find expected '-' indicator" in problem:
        return 'items of a list must each start with "- " at the same indentation.'
    if "found undefined alias" in problem or "found unhashable key" in problem:
        return "check this line for a stray '*', '{' or '[' and quote the value if it is text."
    if "could not find expected ':'" in problem:
        return "a key is missing its ':' (write \"key: value\"), or a quoted string is not closed."
    if "found unexpected end of stream" in problem or "while scanning a quoted scalar" in problem:
        return "a quoted string is not closed: check the quotes on this line."
    return "check the indentation and punctuation of this line and the one above it."


_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z0-9_.\-/]+)\s*:(\s|$)")


@dataclass
class _TextKey:
    line: int  # 1-based
    indent: int  # column of the key itself
    key: str
    is_item: bool  # the key starts a list item ("- key:")


def _text_key(lines: list[str], line: int) -> _TextKey | None:
    if not 1 <= line <= len(lines):
        return None
    m = _KEY_LINE.match(lines[line - 1])
    if not m:
        return None
    indent = len(m.group("indent")) + (len(m.group("dash")) if m.group("dash") else 0)
    return _TextKey(line, indent, m.group("key"), bool(m.group("dash")))


def _text_path(lines: list[str], at: _TextKey, doc_start: int) -> tuple[str, list[_TextKey]]:
    """The path YAML gives `at` going by indentation alone, and the chain of parent keys."""
    chain: list[_TextKey] = []
    parts: list[str] = []
    indent = at.indent  # column the parent's content must be left of
    item_dash: int | None = at.indent - 2 if at.is_item else None  # dash column of the enclosing item
    if at.is_item:
        line = lines[at.line - 1]
        item_dash = len(line) - len(line.lstrip())
    ln = at.line - 1
    while ln >= doc_start:
        raw = lines[ln - 1]
        stripped = raw.strip()
        lead = len(raw) - len(raw.lstrip())
        ln -= 1
        if not stripped or stripped.startswith("#"):
            continue
        k = _text_key(lines, ln + 1)
        if item_dash is not None:
            # inside a list item: the list's owner is a key at or left of the dash column
            if (
                k is not None
                and not k.is_item
                and (k.indent < item_dash or (k.indent == item_dash and raw.rstrip().endswith(":")))
            ):
                chain.append(k)
                parts.append(k.key + "[]")
                indent = k.indent
                item_dash = None
            elif k is not None and k.is_item and lead < item_dash:
                item_dash = lead  # nested list item further left
            continue
        if stripped.startswith("-") and lead < indent:
            item_dash = lead  # we are a field of this list item
            if k is not None and k.is_item:
                continue
            continue
        if k is not None and k.indent < indent:
            chain.append(k)
            parts.append(k.key)
            indent = k.indent
    return ".".join(reversed(parts)), chain


def _doc_start(lines: list[str], line: int) -> int:
    """First line (1-based) of the YAML document containing `line`."""
    for ln in range(min(line, len(lines)), 0, -1):
        if lines[ln - 1].startswith("---"):
            return ln + 1
    return 1


def _doc_kind(lines: list[str], start: int) -> str:
    for ln in range(start, len(lines) + 1):
        if lines[ln - 1].startswith("---") and ln > start:
            break
        m = re.match(r"^kind:\s*[\"']?(\w+)", lines[ln - 1])
        if m:
            return m.group(1)
    return ""


def _misplaced_message(
    kind: str, path: str, key: str, parent_line: int, parent_key: str
) -> tuple[str, str] | None:
    target = schema.belongs(kind, path, key)
    if target is None:
        return None
    where = f'under "{target}"' if target else "at the top level (no indentation)"
    msg = f'"{key}" is indented under "{parent_key}" (line {parent_line}); it belongs {where}'
    return msg, target


def _explain_yaml_error(lines: list[str], line: int) -> tuple[str, str, int, int] | None:
    """For a YAML error at `line`, look for a known field indented under the wrong parent."""
    for ln in (line, line - 1, line + 1):
        k = _text_key(lines, ln)
        if k is None:
            continue
        start = _doc_start(lines, ln)
        kind = _doc_kind(lines, start)
        path, chain = _text_path(lines, k, start)
        if not chain:
            continue
        found = _misplaced_message(kind, path, k.key, chain[0].line, chain[0].key)
        if found is None:
            continue
        msg, target = found
        return msg, _align_hint(lines, k.key, target, start), ln, k.indent + 1
    return None


def _align_hint(lines: list[str], key: str, target: str, start: int) -> str:
    if not target:
        return f'move "{key}" to the start of the line (no indentation), like "apiVersion" and "kind".'
    # find a sibling key of the target's children to name a column to line up with
    want_parent = target.split(".")[-1].replace("[]", "")
    for ln in range(start, len(lines) + 1):
        if ln > start and lines[ln - 1].startswith("---"):
            break
        k = _text_key(lines, ln)
        if k is not None and k.key == want_parent:
            ppath, _ = _text_path(lines, k, start)
            if (f"{ppath}.{k.key}" if ppath else k.key).replace("[]", "") != target.replace("[]", ""):
                continue
            child_indent = None
            for nxt in range(ln + 1, len(lines) + 1):
                ck = _text_key(lines, nxt)
                if ck is not None:
                    if ck.indent > k.indent:
                        child_indent = ck
                    break
            if child_indent is not None:
                return (
                    f'move "{key}" so it starts in column {child_indent.indent + 1} and lines up with '
                    f'"{child_indent.key}" (line {child_indent.line}), as a field of "{target}".'
                )
    parts = target.replace("[]", "").split(".")
    if len(parts) > 1:
        return (
            f'there is no "{parts[-1]}" under "{parts[-2]}" yet: add a "{parts[-1]}:" line there and '
            f'indent "{key}" below it, as a field of "{target}".'
        )
    return f'indent "{key}" as a direct field of "{target}".'


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
                    start = _doc_start(lines, line) if line else 1
                    raise ManifestError(
                        msg,
                        filename,
                        line,
                        col,
                        _snippet(lines, line, col),
                        _align_hint(lines, key, target, start),
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
    start = _doc_start(lines, line) if line else 1
    raise ManifestError(
        msg, filename, line, col, _snippet(lines, line, col), _align_hint(lines, key, target, start)
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
            f"{what} is a {type(obj).__name__}, not an object: a manifest must be a mapping "
            "with apiVersion, kind and metadata",
            filename,
            line,
            1,
            _snippet(lines, line, 1),
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
            _snippet(lines, line, 1),
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
            _snippet(lines, mline, 1),
            'add a name under metadata, e.g. "metadata:\\n  name: my-app" '
            "(or metadata.generateName for a generated one).",
        )


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
            _snippet(lines, exc.lineno, exc.colno),
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
            _snippet(lines, dup.line, dup.column),
            f'remove one of the two "{dup.key}" entries, or fix the indentation if one of them '
            "belongs to another object.",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        problem = str(exc.problem or exc.context or "invalid YAML")
        explained = _explain_yaml_error(lines, line) if line else None
        if explained is not None:
            msg, hint, eline, ecol = explained
            raise ManifestError(
                f"YAML indentation error: {msg}", filename, eline, ecol, _snippet(lines, eline, ecol), hint
            ) from None
        line_text = lines[line - 1] if 1 <= line <= len(lines) else ""
        raise ManifestError(
            f"YAML syntax error: {problem}",
            filename,
            line,
            col,
            _snippet(lines, line, col),
            _yaml_hint(problem, line_text),
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"YAML error: {exc}", filename) from None
    finally:
        loader.dispose()
    return _check_objects(docs, filename, lines)


def load_manifests(source: str | pathlib.Path, text: str | None = None) -> list[Obj]:
    """Load every object from a manifest file (or from `text`, with `source` naming it in errors)."""
    filename = str(source)
    if text is None:
        try:
            text = pathlib.Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError(
                "no such file", filename, hint="check the path; it is relative to the current directory."
            ) from None
        except IsADirectoryError:
            raise ManifestError("is a directory, not a manifest file", filename) from None
        except UnicodeDecodeError:
            raise ManifestError("is not UTF-8 text (is it a binary file?)", filename) from None
        except OSError as exc:
            raise ManifestError(f"cannot read: {exc.strerror}", filename) from None
    lines = text.splitlines()
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        return _load_json(text, filename, lines)
    return _load_yaml(text, filename, lines)


__all__ = ["ManifestError", "load_manifests"]
