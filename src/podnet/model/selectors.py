"""Label and field selectors (k8s.io/apimachinery/pkg/labels, pkg/fields).

Three ways to get a `Selector`:

* `from_map(d)` — a Service's `spec.selector` (equality on every key). An empty or
  missing Service selector selects **nothing**: Kubernetes creates no endpoints for a
  selectorless Service (the user manages them).
* `from_label_selector(d)` — a `metav1.LabelSelector` (`matchLabels` + `matchExpressions`)
  as Deployments/ReplicaSets use it. `None` selects nothing; `{}` selects everything.
* `parse(text)` — the `?labelSelector=` query string (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
  The empty string selects everything.

Field selectors: `parse_field_selector(text)` and `field_value(obj, path)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podnet.model.errors import FieldError
from podnet.model.fieldselectors import (
    FIELD_SELECTOR_FIELDS,
    check_field_selector,
    field_matches,
    field_value,
    parse_field_selector,
    supported_fields,
)
from podnet.model.names import label_value_errors, qualified_name_errors
from podnet.model.validation_meta import validate_label_selector as _validate_label_selector

# --------------------------------------------------------------------------- requirements

OPS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")


@dataclass(frozen=True)
class Requirement:
    """One term: `key op values`; `op` is `=`, `==`, `!=`, `in`, `notin`, `exists`, `!`, `gt` or `lt`."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op in ("=", "==", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("gt", "lt"):
            if self.key not in labels:
                return False
            try:
                have = int(labels[self.key])
                want = int(self.values[0])
            except ValueError:
                return False
            return have > want if op == "gt" else have < want
        return False

    def __str__(self) -> str:
        op = self.op
        if op == "exists":
            return self.key
        if op == "!":
            return "!" + self.key
        if op in ("in", "notin"):
            return f"{self.key} {op} ({','.join(sorted(self.values))})"
        if op == "gt":
            return f"{self.key}>{self.values[0]}"
        if op == "lt":
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements. `nothing=True` is `labels.Nothing()`: matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def is_empty(self) -> bool:
        """True for the selector that matches everything (no requirements)."""
        return not self.nothing and not self.requirements

    def __str__(self) -> str:
        if self.nothing:
            return ""
        return ",".join(str(r) for r in sorted(self.requirements, key=lambda r: r.key))


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


class SelectorError(ValueError):
    """A selector that cannot be built; `.errors` holds field errors when they have a path."""

    def __init__(self, message: str, errors: list[FieldError] | None = None):
        super().__init__(message)
        self.errors = errors or []


# --------------------------------------------------------------------------- builders


def from_map(d: Mapping[str, Any] | None) -> Selector:
    """A Service selector. Empty or None selects nothing (selectorless Service)."""
    if not d:
        return NOTHING
    return Selector(tuple(Requirement(str(k), "=", (str(v),)) for k, v in sorted(d.items())))


def from_set(d: Mapping[str, Any] | None) -> Selector:
    """`labels.SelectorFromSet`: equality on every key; empty selects everything."""
    if not d:
        return EVERYTHING
    return Selector(tuple(Requirement(str(k), "=", (str(v),)) for k, v in sorted(d.items())))


_LS_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def validate_label_selector(d: Any, path: str) -> list[FieldError]:
    """`metav1validation.ValidateLabelSelector`: errors with Kubernetes paths under `path`."""
    return _validate_label_selector(d, path)


def from_label_selector(d: Mapping[str, Any] | None, path: str = "selector") -> Selector:
    """`metav1.LabelSelectorAsSelector`: None → nothing, `{}` → everything.

    Raises SelectorError (a ValueError) carrying the field errors when the selector is invalid.
    """
    if d is None:
        return NOTHING
    errs = validate_label_selector(d, path)
    if errs:
        raise SelectorError("invalid label selector: " + "; ".join(e.error() for e in errs), errs)
    reqs: list[Requirement] = []
    for k, v in sorted((d.get("matchLabels") or {}).items()):
        reqs.append(Requirement(str(k), "=", (str(v),)))
    for expr in d.get("matchExpressions") or []:
        op = _LS_OPS[str(expr.get("operator"))]
        vals = tuple(sorted({str(v) for v in expr.get("values") or []}))
        reqs.append(Requirement(str(expr.get("key")), op, vals))
    return Selector(tuple(reqs))


# --------------------------------------------------------------------------- parse


_TOKEN_RE = re.compile(r"\s*(?:(?P<op>==|!=|=|\(|\)|,|!|>|<)|(?P<word>[^\s=!,()<>]+))")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if not m:  # pragma: no cover - the regex matches any non-space character
            raise ValueError(f"unable to parse label selector {text!r}: unexpected character at {pos}")
        if m.group("op") is not None:
            out.append(("op", m.group("op"), m.start("op")))
        else:
            word = m.group("word")
            kind = "kw" if word in ("in", "notin") else "word"
            out.append((kind, word, m.start("word")))
        pos = m.end()
    return out


def _check_key(key: str, text: str) -> None:
    msgs = qualified_name_errors(key)
    if msgs:
        raise ValueError(f"invalid label selector {text!r}: key {key!r}: {msgs[0]}")


def _check_value(value: str, text: str) -> None:
    msgs = label_value_errors(value)
    if msgs:
        raise ValueError(f"invalid label selector {text!r}: value {value!r}: {msgs[0]}")


def parse(text: str) -> Selector:
    """Parse the labelSelector query syntax; raise ValueError naming the problem."""
    toks = _tokens(text)
    if not toks:
        return EVERYTHING
    reqs: list[Requirement] = []
    i = 0

    def peek(k: int = 0) -> tuple[str, str, int] | None:
        return toks[i + k] if i + k < len(toks) else None

    def fail(msg: str, tok: tuple[str, str, int] | None) -> ValueError:
        where = f" at position {tok[2]}" if tok else " at the end"
        return ValueError(f"unable to parse label selector {text!r}: {msg}{where}")

    while True:
        tok = peek()
        if tok is None:
            raise fail("expected a requirement (key, !key, key=value, key in (a,b)) after ','", None)
        if tok == ("op", "!", tok[2]):
            i += 1
            key_tok = peek()
            if key_tok is None or key_tok[0] != "word":
                raise fail("expected a label key after '!'", key_tok)
            _check_key(key_tok[1], text)
            reqs.append(Requirement(key_tok[1], "!"))
            i += 1
        elif tok[0] in ("word", "kw"):
            key = tok[1]
            _check_key(key, text)
            i += 1
            nxt = peek()
            if nxt is None or nxt[1] == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt[0] == "op" and nxt[1] in ("=", "==", "!=", ">", "<"):
                i += 1
                val_tok = peek()
                if val_tok is None or val_tok[1] == ",":
                    value = ""
                elif val_tok[0] in ("word", "kw"):
                    value = val_tok[1]
                    i += 1
                else:
                    raise fail(f"expected a value after '{nxt[1]}'", val_tok)
                if nxt[1] in (">", "<"):
                    if not re.fullmatch(r"-?\d+", value):
                        raise fail(f"for '{nxt[1]}' the value must be an integer, got {value!r}", val_tok)
                    reqs.append(Requirement(key, "gt" if nxt[1] == ">" else "lt", (value,)))
                else:
                    _check_value(value, text)
                    reqs.append(Requirement(key, nxt[1], (value,)))
            elif nxt[0] == "kw":
                op = nxt[1]
                i += 1
                if (peek() or ("", "", 0))[1] != "(":
                    raise fail(f"expected '(' after '{op}'", peek())
                i += 1
                values: list[str] = []
                while True:
                    v = peek()
                    if v is None:
                        raise fail("missing ')'", None)
                    if v[1] == ")":
                        i += 1
                        break
                    if v[0] in ("word", "kw"):
                        _check_value(v[1], text)
                        values.append(v[1])
                        i += 1
                        sep = peek()
                        if sep is not None and sep[1] == ",":
                            i += 1
                            nxt_v = peek()
                            if nxt_v is not None and nxt_v[1] == ")":
                                values.append("")
                        continue
                    if v[1] == ",":
                        values.append("")
                        i += 1
                        continue
                    raise fail(f"unexpected {v[1]!r} in value list", v)
                if not values:
                    values = [""]  # as in Kubernetes, "()" means the single empty value
                reqs.append(Requirement(key, op, tuple(sorted(set(values)))))
            else:
                raise fail(
                    f"expected '=', '!=', 'in', 'notin' or ',' after key {key!r}, found {nxt[1]!r}", nxt
                )
        else:
            raise fail(f"expected a label key, found {tok[1]!r}", tok)
        sep = peek()
        if sep is None:
            break
        if sep[1] != ",":
            raise fail(f"expected ',' between requirements, found {sep[1]!r}", sep)
        i += 1
    return Selector(tuple(reqs))


__all__ = [
    "EVERYTHING",
    "FIELD_SELECTOR_FIELDS",
    "NOTHING",
    "Requirement",
    "Selector",
    "SelectorError",
    "check_field_selector",
    "field_matches",
    "field_value",
    "from_label_selector",
    "from_map",
    "from_set",
    "parse",
    "parse_field_selector",
    "supported_fields",
    "validate_label_selector",
]
