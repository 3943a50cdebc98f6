"""Field errors with Kubernetes' wording (k8s.io/apimachinery/pkg/util/validation/field).

`FieldError.error()` renders `<field>: <body>` exactly as the API server does, e.g.
`spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any


class ErrorType(Enum):
    # value: (text shown in messages, cause reason on the wire)
    NOT_FOUND = ("Not found", "FieldValueNotFound")
    REQUIRED = ("Required value", "FieldValueRequired")
    DUPLICATE = ("Duplicate value", "FieldValueDuplicate")
    INVALID = ("Invalid value", "FieldValueInvalid")
    NOT_SUPPORTED = ("Unsupported value", "FieldValueNotSupported")
    FORBIDDEN = ("Forbidden", "FieldValueForbidden")
    TOO_LONG = ("Too long", "FieldValueTooLong")
    TOO_MANY = ("Too many", "FieldValueTooMany")
    INTERNAL = ("Internal error", "InternalError")
    TYPE_INVALID = ("Invalid value", "FieldValueTypeInvalid")

    @property
    def text(self) -> str:
        return self.value[0]

    @property
    def reason(self) -> str:
        return self.value[1]


_OMIT = object()


class GoValue:
    """A bad value already rendered the way Go prints it (`%#v`), e.g. `map[string]string{"a":"b"}`."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"GoValue({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def go_quote(s: str) -> str:
    """Go's `strconv.Quote` / `%q`: printable Unicode kept, control characters escaped."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or (ch.isprintable() and o != 0x7F):
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}


def go_string_map(d: Any) -> GoValue:
    """`%#v` of a Go `map[string]string`: keys sorted, `map[string]string{"a":"b", "c":"d"}`."""
    if not d:
        return GoValue("map[string]string(nil)" if d is None else "map[string]string{}")
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(d.items()))
    return GoValue("map[string]string{" + items + "}")


def go_string_slice(items: Any) -> GoValue:
    """`%#v` of a Go `[]string`: `[]string{"a", "b"}` (nil → `[]string(nil)`)."""
    if items is None:
        return GoValue("[]string(nil)")
    return GoValue("[]string{" + ", ".join(go_quote(str(x)) for x in items) + "}")


def format_value(value: Any) -> str:
    """Go's `%v`/`%q`/`%#v` as field.Error uses them: ints bare, strings quoted, GoValue verbatim."""
    if isinstance(value, GoValue):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    type: ErrorType
    field: str
    bad_value: Any = _OMIT
    detail: str = ""

    def body(self) -> str:
        """`ErrorBody()`: the message without the field path (what `causes[].message` carries)."""
        if self.type in (ErrorType.REQUIRED, ErrorType.FORBIDDEN, ErrorType.TOO_LONG,
                         ErrorType.INTERNAL) or self.bad_value is _OMIT:
            text = self.type.text
        else:
            text = f"{self.type.text}: {format_value(self.bad_value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def error(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def __str__(self) -> str:
        return self.error()


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(ErrorType.INVALID, path, value, detail)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(ErrorType.REQUIRED, path, _OMIT, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(ErrorType.DUPLICATE, path, value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(ErrorType.FORBIDDEN, path, _OMIT, detail)


def not_supported(path: str, value: Any, supported: list[str] | tuple[str, ...],
                  keep_order: bool = False) -> FieldError:
    """`field.NotSupported`. Kubernetes passes most lists sorted (`sets.List`); where it passes a
    fixed slice (restartPolicy, dnsPolicy, ...) call with `keep_order=True` to print that order."""
    detail = ""
    if supported:
        values = list(supported) if keep_order else sorted(supported)
        detail = "supported values: " + ", ".join(go_quote(s) for s in values)
    return FieldError(ErrorType.NOT_SUPPORTED, path, value, detail)


def too_long(path: str, max_len: int) -> FieldError:
    return FieldError(ErrorType.TOO_LONG, path, _OMIT, f"must have at most {max_len} bytes")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return FieldError(ErrorType.TOO_MANY, path, actual, f"must have at most {max_items} items")


def aggregate(errors: list[FieldError]) -> str:
    """`utilerrors.NewAggregate(...).Error()`: one error bare, several as `[a, b]`, duplicates dropped."""
    seen: list[str] = []
    for e in errors:
        text = e.error()
        if text not in seen:
            seen.append(text)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"
