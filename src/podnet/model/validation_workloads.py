"""DaemonSet, StatefulSet, ReplicationController, Job and CronJob validation
(pkg/apis/apps/validation, pkg/apis/core/validation, pkg/apis/batch/validation)."""

from __future__ import annotations

import re
from typing import Any

from podnet.model import names
from podnet.model.cron import cron_errors
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
from podnet.model.selectors import Selector, SelectorError, from_label_selector, from_set
from podnet.model.validation_apps import PERCENT_FMT, PERCENT_MSG, int_or_percent_value
from podnet.model.validation_meta import (
    FIELD_IMMUTABLE_MSG,
    go_label_selector,
    validate_label_selector,
    validate_labels,
    validate_nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)
from podnet.model.validation_pod import validate_pod_template


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _meta(obj: dict[str, Any], old: dict[str, Any] | None, max_name: int = 0) -> list[FieldError]:
    if old is None:
        errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
        name = _d(obj.get("metadata")).get("name")
        if max_name and isinstance(name, str) and len(name) > max_name:
            errs.append(invalid("metadata.name", name, f"must be no more than {max_name} characters"))
        return errs
    return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


def _template_matches(tmpl: dict[str, Any], selector: Selector, path: str) -> list[FieldError]:
    labels = _d(_d(tmpl.get("metadata")).get("labels"))
    if not selector.is_empty() and not selector.matches(labels):
        return [
            invalid(
                f"{path}.metadata.labels",
                go_string_map(labels),
                "`selector` does not match template `labels`",
            )
        ]
    return []


def _always_template(spec: dict[str, Any], kind: str, path: str = "spec.template") -> list[FieldError]:
    """A long-running template: restartPolicy Always, no activeDeadlineSeconds."""
    pspec = _d(_d(spec.get("template")).get("spec"))
    errs: list[FieldError] = []
    rp = pspec.get("restartPolicy")
    if rp != "Always":
        errs.append(not_supported(f"{path}.spec.restartPolicy", rp or "", ["Always"]))
    if pspec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                f"{path}.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"
            )
        )
    return errs


def _selector_and_template(spec: dict[str, Any], kind: str) -> list[FieldError]:
    sel = spec.get("selector")
    errs: list[FieldError] = []
    if sel is None:
        errs.append(required("spec.selector", ""))
    else:
        errs.extend(validate_label_selector(sel, "spec.selector"))
        if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(
                invalid(
                    "spec.selector", go_label_selector(sel), f"empty selector is invalid for {kind.lower()}"
                )
            )
    try:
        selector = from_label_selector(sel)
    except (SelectorError, ValueError):
        errs.append(invalid("spec.selector", go_label_selector(sel), "invalid label selector"))
        return errs
    tmpl = _d(spec.get("template"))
    errs.extend(_template_matches(tmpl, selector, "spec.template"))
    errs.extend(validate_pod_template(tmpl, "spec.template"))
    errs.extend(_always_template(spec, kind))
    return errs


def _selector_unchanged(spec: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    if old is None or spec.get("selector") == _d(old.get("spec")).get("selector"):
        return []
    return [invalid("spec.selector", go_label_selector(spec.get("selector")), FIELD_IMMUTABLE_MSG)]


def _int_or_percent(v: Any, path: str) -> list[FieldError]:
    """`ValidatePositiveIntOrPercent` + `IsNotMoreThan100Percent`."""
    if isinstance(v, str):
        if re.fullmatch(PERCENT_FMT, v) is None:
            return [invalid(path, GoValue(v), PERCENT_MSG)]
        if int(v[:-1]) > 100:
            return [invalid(path, GoValue(v), "must not be greater than 100%")]
        return []
    if isinstance(v, int) and not isinstance(v, bool):
        return validate_nonnegative(v, path)
    if v is None:
        return []
    return [invalid(path, GoValue(str(v)), "must be an integer or percentage (e.g '5%%')")]


# --------------------------------------------------------------------------- DaemonSet


def _daemonset_strategy(strategy: Any) -> list[FieldError]:
    strategy = _d(strategy)
    path = "spec.updateStrategy"
    st = strategy.get("type") or ""
    st = st if isinstance(st, str) else str(st)
    if st == "OnDelete":
        return []
    if st == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            return [required(f"{path}.rollingUpdate", "")]
        errs = _int_or_percent(ru.get("maxUnavailable"), f"{path}.rollingUpdate.maxUnavailable")
        errs.extend(_int_or_percent(ru.get("maxSurge"), f"{path}.rollingUpdate.maxSurge"))
        mu, _ = int_or_percent_value(ru.get("maxUnavailable"))
        ms, _ = int_or_percent_value(ru.get("maxSurge"))
        if mu == 0 and ms == 0:
            errs.append(
                invalid(
                    f"{path}.rollingUpdate.maxUnavailable",
                    GoValue(str(ru.get("maxUnavailable"))),
                    "may not be 0 when `maxSurge` is 0",
                )
            )
        return errs
    rolling = (
        "(*apps.RollingUpdateDaemonSet)(nil)"
        if strategy.get("rollingUpdate") is None
        else "(*apps.RollingUpdateDaemonSet)(0xc000000000)"
    )
    shown = GoValue(f"apps.DaemonSetUpdateStrategy{{Type:{go_quote(st)}, RollingUpdate:{rolling}}}")
    return [not_supported(path, shown, ["RollingUpdate", "OnDelete"], keep_order=True)]


def validate_daemonset(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateDaemonSet` / `ValidateDaemonSetUpdate`."""
    errs = _meta(obj, old)
    spec = _d(obj.get("spec"))
    errs.extend(_selector_and_template(spec, "DaemonSet"))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    errs.extend(validate_nonnegative(spec.get("templateGeneration"), "spec.templateGeneration"))
    errs.extend(_daemonset_strategy(spec.get("updateStrategy")))
    if spec.get("revisionHistoryLimit") is not None:
        errs.extend(validate_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit"))
    errs.extend(_selector_unchanged(spec, old))
    return errs


# --------------------------------------------------------------------------- StatefulSet

_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def validate_statefulset(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateStatefulSet` / `ValidateStatefulSetUpdate`."""
    errs = _meta(obj, old)
    spec = _d(obj.get("spec"))
    pmp = spec.get("podManagementPolicy") or ""
    if not pmp:
        errs.append(required("spec.podManagementPolicy", ""))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _d(spec.get("updateStrategy"))
    st = strategy.get("type") or ""
    st = st if isinstance(st, str) else str(st)
    if not st:
        errs.append(required("spec.updateStrategy", ""))
    elif st == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            errs.append(
                invalid(
                    "spec.updateStrategy.rollingUpdate",
                    strategy.get("rollingUpdate"),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
    elif st == "RollingUpdate":
        ru = _d(strategy.get("rollingUpdate"))
        errs.extend(validate_nonnegative(ru.get("partition"), "spec.updateStrategy.rollingUpdate.partition"))
        if ru.get("maxUnavailable") is not None:
            errs.extend(
                _int_or_percent(ru.get("maxUnavailable"), "spec.updateStrategy.rollingUpdate.maxUnavailable")
            )
    else:
        errs.append(
            invalid(
                "spec.updateStrategy",
                GoValue(f"apps.StatefulSetUpdateStrategy{{Type:{go_quote(st)}}}"),
                "must be 'RollingUpdate' or 'OnDelete'",
            )
        )
    policy = _d(spec.get("persistentVolumeClaimRetentionPolicy"))
    for key in ("whenDeleted", "whenScaled"):
        value = policy.get(key)
        if value and value not in ("Retain", "Delete"):
            errs.append(
                not_supported(
                    f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                    value,
                    ["Retain", "Delete"],
                    keep_order=True,
                )
            )
    errs.extend(validate_nonnegative(spec.get("replicas"), "spec.replicas"))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    ordinals = _d(spec.get("ordinals"))
    errs.extend(validate_nonnegative(ordinals.get("start"), "spec.ordinals.start"))
    service = spec.get("serviceName")
    if service:
        errs.extend(invalid("spec.serviceName", service, m) for m in names.dns1123_label_errors(str(service)))
    errs.extend(_selector_and_template(spec, "StatefulSet"))
    if old is not None:
        old_spec = _d(old.get("spec"))
        if {k: v for k, v in spec.items() if k not in _STS_MUTABLE} != {
            k: v for k, v in old_spec.items() if k not in _STS_MUTABLE
        }:
            errs.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', "
                    "'ordinals', 'template', 'updateStrategy', "
                    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                    "are forbidden",
                )
            )
    return errs


# --------------------------------------------------------------------------- ReplicationController


def validate_replication_controller(
    obj: dict[str, Any], old: dict[str, Any] | None = None
) -> list[FieldError]:
    """`ValidateReplicationController` / `...Update`."""
    errs = _meta(obj, old)
    spec = _d(obj.get("spec"))
    errs.extend(validate_nonnegative(spec.get("replicas"), "spec.replicas"))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    sel = spec.get("selector")
    if not sel:
        errs.append(required("spec.selector", ""))
    else:
        errs.extend(validate_labels(sel, "spec.selector"))
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        errs.append(required("spec.template", ""))
        return errs
    selector = from_set(sel if isinstance(sel, dict) else {})
    labels = _d(_d(tmpl.get("metadata")).get("labels"))
    if sel and not selector.matches(labels):
        errs.append(
            invalid(
                "spec.template.metadata.labels",
                go_string_map(labels),
                "`selector` does not match template `labels`",
            )
        )
    errs.extend(validate_pod_template(tmpl, "spec.template"))
    errs.extend(_always_template(spec, "ReplicationController"))
    return errs


# --------------------------------------------------------------------------- Job

JOB_LABELS = (
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "controller-uid",
    "job-name",
)


def _job_spec(spec: dict[str, Any], path: str, *, need_selector: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ):
        errs.extend(validate_nonnegative(spec.get(key), f"{path}.{key}"))
    mode = spec.get("completionMode") or "NonIndexed"
    if mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"], keep_order=True))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    sel = spec.get("selector")
    if sel is None:
        if need_selector:
            errs.append(required(f"{path}.selector", ""))
    else:
        errs.extend(validate_label_selector(sel, f"{path}.selector"))
    tmpl = _d(spec.get("template"))
    if sel is not None:
        try:
            errs.extend(_template_matches(tmpl, from_label_selector(sel), f"{path}.template"))
        except (SelectorError, ValueError):
            errs.append(invalid(f"{path}.selector", go_label_selector(sel), "invalid label selector"))
    errs.extend(validate_pod_template(tmpl, f"{path}.template"))
    rp = _d(tmpl.get("spec")).get("restartPolicy")
    if rp not in ("OnFailure", "Never"):
        if not rp:
            errs.append(required(f"{path}.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
        else:
            errs.append(
                not_supported(
                    f"{path}.template.spec.restartPolicy", rp, ["OnFailure", "Never"], keep_order=True
                )
            )
    return errs


def validate_job(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateJob` / `ValidateJobUpdate` (the selector is generated before validation, see
    `generate_job_selector`)."""
    errs = _meta(obj, old)
    spec = _d(obj.get("spec"))
    manual = spec.get("manualSelector") is True
    errs.extend(_job_spec(spec, "spec", need_selector=True))
    if not manual and old is None:
        labels = _d(_d(_d(spec.get("template")).get("metadata")).get("labels"))
        uid = _d(obj.get("metadata")).get("uid")
        if uid and labels.get("batch.kubernetes.io/controller-uid") not in (None, uid):
            errs.append(
                invalid(
                    "spec.template.metadata.labels", go_string_map(labels), "`selector` not auto-generated"
                )
            )
    if old is not None:
        old_spec = _d(old.get("spec"))
        for key in ("selector", "completionMode"):
            if spec.get(key) != old_spec.get(key):
                shown = go_label_selector(spec.get(key)) if key == "selector" else spec.get(key)
                errs.append(invalid(f"spec.{key}", shown, FIELD_IMMUTABLE_MSG))
        if spec.get("completions") != old_spec.get("completions") and not (
            spec.get("completionMode") == "Indexed" and spec.get("completions") == spec.get("parallelism")
        ):
            errs.append(invalid("spec.completions", spec.get("completions"), FIELD_IMMUTABLE_MSG))
        if spec.get("template") != old_spec.get("template") and not old_spec.get("suspend"):
            errs.append(invalid("spec.template", GoValue("core.PodTemplateSpec{...}"), FIELD_IMMUTABLE_MSG))
    return errs


def generate_job_selector(job: dict[str, Any]) -> None:
    """`generateSelector`: unless `manualSelector`, label the template with the Job's uid and name and
    select on the uid (what the Job strategy does before validating a create)."""
    spec = job.get("spec")
    meta = _d(job.get("metadata"))
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    tmpl = (
        spec.setdefault("template", {})
        if isinstance(spec.get("template"), dict) or spec.get("template") is None
        else spec["template"]
    )
    if not isinstance(tmpl, dict):
        return
    tmeta = tmpl.setdefault("metadata", {})
    if not isinstance(tmeta, dict):
        return
    labels = tmeta.setdefault("labels", {})
    if not isinstance(labels, dict):
        return
    for key, value in (
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ):
        labels.setdefault(key, value)
    if spec.get("selector") is None:
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}


# --------------------------------------------------------------------------- CronJob

CRONJOB_NAME_MAX = 52


def validate_cronjob(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateCronJobCreate` / `ValidateCronJobUpdate`."""
    errs = _meta(obj, old, CRONJOB_NAME_MAX)
    spec = _d(obj.get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule", ""))
    else:
        text = str(schedule)
        if "TZ" in text:
            errs.append(
                invalid(
                    "spec.schedule", text, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
                )
            )
        else:
            errs.extend(invalid("spec.schedule", text, m) for m in cron_errors(text))
    tz = spec.get("timeZone")
    if tz is not None:
        errs.extend(_time_zone_errors(str(tz)))
    errs.extend(validate_nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds"))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        errs.append(required("spec.concurrencyPolicy", ""))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.append(
            not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"], keep_order=True)
        )
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs.extend(validate_nonnegative(spec.get(key), f"spec.{key}"))
    jt = _d(spec.get("jobTemplate"))
    jmeta = _d(jt.get("metadata"))
    errs.extend(validate_labels(jmeta.get("labels"), "spec.jobTemplate.metadata.labels"))
    jspec = _d(jt.get("spec"))
    if jspec.get("manualSelector") is True:
        errs.append(
            invalid(
                "spec.jobTemplate.spec.manualSelector", True, "`manualSelector` not supported for CronJob"
            )
        )
    errs.extend(_job_spec(jspec, "spec.jobTemplate.spec", need_selector=False))
    return errs


def _time_zone_errors(tz: str) -> list[FieldError]:
    import zoneinfo

    if tz == "" or tz.lower() == "local":
        return [
            invalid(
                "spec.timeZone",
                tz,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        ]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid("spec.timeZone", tz, f"unknown time zone {tz}")]
    return []
