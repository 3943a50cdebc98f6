"""Scheduler: put pods without a node onto Ready, schedulable nodes.

Scoring, like kube-scheduler's default topology spreading over hostnames followed by its
least-allocated preference: fewest pods of the same owner (ReplicaSet, ...) first, so replicas
land on different nodes, then fewest pods overall, then the node name for a stable choice.

Filters, in kube-scheduler's order, each failing node counted under its first reason:
NodeUnschedulable (`spec.unschedulable`), NodeAffinity (`spec.nodeSelector` and
required node affinity `matchExpressions`), TaintToleration (NoSchedule/NoExecute
taints, plus the `not-ready`/`unreachable` taints implied by the node's Ready
condition). Binding goes through `pods/{name}/binding`. A pod that fits nowhere gets
PodScheduled=False/Unschedulable and a FailedScheduling event worded as kube-scheduler
words it: `0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match
Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not
helpful for scheduling.`
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action
from podnet.controllers.events import make_event
from podnet.controllers.timeutil import rfc3339, utcnow
from podnet.model.defaults import DEFAULT_SCHEDULER
from podnet.model.kinds import EVENTS, PODS, Obj

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

R_UNSCHEDULABLE = "node(s) were unschedulable"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"


def wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
            and not objects.is_deleting(pod) and not objects.pod_is_terminal(pod))


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        effect = t.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if not t.get("key") and op == "Exists":
            return True
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def effective_taints(node: Obj) -> list[dict[str, Any]]:
    """The node's taints plus those its Ready condition implies (the node lifecycle controller adds
    them; counting them here keeps pods off a node even before that happened)."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    keys = {(t.get("key"), t.get("effect")) for t in taints}
    ready = objects.node_ready_status(node)
    implied = None
    if ready in ("False", ""):
        implied = NOT_READY_TAINT
    elif ready == "Unknown":
        implied = UNREACHABLE_TAINT
    if implied and (implied, "NoSchedule") not in keys and (implied, "NoExecute") not in keys:
        taints.append({"key": implied, "effect": "NoSchedule"})
    return taints


def _expr_matches(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op = expr.get("key"), expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    have = labels.get(str(key))
    if op == "In":
        return have is not None and have in values
    if op == "NotIn":
        return have is None or have not in values
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and values:
        try:
            a, b = int(have), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def matches_node_affinity(pod: Obj, node: Obj) -> bool:
    spec = pod.get("spec") or {}
    labels = objects.labels(node)
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        return any(all(_expr_matches(e, labels) for e in t.get("matchExpressions") or [])
                   and (t.get("matchExpressions") or t.get("matchFields")) for t in terms)
    return True


R_TOO_MANY_PODS = "Too many pods"


def allocatable_pods(node: Obj) -> int | None:
    """The node's `status.allocatable.pods` (the kubelet's max pods, 110 by default), if it says."""
    value = ((node.get("status") or {}).get("allocatable") or {}).get("pods")
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def filter_reason(pod: Obj, node: Obj) -> str | None:
    """None when the pod fits the node, else kube-scheduler's reason text."""
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    if (node.get("spec") or {}).get("unschedulable") and not tolerates(
            tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        return R_UNSCHEDULABLE
    if not matches_node_affinity(pod, node):
        return R_AFFINITY
    for taint in effective_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not tolerates(tolerations, taint):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
    return None


def unschedulable_message(reasons: dict[str, int], n_nodes: int) -> str:
    if n_nodes == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return (f"0/{n_nodes} nodes are available: {', '.join(parts)}. preemption: 0/{n_nodes} nodes are "
            f"available: {n_nodes} Preemption is not helpful for scheduling.")


def binding(pod: Obj, node: str) -> Obj:
    meta: dict[str, Any] = {"name": objects.name(pod), "namespace": objects.namespace(pod)}
    if objects.uid(pod):
        meta["uid"] = objects.uid(pod)
    return {"apiVersion": "v1", "kind": "Binding", "metadata": meta,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


def pods_per_node(pods: list[Obj]) -> dict[str, int]:
    count: dict[str, int] = {}
    for p in pods:
        n = objects.node_name(p)
        if n and not objects.pod_is_terminal(p):
            count[n] = count.get(n, 0) + 1
    return count


def _controller_uid(pod: Obj) -> str:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return ""


def siblings_per_node(pod: Obj, pods: list[Obj]) -> dict[str, int]:
    """Pods with the same controlling owner as `pod`, per node (none for a pod without an owner)."""
    owner = _controller_uid(pod)
    count: dict[str, int] = {}
    if not owner:
        return count
    for p in pods:
        n = objects.node_name(p)
        if n and not objects.pod_is_terminal(p) and _controller_uid(p) == owner:
            count[n] = count.get(n, 0) + 1
    return count


def schedule(pod: Obj, nodes: list[Obj], pods: list[Obj], now: dt.datetime | None = None) -> list[Action]:
    """Actions placing one pod: a bind (+ Scheduled event), or PodScheduled=False + FailedScheduling."""
    now = now or utcnow()
    if not wants_scheduling(pod):
        return []
    live = [n for n in nodes if not objects.is_deleting(n)]
    reasons: dict[str, int] = {}
    fits: list[Obj] = []
    load = pods_per_node(pods)
    for node in live:
        why = filter_reason(pod, node)
        cap = allocatable_pods(node)
        if why is None and cap is not None and load.get(objects.name(node), 0) >= cap:
            why = R_TOO_MANY_PODS
        if why is None:
            fits.append(node)
        else:
            reasons[why] = reasons.get(why, 0) + 1
    if fits:
        siblings = siblings_per_node(pod, pods)
        best = min(fits, key=lambda n: (siblings.get(objects.name(n), 0), load.get(objects.name(n), 0),
                                        objects.name(n)))
        target = objects.name(best)
        ev = make_event(pod, "Scheduled", f"Successfully assigned {objects.key(pod)} to {target}",
                        component=DEFAULT_SCHEDULER, now=now)
        return [Action("bind", PODS, binding(pod, target), then_event=ev)]
    message = unschedulable_message(reasons, len(live))
    current = objects.condition(pod, "PodScheduled")
    if current is not None and current.get("status") == "False" and current.get("message") == message:
        return []  # already reported
    new = copy.deepcopy(pod)
    old_conds = new.setdefault("status", {}).get("conditions") or []
    conds = [c for c in old_conds if c.get("type") != "PodScheduled"]
    conds.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                  "lastProbeTime": None, "lastTransitionTime": rfc3339(now)})
    new["status"]["conditions"] = conds
    new["status"].setdefault("phase", "Pending")
    ev = make_event(pod, "FailedScheduling", message, type="Warning", component=DEFAULT_SCHEDULER, now=now)
    return [Action("update_status", PODS, new), Action("event", EVENTS, ev)]


def missing_node_event(pod: Obj, nodes: list[Obj], now: dt.datetime | None = None) -> list[Action]:
    """A pending pod naming a node that does not exist stays Pending; say so once (the runner
    remembers which pods it told about)."""
    want = objects.node_name(pod)
    if (not want or objects.pod_is_terminal(pod) or objects.is_deleting(pod)
            or objects.pod_phase(pod) != "Pending"):
        return []
    if any(objects.name(n) == want for n in nodes):
        return []
    msg = (f'node "{want}" not found: the pod stays Pending until a node with that name joins '
           "the cluster")
    return [Action("event", EVENTS, make_event(pod, "NodeNotFound", msg, type="Warning",
                                               component=DEFAULT_SCHEDULER, now=now))]
