"""ReplicaSet controller: keep `spec.replicas` pods of the template running.

Adopts matching orphan pods, releases owned pods that no longer match, creates pods
from the template (generateName `<rs>-`, controller ownerReference) and deletes the
least valuable ones first (unscheduled, pending, not ready, on crowded nodes, ready
for less time, more restarts, newest), then reports status.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action, delete_action
from podnet.controllers.events import make_event
from podnet.controllers.timeutil import utcnow
from podnet.model.kinds import PODS, REPLICASETS, Obj
from podnet.model.selectors import SelectorError, from_label_selector, from_set

COMPONENT = "replicaset-controller"
BURST = 500  # pods created or deleted per sync, as kube-controller-manager's burstReplicas

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


def owned_by(obj: Obj, owner: Obj) -> bool:
    ref = objects.controller_ref(obj)
    return ref is not None and ref.get("uid") == objects.uid(owner)


def with_owner(obj: Obj, owner: Obj) -> Obj:
    new = copy.deepcopy(obj)
    refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != objects.uid(owner)]
    new["metadata"]["ownerReferences"] = [*refs, objects.owner_ref_to(owner)]
    return new


def without_owner(obj: Obj, owner: Obj) -> Obj:
    new = copy.deepcopy(obj)
    refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != objects.uid(owner)]
    if refs:
        new["metadata"]["ownerReferences"] = refs
    else:
        new["metadata"].pop("ownerReferences", None)
    return new


def deletion_order(pods: list[Obj], now: dt.datetime) -> list[Obj]:
    """Least valuable first (`controller.ActivePodsWithRanks`)."""
    per_node: dict[str, int] = {}
    for p in pods:
        per_node[objects.node_name(p)] = per_node.get(objects.node_name(p), 0) + 1

    def rank(p: Obj) -> tuple[Any, ...]:
        ready_since = objects.pod_ready_since(p) or _FAR_FUTURE
        created = objects.creation_time(p) or _FAR_FUTURE
        return (
            1 if objects.node_name(p) else 0,                       # unscheduled first
            _PHASE_RANK.get(objects.pod_phase(p), 0),               # pending < unknown < running
            1 if objects.pod_is_ready(p) else 0,                    # not ready first
            -per_node.get(objects.node_name(p), 0),                 # pods on crowded nodes first
            -ready_since.timestamp(),                         # ready for less time first
            -objects.restart_count(p),                              # more restarts first
            -created.timestamp(),                             # newer first
            objects.name(p),
        )

    return sorted(pods, key=rank)


def new_pod(rs: Obj) -> Obj:
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: dict[str, Any] = {"generateName": f"{objects.name(rs)}-", "namespace": objects.namespace(rs),
                            "ownerReferences": [objects.owner_ref_to(rs)]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def compute_status(rs: Obj, active: list[Obj], now: dt.datetime) -> dict[str, Any]:
    spec = rs.get("spec") or {}
    tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    tsel = from_set(tlabels)
    min_ready = int(spec.get("minReadySeconds") or 0)
    status: dict[str, Any] = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(1 for p in active if tsel.matches(objects.labels(p))),
        "readyReplicas": sum(1 for p in active if objects.pod_is_ready(p)),
        "availableReplicas": sum(1 for p in active if objects.pod_is_available(p, min_ready, now)),
    }
    if objects.meta(rs).get("generation") is not None:
        status["observedGeneration"] = objects.meta(rs)["generation"]
    old = rs.get("status") or {}
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    return status


def _status_differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = set(old) | set(new)
    return any((old.get(k) or 0) != (new.get(k) or 0) for k in keys if k != "conditions")


def reconcile_replicaset(rs: Obj, pods: list[Obj], now: dt.datetime | None = None) -> list[Action]:
    """Actions for one ReplicaSet given the pods of its namespace (from the cache)."""
    now = now or utcnow()
    if objects.is_deleting(rs):
        return []
    spec = rs.get("spec") or {}
    try:
        sel = from_label_selector(spec.get("selector"))
    except SelectorError:
        return []
    ns = objects.namespace(rs)
    actions: list[Action] = []
    mine: list[Obj] = []
    for p in pods:
        if objects.namespace(p) != ns:
            continue
        if owned_by(p, rs):
            if sel.matches(objects.labels(p)) or objects.is_deleting(p):
                mine.append(p)
            else:  # the labels changed: let go of it
                actions.append(Action("update", PODS, without_owner(p, rs)))
        elif (objects.controller_ref(p) is None and sel.matches(objects.labels(p))
              and not objects.is_deleting(p) and not objects.pod_is_terminal(p)):
            actions.append(Action("update", PODS, with_owner(p, rs)))
            mine.append(p)
    active = [p for p in mine if not objects.pod_is_terminal(p) and not objects.is_deleting(p)]
    want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    diff = len(active) - want
    if diff < 0:
        for _ in range(min(-diff, BURST)):
            ev = make_event(rs, "SuccessfulCreate", "Created pod: {name}", component=COMPONENT, now=now)
            actions.append(Action("create", PODS, new_pod(rs), then_event=ev))
    elif diff > 0:
        for p in deletion_order(active, now)[:min(diff, BURST)]:
            ev = make_event(rs, "SuccessfulDelete", f"Deleted pod: {objects.name(p)}", component=COMPONENT,
                            now=now)
            actions.append(delete_action(PODS, p, then_event=ev))
    status = compute_status(rs, active, now)
    if _status_differs(rs.get("status") or {}, status):
        new = copy.deepcopy(rs)
        new["status"] = status
        actions.append(Action("update_status", REPLICASETS, new))
    return actions
