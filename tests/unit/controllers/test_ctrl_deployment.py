"""Deployment reconcile, stepped through a rolling update by simulating the ReplicaSet controller."""

from __future__ import annotations

import copy
from typing import Any

from _ctrl_factories import NOW, ts

from podnet.controllers.actions import Action
from podnet.controllers.deployment import (
    REVISION,
    int_or_percent,
    reconcile_deployment,
    surge_and_unavailable,
)
from podnet.controllers.template_hash import HASH_LABEL, compute_hash
from podnet.model.kinds import Obj


def deployment(replicas: int = 4, image: str = "nginx:1", strategy: dict[str, Any] | None = None,
               generation: int = 1) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "dep-uid", "generation": generation,
                         "resourceVersion": "5"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": strategy or {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {}}


def test_fenceposts() -> None:
    assert int_or_percent("25%", 4, True) == 1 and int_or_percent("25%", 3, True) == 1
    assert int_or_percent("25%", 3, False) == 0 and int_or_percent(2, 10, False) == 2
    assert surge_and_unavailable(deployment(4)) == (1, 1)
    d = deployment(3, strategy={"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    assert surge_and_unavailable(d) == (0, 1)


def test_first_sync_creates_replicaset_with_hash_and_revision() -> None:
    d = deployment(4)
    actions = reconcile_deployment(d, [], NOW)
    [create] = [a for a in actions if a.verb == "create"]
    rs = create.obj
    h = compute_hash(d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", HASH_LABEL: h}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["replicas"] == 4
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                    "name": "web", "uid": "dep-uid", "controller": True,
                                                    "blockOwnerDeletion": True}
    assert create.then_event is not None
    assert create.then_event["message"] == f"Scaled up replica set web-{h} from 0 to 4"
    [dep_update] = [a for a in actions if a.verb == "update"]
    assert dep_update.obj["metadata"]["annotations"][REVISION] == "1"
    [st] = [a for a in actions if a.verb == "update_status"]
    prog = next(c for c in st.obj["status"]["conditions"] if c["type"] == "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == (
        "True", "NewReplicaSetCreated", f'Created new replica set "web-{h}"')
    assert all(len(h) >= 8 and set(h) <= set("bcdfghjklmnpqrstvwxz2456789") for h in [h])


class Cluster:
    """Applies the deployment controller's actions and plays the ReplicaSet controller: pods become
    ready and available at once, so each step shows what the rollout does."""

    def __init__(self, dep: Obj):
        self.dep = dep
        self.rss: dict[str, Obj] = {}
        self.rv = 100

    def apply(self, actions: list[Action]) -> None:
        for a in actions:
            self.rv += 1
            obj = copy.deepcopy(a.obj)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            if a.rt.kind == "ReplicaSet":
                if a.verb == "delete":
                    self.rss.pop(obj["metadata"]["name"], None)
                    continue
                obj["metadata"].setdefault("uid", "uid-" + obj["metadata"]["name"])
                obj["metadata"].setdefault("creationTimestamp", ts(1000 - self.rv))
                obj.setdefault("status", {})
                self.rss[obj["metadata"]["name"]] = obj
            elif a.rt.kind == "Deployment":
                if a.verb == "update_status":
                    self.dep["status"] = obj["status"]
                else:
                    self.dep["metadata"] = obj["metadata"]

    def settle_pods(self) -> None:
        for rs in self.rss.values():
            n = rs["spec"]["replicas"]
            rs["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n,
                            "fullyLabeledReplicas": n}

    def step(self) -> list[Action]:
        actions = reconcile_deployment(self.dep, list(self.rss.values()), NOW)
        self.apply(actions)
        return actions

    def sizes(self) -> dict[str, int]:
        return {rev(r): r["spec"]["replicas"] for r in self.rss.values()}


def rev(rs: Obj) -> str:
    return str(rs["metadata"]["annotations"][REVISION])


def test_rolling_update_respects_surge_and_unavailable_until_complete() -> None:
    c = Cluster(deployment(4))
    c.step()
    c.settle_pods()
    c.step()
    st = c.dep["status"]
    assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"]) == (4, 4, 4)
    prog = next(x for x in st["conditions"] if x["type"] == "Progressing")
    assert prog["reason"] == "NewReplicaSetAvailable"
    avail = next(x for x in st["conditions"] if x["type"] == "Available")
    assert (avail["status"], avail["reason"]) == ("True", "MinimumReplicasAvailable")
    assert c.step() == []  # steady state: no writes

    # new template: rollout with maxSurge 1 / maxUnavailable 1
    c.dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    c.dep["metadata"]["generation"] = 2
    history = []
    for _ in range(20):
        c.step()
        total = sum(c.sizes().values())
        # pods still available once the scale-downs just decided take effect
        available = sum(min(r["status"].get("availableReplicas", 0), r["spec"]["replicas"])
                        for r in c.rss.values())
        assert total <= 4 + 1, c.sizes()  # never above replicas + maxSurge
        assert available >= 4 - 1, c.sizes()  # never below replicas - maxUnavailable
        history.append(dict(c.sizes()))
        c.settle_pods()
        if c.sizes() == {"1": 0, "2": 4} and c.dep["status"].get("updatedReplicas") == 4 \
                and c.dep["status"].get("replicas") == 4:
            break
    assert c.sizes() == {"1": 0, "2": 4}, history
    assert history[0] == {"1": 4, "2": 1}  # surge first
    c.step()
    st = c.dep["status"]
    assert st["observedGeneration"] == 2
    assert (st["updatedReplicas"], st["replicas"], st["availableReplicas"]) == (4, 4, 4)
    assert c.dep["metadata"]["annotations"][REVISION] == "2"


def test_rollback_reuses_old_replicaset_with_new_revision() -> None:
    c = Cluster(deployment(2))
    c.step()
    c.settle_pods()
    c.dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    for _ in range(10):
        c.step()
        c.settle_pods()
    c.dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1"
    for _ in range(10):
        c.step()
        c.settle_pods()
    assert len(c.rss) == 2
    assert c.sizes() == {"3": 2, "2": 0}


def test_recreate_scales_old_to_zero_before_new() -> None:
    c = Cluster(deployment(3, strategy={"type": "Recreate"}))
    c.step()
    c.settle_pods()
    c.dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    actions = c.step()
    assert [a.verb for a in actions if a.rt.kind == "ReplicaSet"] == ["update"]
    assert c.sizes() == {"1": 0}
    c.step()  # old pods still reported: wait
    assert len(c.rss) == 1
    c.settle_pods()
    c.step()
    assert c.sizes() == {"1": 0, "2": 3}


def test_scaling_without_template_change() -> None:
    c = Cluster(deployment(2))
    c.step()
    c.settle_pods()
    c.dep["spec"]["replicas"] = 5
    actions = c.step()
    ev = [a.then_event["message"] for a in actions if a.then_event]
    assert c.sizes() == {"1": 5}
    assert ev and ev[0].startswith("Scaled up replica set web-") and ev[0].endswith("from 2 to 5")
    c.dep["spec"]["replicas"] = 1
    c.step()
    assert c.sizes() == {"1": 1}


def test_unavailable_condition_when_pods_not_ready() -> None:
    d = deployment(4)
    c = Cluster(d)
    c.step()
    c.step()
    avail = next(x for x in c.dep["status"]["conditions"] if x["type"] == "Available")
    assert (avail["status"], avail["reason"], avail["message"]) == (
        "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    assert c.dep["status"]["unavailableReplicas"] == 4


def test_adopts_orphan_replicaset() -> None:
    d = deployment(1)
    orphan = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "web-old", "namespace": "default", "uid": "o1", "labels": {"app": "web"},
                           "annotations": {REVISION: "1"}},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": copy.deepcopy(d["spec"]["template"])}, "status": {}}
    actions = reconcile_deployment(d, [orphan], NOW)
    adopt = next(a for a in actions if a.verb == "update" and a.rt.kind == "ReplicaSet")
    assert adopt.obj["metadata"]["ownerReferences"][0]["uid"] == "dep-uid"
    assert not [a for a in actions if a.verb == "create"]  # its template matches: it is the new RS


def test_paused_deployment_does_not_roll_and_says_so() -> None:
    c = Cluster(deployment(2))
    c.step()
    c.settle_pods()
    c.dep["spec"]["paused"] = True
    c.dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    c.step()
    assert c.sizes() == {"1": 2}  # no new ReplicaSet while paused
    prog = next(x for x in c.dep["status"]["conditions"] if x["type"] == "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == ("Unknown", "DeploymentPaused",
                                                                 "Deployment is paused")


def test_max_unavailable_only_rollout_never_exceeds_replicas() -> None:
    c = Cluster(deployment(4, strategy={"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 2}}))
    c.step()
    c.settle_pods()
    c.dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    for _ in range(12):
        c.step()
        assert sum(c.sizes().values()) <= 4, c.sizes()
        c.settle_pods()
    assert c.sizes() == {"1": 0, "2": 4}
