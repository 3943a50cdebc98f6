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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podnet.model.errors import FieldError
from podnet.model.kinds import Obj
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

    def selects_nothing(self) -> bool:
        return self.nothing

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
                        if values and values[-1] is None:  # pragma: no cover
                            pass
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
                    raise fail(f"for '{op}' the value list in (...) must not be empty", peek())
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


# --------------------------------------------------------------------------- field selectors

FIELD_SELECTOR_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ),
    "Service": ("metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"),
    "Node": ("metadata.name", "spec.unschedulable"),
    "Namespace": ("metadata.name", "status.phase"),
    "Event": (
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "ReplicaSet": ("metadata.name", "metadata.namespace", "status.replicas"),
}
"""Field selector labels each kind supports beyond metadata.name/namespace (others: only those two)."""


def supported_fields(kind: str) -> tuple[str, ...]:
    return FIELD_SELECTOR_FIELDS.get(kind, ("metadata.name", "metadata.namespace"))


def check_field_selector(kind: str, terms: Iterable[tuple[str, str, str]]) -> None:
    """Raise ValueError(`field label not supported: <f>`) (the API server's text) for unknown fields."""
    allowed = supported_fields(kind)
    for f, _op, _v in terms:
        if f not in allowed:
            raise ValueError(f"field label not supported: {f}")


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(value: str, text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=!":
                raise ValueError(f"invalid field selector {text!r}: invalid escape sequence in {value!r}")
            out.append(value[i + 1])
            i += 2
            continue
        if c in "=!,":
            raise ValueError(f"invalid field selector {text!r}: unescaped {c!r} in value {value!r}")
        out.append(c)
        i += 1
    return "".join(out)


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """`fields.ParseSelector`: `f=v`, `f==v`, `f!=v` joined by `,` (escape `\\,` `\\=` `\\!` `\\\\`)."""
    terms: list[tuple[str, str, str]] = []
    if text.strip() == "":
        return terms
    for part in _split_unescaped(text, ","):
        if part == "":
            continue
        m = None
        for op in ("!=", "==", "="):
            idx = _find_unescaped(part, op)
            if idx >= 0 and (m is None or idx < m[0]):
                m = (idx, op)
        if m is None:
            raise ValueError(
                f"invalid field selector {text!r}: {part!r} is not of the form "
                "'field=value', 'field==value' or 'field!=value'"
            )
        idx, op = m
        fld = part[:idx].strip()
        if not fld:
            raise ValueError(f"invalid field selector {text!r}: missing field name in {part!r}")
        terms.append((fld, op, _unescape(part[idx + len(op) :], text)))
    return terms


def _find_unescaped(part: str, op: str) -> int:
    i = 0
    while i < len(part):
        if part[i] == "\\":
            i += 2
            continue
        if part.startswith(op, i):
            # "!=" must not be mistaken for "=" preceded by "!"
            if op == "=" and i > 0 and part[i - 1] == "!":
                i += 1
                continue
            if op == "=" and part.startswith("==", i):
                return -1
            return i
        i += 1
    return -1


def field_value(obj: Obj, path: str) -> str:
    """The string a field selector compares for `path` (dotted); "" when absent; bools as true/false."""
    cur: Any = obj
    if path == "status.podIPs":
        ips = (obj.get("status") or {}).get("podIPs") or []
        return ",".join(str(p.get("ip", "")) for p in ips if isinstance(p, dict))
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
        if cur is None:
            if path == "spec.unschedulable" or path == "spec.hostNetwork":
                return "false"
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, dict | list):
        return ""
    return str(cur)


def field_matches(obj: Obj, terms: Iterable[tuple[str, str, str]]) -> bool:
    """True if `obj` satisfies every (field, op, value) term."""
    for f, op, v in terms:
        have = field_value(obj, f)
        if op == "!=":
            if have == v:
                return False
        elif have != v:
            return False
    return True


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
