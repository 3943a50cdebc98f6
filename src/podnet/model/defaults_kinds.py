"""Defaulting for the workload, identity and policy kinds (pkg/apis/{core,apps,batch,rbac,policy,
autoscaling}/v1*/defaults.go and apiextensions' CRD defaults).

Called through `podnet.model.defaults.apply_defaults`, which owns the dispatch; like it, each
function fills only what is missing and is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podnet.model.defaults import _dict, _dicts, default_pod_spec
from podnet.model.kinds import Obj

RBAC_GROUP = "rbac.authorization.k8s.io"


def _template(spec: dict[str, Any]) -> None:
    default_pod_spec(_dict(_dict(spec, "template"), "spec"))


def default_secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def default_replication_controller(obj: Obj) -> None:
    """`SetDefaults_ReplicationController`: selector and labels from the template's labels."""
    spec = _dict(obj, "spec")
    tmpl = spec.get("template")
    tmeta = tmpl.get("metadata") if isinstance(tmpl, dict) else None
    tlabels = tmeta.get("labels") if isinstance(tmeta, dict) else None
    if isinstance(tlabels, dict) and tlabels:
        if not spec.get("selector"):
            spec["selector"] = dict(tlabels)
        meta = _dict(obj, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(tlabels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if isinstance(tmpl, dict):
        default_pod_spec(_dict(tmpl, "spec"))


def default_daemonset(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template(spec)


def default_statefulset(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("partition") is None:
            ru["partition"] = 0
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    policy = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    for key in ("whenDeleted", "whenScaled"):
        if not policy.get(key):
            policy[key] = "Retain"
    _template(spec)


def default_job_spec(spec: dict[str, Any]) -> None:
    """`SetDefaults_Job` (spec part)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if not spec.get("completionMode"):
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if not spec.get("podReplacementPolicy"):
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    _template(spec)


def default_job(obj: Obj) -> None:
    default_job_spec(_dict(obj, "spec"))


def default_cronjob(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_spec = _dict(_dict(spec, "jobTemplate"), "spec")
    _template(job_spec)


def _default_subjects(obj: Obj) -> None:
    """`SetDefaults_Subject`: User and Group subjects are in the RBAC group."""
    for s in _dicts(obj.get("subjects")):
        if not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = RBAC_GROUP


def default_hpa(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]


def default_crd(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    names = _dict(spec, "names")
    kind = str(names.get("kind") or "")
    if not names.get("singular") and kind:
        names["singular"] = kind.lower()
    if not names.get("listKind") and kind:
        names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}


def default_pdb(obj: Obj) -> None:
    _dict(obj, "spec")


DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("v1", "Secret"): default_secret,
    ("v1", "ReplicationController"): default_replication_controller,
    ("apps/v1", "DaemonSet"): default_daemonset,
    ("apps/v1", "StatefulSet"): default_statefulset,
    ("batch/v1", "Job"): default_job,
    ("batch/v1", "CronJob"): default_cronjob,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _default_subjects,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _default_subjects,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): default_hpa,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): default_crd,
    ("policy/v1", "PodDisruptionBudget"): default_pdb,
}
