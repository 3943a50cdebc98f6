"""PodDisruptionBudget, HorizontalPodAutoscaler, APIService, CustomResourceDefinition and
ControllerRevision validation (pkg/apis/{policy,autoscaling}/validation, kube-aggregator,
apiextensions-apiserver)."""

from __future__ import annotations

import re
from typing import Any

from podnet.model import names
from podnet.model.errors import FieldError, GoValue, forbidden, invalid, not_supported, required
from podnet.model.validation_apps import PERCENT_FMT, PERCENT_MSG
from podnet.model.validation_meta import (
    FIELD_IMMUTABLE_MSG,
    as_int,
    validate_label_selector,
    validate_nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _meta(
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    namespaced: bool,
    name_fn: Any = names.name_is_dns_subdomain,
) -> list[FieldError]:
    if old is None:
        return validate_object_meta(obj.get("metadata"), namespaced, name_fn)
    return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


def _positive_int_or_percent(v: Any, path: str) -> list[FieldError]:
    if isinstance(v, str):
        if re.fullmatch(PERCENT_FMT, v) is None:
            return [invalid(path, GoValue(v), PERCENT_MSG)]
        if int(v[:-1]) > 100:
            return [invalid(path, GoValue(v), "must not be greater than 100%")]
        return []
    return validate_nonnegative(v, path)


# --------------------------------------------------------------------------- PodDisruptionBudget


def validate_pdb(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, True)
    spec = _d(obj.get("spec"))
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(
            invalid(
                "spec",
                GoValue("policy.PodDisruptionBudgetSpec{...}"),
                "minAvailable and maxUnavailable cannot be both set",
            )
        )
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            errs.extend(_positive_int_or_percent(spec[key], f"spec.{key}"))
    if spec.get("selector") is not None:
        errs.extend(validate_label_selector(spec["selector"], "spec.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy and policy not in ("IfHealthyBudget", "AlwaysAllow"):
        errs.append(
            not_supported("spec.unhealthyPodEvictionPolicy", policy, ["AlwaysAllow", "IfHealthyBudget"])
        )
    return errs


# --------------------------------------------------------------------------- HorizontalPodAutoscaler


def validate_hpa(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, True, names.path_segment_name_errors)
    spec = _d(obj.get("spec"))
    ref = _d(spec.get("scaleTargetRef"))
    if not ref.get("kind"):
        errs.append(required("spec.scaleTargetRef.kind", ""))
    else:
        errs.extend(
            invalid("spec.scaleTargetRef.kind", ref["kind"], m)
            for m in names.path_segment_name_errors(str(ref["kind"]))
        )
    if not ref.get("name"):
        errs.append(required("spec.scaleTargetRef.name", ""))
    else:
        errs.extend(
            invalid("spec.scaleTargetRef.name", ref["name"], m)
            for m in names.path_segment_name_errors(str(ref["name"]))
        )
    lo = as_int(spec.get("minReplicas"))
    hi = as_int(spec.get("maxReplicas"))
    if lo is not None and lo < 1:
        errs.append(invalid("spec.minReplicas", lo, "must be greater than or equal to 1"))
    if hi is None or hi < 1:
        errs.append(invalid("spec.maxReplicas", hi if hi is not None else 0, "must be greater than 0"))
    elif lo is not None and hi < lo:
        errs.append(invalid("spec.maxReplicas", hi, "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(_l(spec.get("metrics"))):
        mtype = _d(metric).get("type") or ""
        allowed = ["ContainerResource", "External", "Object", "Pods", "Resource"]
        if not mtype:
            errs.append(required(f"spec.metrics[{i}].type", "must specify a metric source type"))
        elif mtype not in allowed:
            errs.append(not_supported(f"spec.metrics[{i}].type", mtype, allowed))
    return errs


# --------------------------------------------------------------------------- APIService


def validate_apiservice(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, False, names.path_segment_name_errors)
    spec = _d(obj.get("spec"))
    version, group = str(spec.get("version") or ""), str(spec.get("group") or "")
    name = str(_d(obj.get("metadata")).get("name") or "")
    if not version:
        errs.append(required("spec.version", ""))
    if name and name != f"{version}.{group}":
        errs.append(invalid("metadata.name", name, 'must be `spec.version+"."+spec.group`'))
    if group:
        errs.extend(invalid("spec.group", group, m) for m in names.dns1123_subdomain_errors(group))
    if version:
        errs.extend(invalid("spec.version", version, m) for m in names.dns1035_label_errors(version))
    gpm = as_int(spec.get("groupPriorityMinimum"))
    if gpm is None or gpm <= 0 or gpm > 20000:
        errs.append(
            invalid(
                "spec.groupPriorityMinimum",
                gpm if gpm is not None else 0,
                "must be positive and less than 20000",
            )
        )
    vp = as_int(spec.get("versionPriority"))
    if vp is None or vp <= 0 or vp > 1000:
        errs.append(
            invalid(
                "spec.versionPriority", vp if vp is not None else 0, "must be positive and less than 1000"
            )
        )
    if spec.get("service") is None:
        if spec.get("caBundle"):
            errs.append(
                invalid("spec.caBundle", GoValue("[...]"), "local APIServices may not have a caBundle")
            )
        if spec.get("insecureSkipTLSVerify"):
            errs.append(
                invalid(
                    "spec.insecureSkipTLSVerify", True, "local APIServices may not have insecureSkipTLSVerify"
                )
            )
    elif spec.get("insecureSkipTLSVerify") and spec.get("caBundle"):
        errs.append(invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
    return errs


# --------------------------------------------------------------------------- CustomResourceDefinition


def validate_crd(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, False)
    spec = _d(obj.get("spec"))
    group = str(spec.get("group") or "")
    crd_names = _d(spec.get("names"))
    plural = str(crd_names.get("plural") or "")
    name = str(_d(obj.get("metadata")).get("name") or "")
    if name and name != f"{plural}.{group}":
        errs.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(required("spec.group", ""))
    else:
        errs.extend(invalid("spec.group", group, m) for m in names.dns1123_subdomain_errors(group))
        if len(group.split(".")) < 2:
            errs.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope") or ""
    if scope not in ("Cluster", "Namespaced"):
        if not scope:
            errs.append(required("spec.scope", ""))
        else:
            errs.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"], keep_order=True))
    if not plural:
        errs.append(required("spec.names.plural", ""))
    else:
        errs.extend(invalid("spec.names.plural", plural, m) for m in names.dns1035_label_errors(plural))
    singular = str(crd_names.get("singular") or "")
    if singular:
        errs.extend(invalid("spec.names.singular", singular, m) for m in names.dns1035_label_errors(singular))
    kind = str(crd_names.get("kind") or "")
    if not kind:
        errs.append(required("spec.names.kind", ""))
    else:
        kind_errs = names.dns1035_label_errors(kind.lower())
        if kind_errs:
            errs.append(
                invalid(
                    "spec.names.kind",
                    kind,
                    "may have mixed case, but should otherwise match: " + ",".join(kind_errs),
                )
            )
    for i, short in enumerate(_l(crd_names.get("shortNames"))):
        errs.extend(
            invalid(f"spec.names.shortNames[{i}]", short, m) for m in names.dns1035_label_errors(str(short))
        )
    versions = [_d(v) for v in _l(spec.get("versions"))]
    if not versions:
        errs.append(required("spec.versions", "must have exactly one version marked as storage version"))
    else:
        storage = sum(1 for v in versions if v.get("storage") is True)
        if storage != 1:
            errs.append(
                invalid(
                    "spec.versions",
                    GoValue("[]apiextensions.CustomResourceDefinitionVersion{...}"),
                    "must have exactly one version marked as storage version",
                )
            )
        if not any(v.get("served") is True for v in versions):
            errs.append(
                invalid(
                    "spec.versions",
                    GoValue("[]apiextensions.CustomResourceDefinitionVersion{...}"),
                    "must have at least one version marked as served",
                )
            )
        seen: set[str] = set()
        for i, v in enumerate(versions):
            vname = str(v.get("name") or "")
            if not vname:
                errs.append(required(f"spec.versions[{i}].name", ""))
            else:
                errs.extend(
                    invalid(f"spec.versions[{i}].name", vname, m) for m in names.dns1035_label_errors(vname)
                )
            if vname in seen:
                errs.append(
                    invalid(
                        "spec.versions",
                        GoValue("[]apiextensions.CustomResourceDefinitionVersion{...}"),
                        "must contain unique version names",
                    )
                )
            seen.add(vname)
            schema = _d(v.get("schema")).get("openAPIV3Schema")
            if schema is None:
                errs.append(required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
            elif _d(schema).get("type") != "object":
                errs.append(
                    invalid(
                        f"spec.versions[{i}].schema.openAPIV3Schema.type",
                        _d(schema).get("type") or "",
                        "must be object at the root",
                    )
                )
    if old is not None:
        old_spec = _d(old.get("spec"))
        if group != old_spec.get("group"):
            errs.append(invalid("spec.group", group, FIELD_IMMUTABLE_MSG))
        if plural != _d(old_spec.get("names")).get("plural"):
            errs.append(invalid("spec.names.plural", plural, FIELD_IMMUTABLE_MSG))
        if scope != old_spec.get("scope"):
            errs.append(invalid("spec.scope", scope, FIELD_IMMUTABLE_MSG))
    return errs


# --------------------------------------------------------------------------- ControllerRevision


def validate_controller_revision(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, True)
    if obj.get("data") is None and old is None:
        errs.append(required("data", "data is mandatory"))
    errs.extend(validate_nonnegative(obj.get("revision"), "revision"))
    if old is not None and obj.get("data") != old.get("data"):
        errs.append(forbidden("data", FIELD_IMMUTABLE_MSG))
    return errs
