"""Deployment and ReplicaSet validation (pkg/apis/apps/validation)."""

from __future__ import annotations

import re
from typing import Any

from podnet.model import names
from podnet.model.errors import (
    FieldError,
    GoValue,
    forbidden,
    go_quote,
    go_string_map,
    invalid,
    not_supported,
    required,
)
from podnet.model.selectors import Selector, from_label_selector
from podnet.model.validation_meta import (
    FIELD_IMMUTABLE_MSG,
    as_int,
    go_label_selector,
    validate_label_selector,
    validate_nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)
from podnet.model.validation_pod import validate_pod_template

PERCENT_FMT = "[0-9]+%"
PERCENT_MSG = names.regex_error(
    "a valid percent string must be a numeric string followed by an ending '%'", PERCENT_FMT, "1%", "93%"
)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _validate_template_for_replicaset(
    spec: dict[str, Any], selector: Selector, path: str
) -> list[FieldError]:
    """`ValidatePodTemplateSpecForReplicaSet`."""
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        tmpl = {}  # Go's zero-value template: validated like an empty one
    errs: list[FieldError] = []
    labels = _d(tmpl.get("metadata")).get("labels")
    if not selector.is_empty() and not selector.matches(labels if isinstance(labels, dict) else {}):
        errs.append(
            invalid(
                f"{path}.metadata.labels",
                go_string_map(labels),
                "`selector` does not match template `labels`",
            )
        )
    errs.extend(validate_pod_template(tmpl, path))
    pspec = _d(tmpl.get("spec"))
    rp = pspec.get("restartPolicy")
    if rp != "Always":
        errs.append(not_supported(f"{path}.spec.restartPolicy", rp or "", ["Always"]))
    if pspec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                f"{path}.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported"
            )
        )
    return errs


def _validate_selector_and_template(spec: dict[str, Any]) -> list[FieldError]:
    """The selector part of `ValidateDeploymentSpec` / `ValidateReplicaSetSpec`, then the template."""
    sel = spec.get("selector")
    errs: list[FieldError] = []
    if sel is None:
        errs.append(required("spec.selector", ""))
    else:
        errs.extend(validate_label_selector(sel, "spec.selector"))
        if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(
                invalid("spec.selector", go_label_selector(sel), "empty selector is invalid for deployment")
            )
    try:
        selector = from_label_selector(sel)  # None selects nothing, so the template check then fails too
    except ValueError:
        errs.append(invalid("spec.selector", go_label_selector(sel), "invalid label selector"))
        return errs
    errs.extend(_validate_template_for_replicaset(spec, selector, "spec.template"))
    return errs


def int_or_percent_value(v: Any) -> tuple[int, bool]:
    if isinstance(v, str) and re.fullmatch(PERCENT_FMT, v):
        return int(v[:-1]), True
    i = as_int(v)
    return (i if i is not None else 0), False


def _validate_positive_int_or_percent(v: Any, path: str) -> list[FieldError]:
    if isinstance(v, str):
        if re.fullmatch(PERCENT_FMT, v) is None:
            return [invalid(path, GoValue(v), PERCENT_MSG)]
        return []
    if isinstance(v, int) and not isinstance(v, bool):
        return validate_nonnegative(v, path)
    # sic: Kubernetes passes this text to a non-format function, so "%%" reaches the user as is.
    return [invalid(path, GoValue(str(v)), "must be an integer or percentage (e.g '5%%')")]


def _validate_strategy(strategy: Any) -> list[FieldError]:
    strategy = _d(strategy)
    path = "spec.strategy"
    st = strategy.get("type") or ""
    ru = strategy.get("rollingUpdate")
    if st == "Recreate":
        if ru is not None:
            return [
                forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
            ]
        return []
    if st == "RollingUpdate":
        if not isinstance(ru, dict):
            return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        errs = _validate_positive_int_or_percent(
            ru.get("maxUnavailable"), f"{path}.rollingUpdate.maxUnavailable"
        )
        errs.extend(_validate_positive_int_or_percent(ru.get("maxSurge"), f"{path}.rollingUpdate.maxSurge"))
        mu, mu_pct = int_or_percent_value(ru.get("maxUnavailable"))
        ms, _ = int_or_percent_value(ru.get("maxSurge"))
        if mu == 0 and ms == 0:
            errs.append(
                invalid(
                    f"{path}.rollingUpdate.maxUnavailable",
                    GoValue(str(ru.get("maxUnavailable"))),
                    "may not be 0 when `maxSurge` is 0",
                )
            )
        if mu_pct and mu > 100:
            errs.append(
                invalid(
                    f"{path}.rollingUpdate.maxUnavailable",
                    GoValue(str(ru.get("maxUnavailable"))),
                    "must not be greater than 100%",
                )
            )
        return errs
    return [not_supported(path, _go_strategy(st, ru), ["Recreate", "RollingUpdate"], keep_order=True)]


def _go_strategy(st: str, ru: Any) -> GoValue:
    """`%#v` of the `apps.DeploymentStrategy` Kubernetes prints for an unknown strategy type."""
    rolling = (
        "(*apps.RollingUpdateDeployment)(nil)"
        if ru is None
        else "(*apps.RollingUpdateDeployment)(0xc000000000)"
    )
    return GoValue(f"apps.DeploymentStrategy{{Type:{go_quote(st)}, RollingUpdate:{rolling}}}")


def _validate_meta(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """Object meta of a Deployment or ReplicaSet: the create rules, or the update rules against old."""
    if old is None:
        return validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


def _validate_selector_unchanged(spec: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """apps/v1 makes `spec.selector` of Deployments and ReplicaSets immutable."""
    if old is None or spec.get("selector") == _d(old.get("spec")).get("selector"):
        return []
    return [invalid("spec.selector", go_label_selector(spec.get("selector")), FIELD_IMMUTABLE_MSG)]


def validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateDeployment` / `ValidateDeploymentUpdate` (+ selector immutability for apps/v1)."""
    errs = _validate_meta(obj, old)
    spec = _d(obj.get("spec"))
    errs.extend(validate_nonnegative(spec.get("replicas"), "spec.replicas"))
    errs.extend(_validate_selector_and_template(spec))
    errs.extend(_validate_strategy(spec.get("strategy")))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    if spec.get("revisionHistoryLimit") is not None:
        errs.extend(validate_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        errs.extend(validate_nonnegative(pds, "spec.progressDeadlineSeconds"))
        if (as_int(pds) or 0) <= (as_int(spec.get("minReadySeconds")) or 0):
            errs.append(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    errs.extend(_validate_selector_unchanged(spec, old))
    return errs


def validate_replicaset(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateReplicaSet` / `ValidateReplicaSetUpdate` (+ selector immutability for apps/v1)."""
    errs = _validate_meta(obj, old)
    spec = _d(obj.get("spec"))
    errs.extend(validate_nonnegative(spec.get("replicas"), "spec.replicas"))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    errs.extend(_validate_selector_and_template(spec))
    errs.extend(_validate_selector_unchanged(spec, old))
    return errs
