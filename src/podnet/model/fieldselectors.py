"""Field selectors (k8s.io/apimachinery/pkg/fields): `?fieldSelector=spec.nodeName=n1,status.phase!=Failed`.

`parse_field_selector(text)` gives (field, op, value) terms, `field_value(obj, path)` the string a
term compares, `field_matches(obj, terms)` the verdict, and `check_field_selector(kind, terms)`
rejects fields a kind does not support with the API server's own text.
Re-exported by `podnet.model.selectors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from podnet.model.kinds import Obj

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
        if f not in allowed and not (kind == "Pod" and f == "spec.host"):
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
    if path == "spec.host":  # old v1 clients' name for spec.nodeName (Kubernetes converts it)
        path = "spec.nodeName"
    if path == "source" and isinstance(obj.get("source"), dict):  # Events select on source.component
        return str(obj["source"].get("component") or "")
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
