"""Validation and pruning of custom resources against their CRD's `openAPIV3Schema`, with
apiextensions-apiserver's messages (structural schemas: type, properties, items, required, enum,
minimum/maximum, minLength/maxLength, pattern, minItems/maxItems, minProperties/maxProperties,
format of int32/int64,
`x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`, `nullable`).

`register(api_version, kind, schema)` records the schema of a served custom resource;
`validate_custom(obj, old)` validates an object of a registered kind (meta + schema), after
`prune(obj, schema)` has dropped the fields the schema does not declare, as Kubernetes does.
"""

from __future__ import annotations

import re
from typing import Any

from podnet.model import names
from podnet.model.errors import FieldError, invalid, not_supported, required, too_long, too_many
from podnet.model.validation_meta import validate_object_meta, validate_object_meta_update

_SCHEMAS: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {}
_REVISIONS: dict[tuple[str, str], int] = {}
_counter = 0


def register(api_version: str, kind: str, schema: dict[str, Any], namespaced: bool) -> None:
    global _counter
    _counter += 1
    _SCHEMAS[(api_version, kind)] = (schema, namespaced)
    _REVISIONS[(api_version, kind)] = _counter


def unregister(api_version: str, kind: str) -> None:
    _SCHEMAS.pop((api_version, kind), None)
    _REVISIONS.pop((api_version, kind), None)


def revision(api_version: str, kind: str) -> int:
    """Changes whenever the kind's schema is registered again or removed (0: none registered):
    what the OpenAPI documents' caches are keyed by."""
    return _REVISIONS.get((api_version, kind), 0)


def schema_for(api_version: str, kind: str) -> dict[str, Any] | None:
    found = _SCHEMAS.get((api_version, kind))
    return found[0] if found else None


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shown(value: Any) -> Any:
    return _type_of(value) if isinstance(value, dict | list) else value


def _matches_type(want: str, value: Any) -> bool:
    got = _type_of(value)
    return got == want or (want == "number" and got == "integer")


_META_KEYS = ("apiVersion", "kind", "metadata")


def prune(obj: Any, schema: dict[str, Any], root: bool = True) -> Any:
    """Drop object fields the schema does not declare (unless it preserves unknown fields)."""
    if isinstance(obj, dict):
        props = schema.get("properties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        addl = schema.get("additionalProperties")
        for key in list(obj):
            if root and key in _META_KEYS:
                continue
            if isinstance(props, dict) and key in props:
                prune(obj[key], props[key] if isinstance(props[key], dict) else {}, False)
            elif isinstance(addl, dict):
                prune(obj[key], addl, False)
            elif not preserve and (props is not None or schema.get("type") == "object") and addl is not True:
                del obj[key]
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            prune(item, schema["items"], False)
    return obj


def _check(value: Any, schema: dict[str, Any], path: str, errs: list[FieldError]) -> None:
    if value is None:
        if not schema.get("nullable"):
            errs.append(
                invalid(
                    path, "null", f'{path} in body must be of type {schema.get("type") or "object"}: "null"'
                )
            )
        return
    want = schema.get("type")
    if not isinstance(want, str):
        want = ""
    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    if int_or_string:
        if not isinstance(value, int | str) or isinstance(value, bool):
            errs.append(
                invalid(
                    path,
                    _shown(value),
                    f'{path} in body must be of type integer or string: "{_type_of(value)}"',
                )
            )
            return
    elif isinstance(want, str) and want and not _matches_type(want, value):
        errs.append(
            invalid(path, _shown(value), f'{path} in body must be of type {want}: "{_type_of(value)}"')
        )
        return
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        errs.append(not_supported(path, value, [str(e) for e in enum], keep_order=True))
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if isinstance(lo, int | float):
            if schema.get("exclusiveMinimum") is True and value <= lo:
                errs.append(invalid(path, value, f"{path} in body should be greater than {lo}"))
            elif value < lo:
                errs.append(invalid(path, value, f"{path} in body should be greater than or equal to {lo}"))
        if isinstance(hi, int | float):
            if schema.get("exclusiveMaximum") is True and value >= hi:
                errs.append(invalid(path, value, f"{path} in body should be less than {hi}"))
            elif value > hi:
                errs.append(invalid(path, value, f"{path} in body should be less than or equal to {hi}"))
    if isinstance(value, str):
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            errs.append(too_long(path, schema["maxLength"]))
        if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
            errs.append(
                invalid(path, value, f"{path} in body should be at least {schema['minLength']} chars long")
            )
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                ok = re.search(pattern, value) is not None
            except re.error:
                ok = True
            if not ok:
                errs.append(invalid(path, value, f"{path} in body should match '{pattern}'"))
    if isinstance(value, list):
        if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
            errs.append(too_many(path, len(value), schema["maxItems"]))
        if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
            errs.append(
                invalid(path, len(value), f"{path} in body should have at least {schema['minItems']} items")
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _check(item, items, f"{path}[{i}]", errs)
    if isinstance(value, dict):
        if isinstance(schema.get("maxProperties"), int) and len(value) > schema["maxProperties"]:
            errs.append(too_many(path, len(value), schema["maxProperties"]))
        if isinstance(schema.get("minProperties"), int) and len(value) < schema["minProperties"]:
            errs.append(invalid(path, len(value),
                                f"{path} in body should have at least {schema['minProperties']} properties"))
        for key in _list(schema.get("required")):
            if key not in value:
                errs.append(required(f"{path}.{key}" if path else str(key), ""))
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        for key, sub in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(props, dict) and isinstance(props.get(key), dict):
                _check(sub, props[key], child, errs)
            elif isinstance(addl, dict):
                _check(sub, addl, child, errs)


def validate_schema(obj: dict[str, Any], schema: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    body = {k: v for k, v in obj.items() if k not in _META_KEYS}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    for key in _list(schema.get("required")):
        if key not in obj:
            errs.append(required(str(key), ""))
    for key, value in body.items():
        sub = props.get(key) if isinstance(props, dict) else None
        if isinstance(sub, dict):
            _check(value, sub, str(key), errs)
    return errs


def validate_custom(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """A custom resource of a registered kind; [] for kinds not registered here."""
    found = _SCHEMAS.get((str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")))
    if found is None:
        return []
    schema, namespaced = found
    if old is None:
        errs = validate_object_meta(obj.get("metadata"), namespaced, names.name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errs.extend(validate_schema(obj, schema))
    return errs
