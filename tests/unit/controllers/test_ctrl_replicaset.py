"""ReplicaSet reconcile."""

from __future__ import annotations

from typing import Any

from _ctrl_factories import NOW, pod

from podnet.controllers.replicaset import deletion_order, reconcile_replicaset
from podnet.model.kinds import Obj


def rs(replicas: int = 3, status: dict[str, Any] | None = None, generation: int = 1) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-7c5d", "namespace": "default", "uid": "rs-uid",
                         "generation": generation, "resourceVersion": "10"},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7c5d"}},
                     "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "7c5d"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": status or {}}


LABELS = {"app": "web", "pod-template-hash": "7c5d"}


def test_creates_missing_pods_from_template_with_owner_and_events() -> None:
    owner = rs(3)
    actions = reconcile_replicaset(owner, [pod("web-7c5d-aaaaa", labels=LABELS, owner=owner)], NOW)
    creates = [a for a in actions if a.verb == "create"]
    assert len(creates) == 2
    p = creates[0].obj
    assert p["metadata"]["generateName"] == "web-7c5d-"
    assert p["metadata"]["labels"] == LABELS
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": "web-7c5d", "uid": "rs-uid", "controller": True,
                                                 "blockOwnerDeletion": True}]
    assert p["spec"] == {"containers": [{"name": "c", "image": "nginx"}]}
    assert creates[0].then_event is not None
    assert creates[0].then_event["reason"] == "SuccessfulCreate"
    assert creates[0].then_event["message"] == "Created pod: {name}"
    [st] = [a for a in actions if a.verb == "update_status"]
    assert st.obj["status"] == {"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1,
                                "availableReplicas": 1, "observedGeneration": 1}


def test_deletes_least_valuable_pods_first() -> None:
    owner = rs(2)
    pods = [pod("old-ready", labels=LABELS, owner=owner, created_ago=500, ready_ago=400),
            pod("unscheduled", labels=LABELS, owner=owner, node="", ready=False, phase="Pending"),
            pod("not-ready", labels=LABELS, owner=owner, ready=False),
            pod("new-ready", labels=LABELS, owner=owner, created_ago=10, ready_ago=5)]
    actions = reconcile_replicaset(owner, pods, NOW)
    deletes = [a.obj["metadata"]["name"] for a in actions if a.verb == "delete"]
    assert deletes == ["unscheduled", "not-ready"]
    assert {a.then_event["message"] for a in actions if a.verb == "delete" and a.then_event} == {
        "Deleted pod: unscheduled", "Deleted pod: not-ready"}


def test_deletion_order_newer_ready_before_older() -> None:
    a = pod("a", created_ago=500, ready_ago=400)
    b = pod("b", created_ago=20, ready_ago=10)
    c = pod("c", created_ago=20, ready_ago=10, restarts=3)
    assert [p["metadata"]["name"] for p in deletion_order([a, b, c], NOW)] == ["c", "b", "a"]


def test_adopts_orphans_and_ignores_others() -> None:
    owner = rs(2)
    orphan = pod("orphan", labels=LABELS)
    someone_elses = pod("theirs", labels=LABELS)
    someone_elses["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                    "name": "x", "uid": "other", "controller": True}]
    actions = reconcile_replicaset(owner, [orphan, someone_elses], NOW)
    [adopt] = [a for a in actions if a.verb == "update"]
    assert adopt.obj["metadata"]["name"] == "orphan"
    assert adopt.obj["metadata"]["ownerReferences"][0]["uid"] == "rs-uid"
    assert len([a for a in actions if a.verb == "create"]) == 1  # orphan counts: 2 wanted, 1 new


def test_terminating_and_terminal_pods_do_not_count() -> None:
    owner = rs(2)
    pods = [pod("a", labels=LABELS, owner=owner), pod("gone", labels=LABELS, owner=owner, deleting=True),
            pod("done", labels=LABELS, owner=owner, phase="Failed")]
    actions = reconcile_replicaset(owner, pods, NOW)
    assert [a.verb for a in actions].count("create") == 1


def test_steady_state_no_actions_and_min_ready_seconds() -> None:
    owner = rs(1, status={"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1,
                          "availableReplicas": 1, "observedGeneration": 1})
    assert reconcile_replicaset(owner, [pod("a", labels=LABELS, owner=owner)], NOW) == []
    owner["spec"]["minReadySeconds"] = 60
    [st] = reconcile_replicaset(owner, [pod("a", labels=LABELS, owner=owner, ready_ago=30)], NOW)
    assert st.obj["status"]["availableReplicas"] == 0 and st.obj["status"]["readyReplicas"] == 1


def test_scale_to_zero_and_releases_relabelled_pod() -> None:
    owner = rs(0)
    relabelled = pod("moved", labels={"app": "debug"}, owner=owner)
    actions = reconcile_replicaset(owner, [relabelled, pod("a", labels=LABELS, owner=owner)], NOW)
    verbs = [(a.verb, a.obj["metadata"].get("name")) for a in actions]
    assert ("update", "moved") in verbs and ("delete", "a") in verbs
    release = next(a for a in actions if a.verb == "update")
    assert "ownerReferences" not in release.obj["metadata"]
