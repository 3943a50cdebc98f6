"""Reading a manifest as text: the snippet-with-caret, hints for YAML syntax errors, and finding
which known field sits under the wrong parent when an indentation mistake breaks the YAML.

Used by manifests.py; everything here works on the raw lines, so it still helps when the
YAML parser has given up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from podnet.model import manifest_schema as schema


def snippet(lines: list[str], line: int, column: int) -> str:
    """`   12 | <line>` plus a caret under `column` (both 1-based)."""
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1].replace("\t", " ")
    gutter = f"{line:>5} | "
    caret = " " * 5 + " | " + " " * max(column - 1, 0) + "^"
    return gutter + src + "\n" + caret


# --------------------------------------------------------------------------- YAML loading


def yaml_hint(problem: str, line_text: str) -> str:
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


def doc_start(lines: list[str], line: int) -> int:
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


def explain_yaml_error(lines: list[str], line: int) -> tuple[str, str, int, int] | None:
    """For a YAML error at `line`, look for a known field indented under the wrong parent."""
    for ln in (line, line - 1, line + 1):
        k = _text_key(lines, ln)
        if k is None:
            continue
        start = doc_start(lines, ln)
        kind = _doc_kind(lines, start)
        path, chain = _text_path(lines, k, start)
        if not chain:
            continue
        found = _misplaced_message(kind, path, k.key, chain[0].line, chain[0].key)
        if found is None:
            continue
        msg, target = found
        return msg, align_hint(lines, k.key, target, start), ln, k.indent + 1
    return None


def align_hint(lines: list[str], key: str, target: str, start: int) -> str:
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
