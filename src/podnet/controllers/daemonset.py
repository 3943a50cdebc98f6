"""DaemonSet controller: one pod of the template on every node it fits (nodeSelector, required node
affinity, taints against the template's tolerations plus those the DaemonSet controller adds), a
new node gets its pod, a node that stops fitting loses it, and a changed template rolls out node by
node (RollingUpdate: at most `maxUnavailable` old pods down at a time; OnDelete: only pods the user
deletes are replaced). Pods are bound to their node (spec.nodeName) and carry a node-affinity term
for it, as the controller writes them.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action, delete_action
from podnet.controllers.events import make_event
from podnet.controllers.scheduler import filter_reason
from podnet.controllers.template_hash import compute_hash
from podnet.controllers.timeutil import utcnow
from podnet.model.kinds import DAEMONSETS, PODS, Obj
from podnet.model.selectors import SelectorError, from_label_selector

COMPONENT = "daemonset-controller"
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"

DAEMON_TOLERATIONS: tuple[dict[str, Any], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
"""What the DaemonSet controller adds to every daemon pod (`util.AddOrUpdateDaemonPodTolerations`)."""
HOST_NETWORK_TOLERATION = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def daemon_tolerations(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    tols = [t for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]
    extra = list(DAEMON_TOLERATIONS) + ([HOST_NETWORK_TOLERATION] if pod_spec.get("hostNetwork") else [])
    for t in extra:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    return tols


def template_hash(ds: Obj) -> str:
    return compute_hash((ds.get("spec") or {}).get("template") or {})


def new_pod(ds: Obj, node: str, revision: str) -> Obj:
    tmpl = (ds.get("spec") or {}).get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels[HASH_LABEL] = revision
    labels[GENERATION_LABEL] = str(objects.meta(ds).get("generation") or 1)
    meta: dict[str, Any] = {
        "generateName": f"{objects.name(ds)}-",
        "namespace": objects.namespace(ds),
        "labels": labels,
        "ownerReferences": [objects.owner_ref_to(ds)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    spec = copy.deepcopy(tmpl.get("spec") or {})
    spec["tolerations"] = daemon_tolerations(spec)
    affinity = (
        spec.setdefault("affinity", {})
        if isinstance(spec.get("affinity"), dict) or spec.get("affinity") is None
        else {}
    )
    affinity["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        }
    }
    spec["affinity"] = affinity
    spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def node_fits(ds: Obj, node: Obj) -> bool:
    """Would a daemon pod of ds run on node (`NodeShouldRunDaemonPod`)?"""
    tmpl = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    spec = tmpl.setdefault("spec", {})
    spec["tolerations"] = daemon_tolerations(spec)
    return filter_reason(tmpl, node) is None


def _max_unavailable(ds: Obj, desired: int) -> int:
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = ru.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        try:
            return max(1, math.ceil(desired * int(value[:-1]) / 100))
        except ValueError:
            return 1
    return max(1, int(value)) if isinstance(value, int) else 1


def reconcile_daemonset(
    ds: Obj, pods: list[Obj], nodes: list[Obj], now: dt.datetime | None = None
) -> list[Action]:
    now = now or utcnow()
    if objects.is_deleting(ds):
        return []
    spec = ds.get("spec") or {}
    try:
        sel = from_label_selector(spec.get("selector"))
    except SelectorError:
        return []
    ns = objects.namespace(ds)
    mine = [
        p
        for p in pods
        if objects.namespace(p) == ns
        and (objects.controller_ref(p) or {}).get("uid") == objects.uid(ds)
        and sel.matches(objects.labels(p))
    ]
    revision = template_hash(ds)
    by_node: dict[str, list[Obj]] = {}
    for p in mine:
        by_node.setdefault(objects.node_name(p), []).append(p)
    actions: list[Action] = []
    fits = {objects.name(n): node_fits(ds, n) for n in nodes}
    desired = sum(1 for v in fits.values() if v)
    min_ready = int(spec.get("minReadySeconds") or 0)
    live_on: dict[str, Obj] = {}
    for node, node_pods in sorted(by_node.items()):
        live = [p for p in node_pods if not objects.is_deleting(p)]
        failed = [p for p in live if objects.pod_phase(p) == "Failed"]
        for p in failed:
            ev = make_event(
                ds,
                "FailedDaemonPod",
                f"Found failed daemon pod {ns}/{objects.name(p)} on node {node}, will try to kill it",
                "Warning",
                COMPONENT,
                now,
            )
            actions.append(delete_action(PODS, p, then_event=ev))
        live = [p for p in live if p not in failed]
        if not fits.get(node, False):
            for p in live:
                ev = make_event(
                    ds, "SuccessfulDelete", f"Deleted pod: {objects.name(p)}", component=COMPONENT, now=now
                )
                actions.append(delete_action(PODS, p, then_event=ev))
            continue
        # one pod per node: keep the newest revision, the oldest of it
        live.sort(
            key=lambda p: (objects.labels(p).get(HASH_LABEL) != revision, objects.creation_time(p) or now,
                           objects.name(p))
        )
        for extra in live[1:]:
            actions.append(delete_action(PODS, extra))
        if live:
            live_on[node] = live[0]
    for node, ok in sorted(fits.items()):
        if ok and node not in live_on and not any(objects.is_deleting(p) for p in by_node.get(node, [])):
            ev = make_event(ds, "SuccessfulCreate", "Created pod: {name}", component=COMPONENT, now=now)
            actions.append(Action("create", PODS, new_pod(ds, node, revision), then_event=ev))
    strategy = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
    old = [p for p in live_on.values() if objects.labels(p).get(HASH_LABEL) != revision]
    if strategy == "RollingUpdate" and old:
        unavailable = sum(
            1
            for n, ok in fits.items()
            if ok and (n not in live_on or not objects.pod_is_available(live_on[n], min_ready, now))
        )
        budget = _max_unavailable(ds, desired) - unavailable
        old.sort(key=lambda p: (objects.pod_is_available(p, min_ready, now), objects.name(p)))
        for p in old:
            if budget <= 0 and objects.pod_is_available(p, min_ready, now):
                break
            ev = make_event(ds, "SuccessfulDelete", f"Deleted pod: {objects.name(p)}", component=COMPONENT,
                            now=now)
            actions.append(delete_action(PODS, p, then_event=ev))
            if objects.pod_is_available(p, min_ready, now):
                budget -= 1
    scheduled = [p for n, p in live_on.items() if fits.get(n)]
    status: dict[str, Any] = {
        "currentNumberScheduled": len(scheduled),
        "numberMisscheduled": sum(1 for n in live_on if not fits.get(n)),
        "desiredNumberScheduled": desired,
        "numberReady": sum(1 for p in scheduled if objects.pod_is_ready(p)),
        "updatedNumberScheduled": sum(1 for p in scheduled if objects.labels(p).get(HASH_LABEL) == revision),
        "numberAvailable": sum(1 for p in scheduled if objects.pod_is_available(p, min_ready, now)),
    }
    unavailable_count = desired - status["numberAvailable"]
    if unavailable_count > 0:
        status["numberUnavailable"] = unavailable_count
    if objects.meta(ds).get("generation") is not None:
        status["observedGeneration"] = objects.meta(ds)["generation"]
    if (ds.get("status") or {}).get("collisionCount") is not None:
        status["collisionCount"] = ds["status"]["collisionCount"]
    if status != (ds.get("status") or {}):
        new = copy.deepcopy(ds)
        new["status"] = status
        actions.append(Action("update_status", DAEMONSETS, new))
    return actions
