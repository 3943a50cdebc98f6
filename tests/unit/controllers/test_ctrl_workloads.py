"""Job, CronJob, DaemonSet, StatefulSet, ReplicationController and ServiceAccount reconcile functions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from _ctrl_factories import NOW, node, pod, ts

from podnet.controllers.cronjob import reconcile_cronjob
from podnet.controllers.daemonset import HASH_LABEL, reconcile_daemonset, template_hash
from podnet.controllers.job import reconcile_job
from podnet.controllers.serviceaccounts import reconcile_namespace
from podnet.controllers.statefulset import reconcile_statefulset, revision
from podnet.controllers.workloads import reconcile_replication_controller
from podnet.model.kinds import Obj


def verbs(actions: list[Any]) -> list[tuple[str, str]]:
    return [(a.verb, a.rt.plural) for a in actions]


def template(labels: dict[str, str], restart: str = "Always") -> Obj:
    return {
        "metadata": {"labels": labels},
        "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]},
    }


# --------------------------------------------------------------------------- Job


def job(**spec: Any) -> Obj:
    labels = {"batch.kubernetes.io/controller-uid": "job-uid", "job-name": "pi"}
    body = {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}},
        "template": template(labels, "Never"),
        **spec,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "job-uid", "creationTimestamp": ts(60)},
        "spec": body,
        "status": {},
    }


def job_pod(j: Obj, name: str, phase: str = "Running", **kw: Any) -> Obj:
    return pod(name, labels=dict(j["spec"]["template"]["metadata"]["labels"]), owner=j, phase=phase, **kw)


def test_job_creates_pods_up_to_parallelism_and_completes() -> None:
    j = job(completions=3, parallelism=2)
    actions, _ = reconcile_job(j, [], NOW)
    creates = [a for a in actions if a.verb == "create"]
    assert len(creates) == 2
    assert creates[0].obj["metadata"]["generateName"] == "pi-"
    assert creates[0].obj["metadata"]["ownerReferences"][0]["uid"] == "job-uid"
    status = next(a for a in actions if a.verb == "update_status").obj["status"]
    assert status["startTime"] == ts(0)
    j["status"] = {"startTime": ts(30)}
    done = [job_pod(j, f"pi-{i}", "Succeeded") for i in range(3)]
    actions, _ = reconcile_job(j, done, NOW)
    status = next(a for a in actions if a.verb == "update_status").obj["status"]
    assert status["succeeded"] == 3 and "active" not in status
    conds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conds["Complete"] == ("True", "CompletionsReached")
    assert status["completionTime"] == ts(0)


def test_job_fails_after_backoff_limit() -> None:
    j = job(backoffLimit=1)
    j["status"] = {"startTime": ts(100)}
    failed = [job_pod(j, "pi-a", "Failed", created_ago=90), job_pod(j, "pi-b", "Failed", created_ago=50)]
    actions, _ = reconcile_job(j, failed, NOW)
    status = next(a for a in actions if a.verb == "update_status").obj["status"]
    failed_cond = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed_cond["reason"], failed_cond["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert status["failed"] == 2
    assert not [a for a in actions if a.verb == "create"]


def test_job_retries_after_backoff_delay() -> None:
    j = job(backoffLimit=3)
    j["status"] = {"startTime": ts(100)}
    one_failed = [job_pod(j, "pi-a", "Failed", created_ago=3)]
    actions, requeue = reconcile_job(j, one_failed, NOW)
    assert not [a for a in actions if a.verb == "create"]
    assert requeue is not None and 6 < requeue <= 7  # the first retry waits 10s
    actions, _ = reconcile_job(j, one_failed, NOW + dt.timedelta(seconds=8))
    assert [a.verb for a in actions if a.verb == "create"] == ["create"]


def test_finished_job_is_deleted_after_its_ttl() -> None:
    j = job(ttlSecondsAfterFinished=30)
    j["status"] = {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": ts(10)}]}
    actions, requeue = reconcile_job(j, [], NOW)
    assert actions == [] and requeue == 20
    actions, _ = reconcile_job(j, [], NOW + dt.timedelta(seconds=21))
    assert verbs(actions) == [("delete", "jobs")]


def test_indexed_job_names_and_index_env() -> None:
    j = job(completions=2, parallelism=2, completionMode="Indexed")
    actions, _ = reconcile_job(j, [], NOW)
    pods = [a.obj for a in actions if a.verb == "create"]
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods] == [
        "0",
        "1",
    ]
    assert pods[1]["spec"]["hostname"] == "pi-1"


# --------------------------------------------------------------------------- DaemonSet


def daemonset(**spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": template({"app": "agent"}),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            **spec,
        },
        "status": {},
    }


def test_daemonset_one_pod_per_node_with_daemon_tolerations() -> None:
    ds = daemonset()
    nodes = [node("n1"), node("n2"), node("n3", taints=[{"key": "dedicated", "effect": "NoSchedule"}])]
    actions = reconcile_daemonset(ds, [], nodes, NOW)
    creates = [a.obj for a in actions if a.verb == "create"]
    assert sorted(p["spec"]["nodeName"] for p in creates) == ["n1", "n2"]
    tol = {(t["key"], t["effect"]) for t in creates[0]["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tol
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tol
    term = creates[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchFields"][0]["key"] == "metadata.name"
    status = next(a for a in actions if a.verb == "update_status").obj["status"]
    assert status["desiredNumberScheduled"] == 2


def test_daemonset_new_node_gets_a_pod_and_unfit_node_loses_it() -> None:
    ds = daemonset()
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"role": "edge"}
    rev = template_hash(ds)
    running = pod("agent-a", node="n1", labels={"app": "agent", HASH_LABEL: rev}, owner=ds)
    actions = reconcile_daemonset(ds, [running], [node("n1"), node("n2", labels={"role": "edge"})], NOW)
    assert ("delete", "pods") in verbs(actions)
    assert [a.obj["spec"]["nodeName"] for a in actions if a.verb == "create"] == ["n2"]


def test_daemonset_rolls_out_one_node_at_a_time() -> None:
    ds = daemonset()
    old = [
        pod(f"agent-{n}", node=n, labels={"app": "agent", HASH_LABEL: "old"}, owner=ds) for n in ("n1", "n2")
    ]
    actions = reconcile_daemonset(ds, old, [node("n1"), node("n2")], NOW)
    assert verbs(actions).count(("delete", "pods")) == 1


# --------------------------------------------------------------------------- StatefulSet


def statefulset(replicas: int = 3, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "sts-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": "web"}},
            "template": template({"app": "web"}),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            **spec,
        },
        "status": {},
    }


def sts_pod(sts: Obj, i: int, ready: bool = True, **kw: Any) -> Obj:
    return pod(
        f"web-{i}",
        labels={"app": "web", "controller-revision-hash": revision(sts)},
        owner=sts,
        ready=ready,
        **kw,
    )


def test_statefulset_starts_in_order_with_stable_names_and_dns_identity() -> None:
    sts = statefulset()
    actions = reconcile_statefulset(sts, [], NOW)
    creates = [a.obj for a in actions if a.verb == "create"]
    assert [p["metadata"]["name"] for p in creates] == ["web-0"]
    assert creates[0]["spec"]["hostname"] == "web-0" and creates[0]["spec"]["subdomain"] == "web"
    assert creates[0]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
    # web-1 waits until web-0 is Running and Ready
    assert not [
        a for a in reconcile_statefulset(sts, [sts_pod(sts, 0, ready=False)], NOW) if a.verb == "create"
    ]
    actions = reconcile_statefulset(sts, [sts_pod(sts, 0)], NOW)
    assert [a.obj["metadata"]["name"] for a in actions if a.verb == "create"] == ["web-1"]


def test_statefulset_parallel_and_scale_down_from_the_top() -> None:
    sts = statefulset(podManagementPolicy="Parallel")
    actions = reconcile_statefulset(sts, [], NOW)
    assert [a.obj["metadata"]["name"] for a in actions if a.verb == "create"] == ["web-0", "web-1", "web-2"]
    sts = statefulset(replicas=1)
    pods = [sts_pod(sts, i) for i in range(3)]
    actions = reconcile_statefulset(sts, pods, NOW)
    assert [a.obj["metadata"]["name"] for a in actions if a.verb == "delete"] == ["web-2"]


# --------------------------------------------------------------------------- CronJob


def cronjob(**spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid", "creationTimestamp": ts(150)},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Allow",
            "suspend": False,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": template({"a": "b"}, "OnFailure")}},
            **spec,
        },
        "status": {},
    }


def cj_job(cj: Obj, name: str, outcome: str | None, created_ago: float) -> Obj:
    status: dict[str, Any] = {}
    if outcome:
        status["conditions"] = [
            {"type": outcome, "status": "True", "lastTransitionTime": ts(created_ago - 5)}
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "creationTimestamp": ts(created_ago),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "tick",
                    "uid": "cj-uid",
                    "controller": True,
                }
            ],
        },
        "spec": {},
        "status": status,
    }


def test_cronjob_creates_the_job_for_the_latest_missed_time() -> None:
    cj = cronjob()
    actions, requeue = reconcile_cronjob(cj, [], NOW)
    created = [a.obj for a in actions if a.verb == "create"]
    assert [j["metadata"]["name"] for j in created] == [f"tick-{int(NOW.timestamp() // 60)}"]
    assert created[0]["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert requeue == 60
    status = next(a for a in actions if a.verb == "update_status").obj["status"]
    assert status["lastScheduleTime"] == ts(0)


def test_cronjob_forbid_skips_while_one_runs_and_history_is_trimmed() -> None:
    cj = cronjob(concurrencyPolicy="Forbid")
    running = cj_job(cj, "tick-1", None, 30)
    actions, _ = reconcile_cronjob(cj, [running], NOW)
    assert not [a for a in actions if a.verb == "create"]
    old_done = [cj_job(cj, f"tick-old{i}", "Complete", 500 - i) for i in range(3)]
    cj = cronjob(suspend=True)
    actions, _ = reconcile_cronjob(cj, old_done, NOW)
    assert sorted(a.obj["metadata"]["name"] for a in actions if a.verb == "delete") == [
        "tick-old0",
        "tick-old1",
    ]


# --------------------------------------------------------------------------- RC, ServiceAccount


def test_replication_controller_keeps_replicas() -> None:
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "rc", "namespace": "default", "uid": "rc-uid", "generation": 1},
        "spec": {"replicas": 2, "selector": {"app": "rc"}, "template": template({"app": "rc"})},
        "status": {},
    }
    actions = reconcile_replication_controller(rc, [])
    assert verbs(actions) == [
        ("create", "pods"),
        ("create", "pods"),
        ("update_status", "replicationcontrollers"),
    ]
    assert actions[0].obj["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    assert actions[-1].obj["spec"]["selector"] == {"app": "rc"}


def test_namespace_gets_default_service_account_and_root_ca() -> None:
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team"},
        "status": {"phase": "Active"},
    }
    actions = reconcile_namespace(ns, [], [], "PEM")
    assert [(a.verb, a.rt.plural, a.name) for a in actions] == [
        ("create", "serviceaccounts", "default"),
        ("create", "configmaps", "kube-root-ca.crt"),
    ]
    assert actions[1].obj["data"] == {"ca.crt": "PEM"}
    sa = {"metadata": {"name": "default", "namespace": "team"}}
    cm = {"metadata": {"name": "kube-root-ca.crt", "namespace": "team"}, "data": {"ca.crt": "OLD"}}
    actions = reconcile_namespace(ns, [sa], [cm], "PEM")
    assert [(a.verb, a.obj["data"]) for a in actions] == [("update", {"ca.crt": "PEM"})]
