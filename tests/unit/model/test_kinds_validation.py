"""Defaulting and validation of Secret, ServiceAccount, RBAC, DaemonSet, StatefulSet, Job, CronJob,
ReplicationController, PDB, HPA, APIService and CRD: cases ported from Kubernetes'
pkg/apis/{core,apps,batch,rbac,policy,autoscaling}/validation tests, with Kubernetes' texts."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

import pytest

from podnet.model.cron import CronError, parse
from podnet.model.defaults import apply_defaults
from podnet.model.validation import validate

Obj = dict[str, Any]


def texts(obj: Obj, old: Obj | None = None) -> list[str]:
    return [e.error() for e in validate(obj, old)]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def template(labels: dict[str, str] | None = None, restart: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if restart:
        spec["restartPolicy"] = restart
    return {"metadata": {"labels": labels or {"app": "x"}}, "spec": spec}


def workload(kind: str, api: str = "apps/v1", **spec: Any) -> Obj:
    obj: Obj = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template(), **spec},
    }
    return apply_defaults(obj)


# --------------------------------------------------------------------------- Secret


def secret(stype: str = "", data: dict[str, str] | None = None, **extra: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": data if data is not None else {"a": b64("b")},
        **extra,
    }
    if stype:
        obj["type"] = stype
    return apply_defaults(obj)


def test_secret_defaults_to_opaque_and_is_valid() -> None:
    s = secret()
    assert s["type"] == "Opaque"
    assert texts(s) == []


def test_secret_key_rules() -> None:
    s = secret(data={"a*b": b64("x"), "..dots": b64("y")})
    assert texts(s) == [
        "data[a*b]: Invalid value: \"a*b\": a valid config key must consist of alphanumeric characters, '-', "
        "'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')",
        "data[..dots]: Invalid value: \"..dots\": must not start with '..'",
    ]


def test_secret_too_big() -> None:
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    assert texts(secret(data={"big": big})) == ["data: Too long: must have at most 1048576 bytes"]


@pytest.mark.parametrize(
    ("stype", "data", "want"),
    [
        (
            "kubernetes.io/service-account-token",
            {},
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
        ("kubernetes.io/dockercfg", {}, ["data[.dockercfg]: Required value"]),
        ("kubernetes.io/dockerconfigjson", {}, ["data[.dockerconfigjson]: Required value"]),
        (
            "kubernetes.io/basic-auth",
            {},
            ["data[username]: Required value", "data[password]: Required value"],
        ),
        ("kubernetes.io/basic-auth", {"username": b64("")}, []),
        ("kubernetes.io/ssh-auth", {}, ["data[ssh-privatekey]: Required value"]),
        ("kubernetes.io/tls", {"tls.crt": b64("c")}, ["data[tls.key]: Required value"]),
        ("kubernetes.io/tls", {"tls.crt": b64("c"), "tls.key": b64("k")}, []),
        ("example.com/custom", {}, []),
    ],
)
def test_secret_types(stype: str, data: dict[str, str], want: list[str]) -> None:
    assert texts(secret(stype, data)) == want


def test_bad_docker_config_is_redacted() -> None:
    errs = texts(secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b64("{not json hunter2")}))
    assert len(errs) == 1
    assert errs[0].startswith('data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": ')
    assert "hunter2" not in errs[0]


def test_immutable_secret_and_configmap() -> None:
    old = secret(immutable=True)
    new = copy.deepcopy(old)
    new["data"]["a"] = b64("changed")
    new["immutable"] = False
    assert texts(new, old) == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/tls"
    assert 'type: Invalid value: "kubernetes.io/tls": field is immutable' in texts(new, old)
    mutable = secret()
    changed = copy.deepcopy(mutable)
    changed["data"]["a"] = b64("other")
    assert texts(changed, mutable) == []


# --------------------------------------------------------------------------- RBAC


def rbac(kind: str, **body: Any) -> Obj:
    namespaced = kind in ("Role", "RoleBinding")
    meta: Obj = {"name": "r", **({"namespace": "default"} if namespaced else {})}
    return apply_defaults(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, **body}
    )


def test_role_rules() -> None:
    assert texts(rbac("Role", rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])) == []
    assert texts(rbac("Role", rules=[{}])) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[0].resources: Required value: resource rules must supply at least one resource",
    ]
    assert texts(rbac("Role", rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}])) == [
        "rules[0].nonResourceURLs: Invalid value: [/healthz]: namespaced rules cannot apply to "
        "non-resource URLs"
    ]
    assert texts(rbac("ClusterRole", rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}])) == []
    assert texts(
        rbac("ClusterRole", rules=[{"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}])
    ) == [
        "rules[0].nonResourceURLs: Invalid value: [/x]: rules cannot apply to both regular resources and "
        "non-resource URLs"
    ]


def test_rbac_names_are_path_segments() -> None:
    obj = rbac("ClusterRole", rules=[])
    obj["metadata"]["name"] = "system:a/b"
    assert texts(obj) == ["metadata.name: Invalid value: \"system:a/b\": may not contain '/'"]


def test_role_binding() -> None:
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
    good = rbac(
        "RoleBinding",
        roleRef=ref,
        subjects=[{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}],
    )
    assert good["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"
    assert texts(good) == []
    bad = rbac(
        "RoleBinding",
        roleRef={"apiGroup": "x", "kind": "Pod", "name": ""},
        subjects=[{"kind": "Robot", "name": "r"}, {"kind": "ServiceAccount", "apiGroup": "x"}],
    )
    assert texts(bad) == [
        'roleRef.apiGroup: Unsupported value: "x": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Pod": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        "subjects[1].name: Required value",
        'subjects[1].apiGroup: Unsupported value: "x": supported values: ""',
    ]
    crb = rbac(
        "ClusterRoleBinding",
        roleRef={**ref, "kind": "Role"},
        subjects=[{"kind": "ServiceAccount", "name": "sa"}],
    )
    assert texts(crb) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
    ]
    changed = copy.deepcopy(good)
    changed["roleRef"]["name"] = "other"
    assert texts(changed, good) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
        'Kind:"Role", Name:"other"}: cannot change roleRef'
    ]


# --------------------------------------------------------------------------- workloads


def test_daemonset_defaults_and_rules() -> None:
    ds = workload("DaemonSet")
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert texts(ds) == []
    ds["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert texts(ds) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
        "`maxSurge` is 0",
    ]
    ds = workload("DaemonSet", selector={})
    assert (
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"
        in texts(ds)
    )


def test_statefulset_defaults_and_update_rules() -> None:
    sts = workload("StatefulSet", serviceName="web")
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert texts(sts) == []
    bad = copy.deepcopy(sts)
    bad["spec"]["podManagementPolicy"] = "Random"
    assert texts(bad) == [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"
    ]
    new = copy.deepcopy(sts)
    new["spec"]["replicas"] = 5
    assert texts(new, sts) == []
    new["spec"]["serviceName"] = "other"
    assert texts(new, sts) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    ]


def test_replication_controller_selector_from_template() -> None:
    rc = apply_defaults(
        {
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "rc", "namespace": "default"},
            "spec": {"template": template({"app": "rc"})},
        }
    )
    assert rc["spec"]["selector"] == {"app": "rc"}
    assert rc["metadata"]["labels"] == {"app": "rc"}
    assert rc["spec"]["replicas"] == 1
    assert texts(rc) == []
    rc["spec"]["selector"] = {"app": "other"}
    assert texts(rc) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"rc"}: '
        "`selector` does not match template `labels`"
    ]


def job(**spec: Any) -> Obj:
    return apply_defaults(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "pi", "namespace": "d"},
            "spec": {"template": template(restart="Never"), **spec},
        }
    )


def test_job_defaults() -> None:
    j = job()
    assert {
        k: j["spec"][k]
        for k in (
            "completions",
            "parallelism",
            "backoffLimit",
            "completionMode",
            "suspend",
            "podReplacementPolicy",
        )
    } == {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
    }
    j = job(parallelism=3)
    assert "completions" not in j["spec"] and j["spec"]["parallelism"] == 3


def test_job_rules() -> None:
    j = job(
        selector={"matchLabels": {"app": "x"}}, backoffLimit=-1, completionMode="Indexed", completions=None
    )
    j["spec"].pop("completions")
    j["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert texts(j) == [
        "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
        "spec.completions: Required value: when completion mode is Indexed",
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
        '"OnFailure", "Never"',
    ]


def test_job_without_selector_is_required_until_generated() -> None:
    assert texts(job()) == ["spec.selector: Required value"]


def test_cronjob_rules() -> None:
    cj = apply_defaults(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "c" * 53, "namespace": "d"},
            "spec": {
                "schedule": "61 * * * *",
                "concurrencyPolicy": "Sometimes",
                "jobTemplate": {"spec": {"template": template(restart="OnFailure")}},
            },
        }
    )
    assert cj["spec"]["successfulJobsHistoryLimit"] == 3 and cj["spec"]["failedJobsHistoryLimit"] == 1
    assert texts(cj) == [
        f'metadata.name: Invalid value: "{"c" * 53}": must be no more than 52 characters',
        'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
        'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", '
        '"Forbid", "Replace"',
    ]
    cj["metadata"]["name"] = "ok"
    cj["spec"].update(schedule="TZ=UTC 0 * * * *", concurrencyPolicy="Forbid")
    assert texts(cj) == [
        'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
        "use timeZone field instead"
    ]
    cj["spec"].update(schedule="@hourly", timeZone="Mars/Olympus")
    assert texts(cj) == ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']


def test_cron_parser() -> None:
    with pytest.raises(CronError, match=r"^expected exactly 5 fields, found 1: \[hello\]$"):
        parse("hello")
    with pytest.raises(CronError, match=r"^unrecognized descriptor: @sometimes$"):
        parse("@sometimes")
    s = parse("*/15 9-17 * * mon-fri")
    start = dt.datetime(2026, 12, 5, 17, 50, tzinfo=dt.UTC)  # a Saturday
    assert s.next(start) == dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    assert parse("@daily").next(start) == dt.datetime(2026, 12, 6, 0, 0, tzinfo=dt.UTC)
    assert parse("0 0 1,15 * 1").next(start) == dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)  # dom OR dow


# --------------------------------------------------------------------------- policy, autoscaling, extensions


def test_pdb() -> None:
    pdb = apply_defaults(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"minAvailable": "120%", "maxUnavailable": 1},
        }
    )
    assert texts(pdb) == [
        "spec: Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and maxUnavailable cannot be "
        "both set",
        "spec.minAvailable: Invalid value: 120%: must not be greater than 100%",
    ]


def test_hpa() -> None:
    hpa = apply_defaults(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "d"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 3,
                "maxReplicas": 2,
            },
        }
    )
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 80,
    }
    assert texts(hpa) == [
        "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
    ]


def crd(**spec: Any) -> Obj:
    body = {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
        ],
        **spec,
    }
    return apply_defaults(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": body,
        }
    )


def test_crd() -> None:
    c = crd()
    assert c["spec"]["names"]["singular"] == "crontab" and c["spec"]["names"]["listKind"] == "CronTabList"
    assert texts(c) == []
    bad = crd(group="example", scope="Global")
    assert texts(bad) == [
        'metadata.name: Invalid value: "crontabs.stable.example.com": must be '
        'spec.names.plural+"."+spec.group',
        'spec.group: Invalid value: "example": should be a domain with at least one dot',
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
    ]


def test_apiservice() -> None:
    svc = apply_defaults(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"namespace": "kube-system", "name": "metrics-server"},
            },
        }
    )
    assert texts(svc) == []
    svc["metadata"]["name"] = "v1.metrics.k8s.io"
    assert texts(svc) == [
        'metadata.name: Invalid value: "v1.metrics.k8s.io": must be `spec.version+"."+spec.group`'
    ]
