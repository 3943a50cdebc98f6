"""Object-meta, label, annotation and label-selector validation (apimachinery + core validation).

Paths and messages follow `ValidateObjectMeta`, `ValidateLabels`, `ValidateAnnotations`,
`ValidateLabelSelector` and `ValidateObjectMetaUpdate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podnet.model import names
from podnet.model.errors import (
    FieldError,
    GoValue,
    forbidden,
    go_quote,
    go_string_slice,
    invalid,
    required,
    too_long,
)
from podnet.model.names import label_value_errors, qualified_name_errors

NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * (1 << 10)
IS_NEGATIVE_MSG = "must be greater than or equal to 0"
FIELD_IMMUTABLE_MSG = "field is immutable"


def as_int(value: Any) -> int | None:
    """An integer field's value, or None if it is not an integer (bools are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def validate_nonnegative(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, IS_NEGATIVE_MSG)]
    return []


def validate_label_name(key: str, path: str) -> list[FieldError]:
    return [invalid(path, key, m) for m in qualified_name_errors(key)]


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """`ValidateLabels`: every bad key or value is reported at `path` itself (no key suffix)."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid(path, GoValue(str(labels)), "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    for k, v in labels.items():
        errs.extend(validate_label_name(str(k), path))
        if not isinstance(v, str):
            errs.append(invalid(path, v, "label values must be strings"))
            continue
        errs.extend(invalid(path, v, m) for m in label_value_errors(v))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid(path, GoValue(str(annotations)), "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    total = 0
    for k, v in annotations.items():
        errs.extend(invalid(path, k, m) for m in qualified_name_errors(str(k).lower()))
        total += len(str(k)) + len(str(v) if v is not None else "")
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def go_label_selector(sel: Any) -> GoValue:
    """`%#v` of a `v1.LabelSelector` (the shape Kubernetes prints for a bad selector)."""
    if not isinstance(sel, dict):
        return GoValue("(*v1.LabelSelector)(nil)")
    ml = sel.get("matchLabels")
    ml = ml if isinstance(ml, dict) else None
    labels = (
        "map[string]string(nil)"
        if not ml
        else (
            "map[string]string{"
            + ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(ml.items()))
            + "}"
        )
    )
    exprs = sel.get("matchExpressions")
    exprs = exprs if isinstance(exprs, list) else None
    if not exprs:
        ex = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            vals = e.get("values")
            vtxt = (
                "[]string(nil)"
                if vals is None
                else ("[]string{" + ", ".join(go_quote(str(x)) for x in vals) + "}")
            )
            parts.append(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key', '')))}, "
                f"Operator:{go_quote(str(e.get('operator', '')))}, Values:{vtxt}}}"
            )
        ex = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return GoValue(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{ex}}}")


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    """`metav1validation.ValidateLabelSelector` (None is valid)."""
    if sel is None:
        return []
    if not isinstance(sel, dict):
        return [
            invalid(
                path,
                GoValue(str(sel)),
                "must be a label selector object (matchLabels and/or matchExpressions)",
            )
        ]
    errs = validate_labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            errs.append(invalid(p, GoValue(str(expr)), "must be an object with key, operator and values"))
            continue
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden(
                        f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errs.append(
                invalid(f"{p}.operator", op if op is not None else "", "not a valid selector operator")
            )
        errs.extend(validate_label_name(str(expr.get("key", "")), f"{p}.key"))
        for j, v in enumerate(values):
            errs.extend(invalid(f"{p}.values[{j}]", v, m) for m in label_value_errors(str(v)))
    return errs


def validate_object_meta(
    meta: Any, namespaced: bool, name_fn: NameFn, path: str = "metadata"
) -> list[FieldError]:
    """`ValidateObjectMeta`: name/generateName, namespace, generation, labels, annotations, ..."""
    if not isinstance(meta, dict):
        return [required(f"{path}.name", "name or generateName is required")]
    errs: list[FieldError] = []
    gen = meta.get("generateName")
    if isinstance(gen, str) and gen:
        errs.extend(invalid(f"{path}.generateName", gen, m) for m in name_fn(gen, True))
    name = meta.get("name")
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    elif not isinstance(name, str):
        errs.append(invalid(f"{path}.name", name, "must be a string"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in name_fn(name, False))
    ns = meta.get("namespace")
    if namespaced:
        if not ns:
            errs.append(required(f"{path}.namespace", ""))
        else:
            errs.extend(invalid(f"{path}.namespace", ns, m) for m in names.dns1123_label_errors(str(ns)))
    elif ns:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    errs.extend(validate_nonnegative(meta.get("generation"), f"{path}.generation"))
    errs.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(_validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    errs.extend(_validate_finalizers(meta.get("finalizers"), f"{path}.finalizers"))
    return errs


def _validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    """`ValidateOwnerReferences` (errors are reported at the list's path, as Kubernetes does)."""
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs if isinstance(refs, list) else []:
        if not isinstance(ref, dict):
            continue
        api_version = str(ref.get("apiVersion") or "")
        version = api_version.rsplit("/", 1)[-1]
        if not version:
            errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.append(invalid(f"{path}.{key}", str(ref.get(key) or ""), "must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            errs.append(
                invalid(
                    path,
                    GoValue(f"v1.OwnerReference{{Kind:{go_quote('Event')}}}"),
                    "/v1, Kind=Event is disallowed from being an owner",
                )
            )
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                errs.append(
                    invalid(
                        path,
                        GoValue("[]v1.OwnerReference{...}"),
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


def _validate_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    """`ValidateFinalizers`: qualified names; orphan and foregroundDeletion are exclusive."""
    errs: list[FieldError] = []
    items = [str(f) for f in finalizers] if isinstance(finalizers, list) else []
    for f in items:
        errs.extend(invalid(path, f, m) for m in qualified_name_errors(f))
    if "orphan" in items and "foregroundDeletion" in items:
        errs.append(
            invalid(
                path, go_string_slice(items), "finalizer orphan and foregroundDeletion cannot be both set"
            )
        )
    return errs


def validate_object_meta_update(new: Any, old: Any, path: str = "metadata") -> list[FieldError]:
    """`ValidateObjectMetaUpdate`: name, namespace and uid are immutable.

    Like the Kubernetes REST layer before it validates, an empty uid means "keep the old one",
    and creationTimestamp/generation changes are ignored (the server keeps its own values).
    resourceVersion is not required here: the API server fills it for unconditional updates.
    """
    new = new if isinstance(new, dict) else {}
    old = old if isinstance(old, dict) else {}
    errs: list[FieldError] = []
    for key in ("name", "namespace", "uid"):
        nv, ov = new.get(key), old.get(key)
        if key == "uid" and not nv:
            continue
        if (nv or "") != (ov or ""):
            errs.append(invalid(f"{path}.{key}", nv if nv is not None else "", FIELD_IMMUTABLE_MSG))
    errs.extend(validate_labels(new.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(new.get("annotations"), f"{path}.annotations"))
    errs.extend(_validate_owner_references(new.get("ownerReferences"), f"{path}.ownerReferences"))
    return errs
