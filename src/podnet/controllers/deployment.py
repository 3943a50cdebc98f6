"""Deployment controller: a ReplicaSet per pod template, rolled over by the strategy.

Follows kube-controller-manager's deployment controller: the new ReplicaSet is named
`<deployment>-<pod-template-hash>` and carries the `pod-template-hash` label in its
selector and template; RollingUpdate scales it up within maxSurge and the old ones down
within maxUnavailable, Recreate scales the old ones to zero first. Status carries
replicas/updatedReplicas/readyReplicas/availableReplicas/unavailableReplicas/
observedGeneration and the Available/Progressing conditions `kubectl rollout status` reads.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action, delete_action
from podnet.controllers.events import make_event
from podnet.controllers.replicaset import owned_by, with_owner, without_owner
from podnet.controllers.template_hash import HASH_LABEL, compute_hash, equal_ignore_hash
from podnet.controllers.timeutil import parse_time, rfc3339, utcnow
from podnet.model.kinds import DEPLOYMENTS, REPLICASETS, Obj
from podnet.model.selectors import SelectorError, from_label_selector

COMPONENT = "deployment-controller"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {REVISION, DESIRED_REPLICAS, MAX_REPLICAS, "kubectl.kubernetes.io/last-applied-configuration",
               "deployment.kubernetes.io/revision-history"}


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def replicas_of(obj: Obj) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else _int(r, 1)


def revision_of(rs: Obj) -> int:
    return _int((objects.meta(rs).get("annotations") or {}).get(REVISION), 0)


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        pct = _int(value[:-1], 0)
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return _int(value, 0)


def is_rolling(dep: Obj) -> bool:
    return str(((dep.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate") != "Recreate"


def surge_and_unavailable(dep: Obj) -> tuple[int, int]:
    """`ResolveFenceposts`: maxSurge rounds up, maxUnavailable down; both 0 means 1 unavailable."""
    desired = replicas_of(dep)
    if not is_rolling(dep):
        return 0, 0
    ru = ((dep.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = int_or_percent(ru.get("maxSurge", "25%"), desired, True)
    unavailable = int_or_percent(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(dep: Obj) -> int:
    desired = replicas_of(dep)
    if not is_rolling(dep) or desired == 0:
        return 0
    return min(surge_and_unavailable(dep)[1], desired)


class _Plan:
    """Collects changes to ReplicaSets so several of them become one update per object."""

    def __init__(self, dep: Obj, now: dt.datetime):
        self.dep = dep
        self.now = now
        self.actions: list[Action] = []
        self.original: dict[str, Obj] = {}
        self.changed: dict[str, Obj] = {}  # rs name -> modified copy

    def current(self, rs: Obj) -> Obj:
        return self.changed.get(objects.name(rs), rs)

    def edit(self, rs: Obj) -> Obj:
        n = objects.name(rs)
        if n not in self.changed:
            self.original[n] = rs
            self.changed[n] = copy.deepcopy(rs)
        return self.changed[n]

    def scale(self, rs: Obj, count: int) -> None:
        if replicas_of(self.current(rs)) == count:
            return
        new = self.edit(rs)
        new.setdefault("spec", {})["replicas"] = count
        surge, _ = surge_and_unavailable(self.dep)
        ann = new["metadata"].setdefault("annotations", {})
        ann[DESIRED_REPLICAS] = str(replicas_of(self.dep))
        ann[MAX_REPLICAS] = str(replicas_of(self.dep) + surge)

    def finish(self) -> list[Action]:
        out = list(self.actions)
        for n, rs in self.changed.items():
            before, after = replicas_of(self.original[n]), replicas_of(rs)
            ev = None
            if before != after:
                way = "up" if after > before else "down"
                ev = make_event(self.dep, "ScalingReplicaSet",
                                f"Scaled {way} replica set {n} from {before} to {after}",
                                component=COMPONENT, now=self.now)
            out.append(Action("update", REPLICASETS, rs, then_event=ev))
        return out


def new_replicaset(dep: Obj, template_hash: str, replicas: int, revision: int) -> Obj:
    spec = dep.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: template_hash}
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: template_hash}
    surge, _ = surge_and_unavailable(dep)
    annotations = {k: v for k, v in (objects.meta(dep).get("annotations") or {}).items()
                   if k not in _NOT_COPIED}
    annotations.update({DESIRED_REPLICAS: str(replicas_of(dep)),
                        MAX_REPLICAS: str(replicas_of(dep) + surge), REVISION: str(revision)})
    rs_spec: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": f"{objects.name(dep)}-{template_hash}", "namespace": objects.namespace(dep),
                     "labels": dict(tmeta["labels"]), "annotations": annotations,
                     "ownerReferences": [objects.owner_ref_to(dep)]},
        "spec": rs_spec,
    }


def _oldest_first(rss: list[Obj]) -> list[Obj]:
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(rss, key=lambda r: (objects.creation_time(r) or far, objects.name(r)))


def _status_int(rs: Obj, field: str) -> int:
    return _int((rs.get("status") or {}).get(field), 0)


def reconcile_deployment(dep: Obj, replicasets: list[Obj], now: dt.datetime | None = None) -> list[Action]:
    """Actions for one Deployment given the ReplicaSets of its namespace (from the cache)."""
    now = now or utcnow()
    if objects.is_deleting(dep):
        return []
    spec = dep.get("spec") or {}
    try:
        sel = from_label_selector(spec.get("selector"))
    except SelectorError:
        return []
    if sel.is_empty():
        return []
    plan = _Plan(dep, now)
    ns = objects.namespace(dep)
    mine: list[Obj] = []
    for rs in replicasets:
        if objects.namespace(rs) != ns:
            continue
        if owned_by(rs, dep):
            if sel.matches(objects.labels(rs)):
                mine.append(rs)
            else:
                plan.actions.append(Action("update", REPLICASETS, without_owner(rs, dep)))
        elif (objects.controller_ref(rs) is None and sel.matches(objects.labels(rs))
              and not objects.is_deleting(rs)):
            adopted = with_owner(rs, dep)
            plan.actions.append(Action("update", REPLICASETS, adopted))
            mine.append(adopted)
    template = spec.get("template") or {}
    new_rs = next((r for r in _oldest_first(mine)
                   if equal_ignore_hash((r.get("spec") or {}).get("template") or {}, template)), None)
    olds = [r for r in _oldest_first(mine) if r is not new_rs]
    desired = replicas_of(dep)
    surge, _ = surge_and_unavailable(dep)
    max_old_rev = max((revision_of(r) for r in olds), default=0)
    created: Obj | None = None

    if not spec.get("paused"):
        if new_rs is None:
            if not is_rolling(dep) and any(replicas_of(r) > 0 or _status_int(r, "replicas") > 0
                                           for r in olds):
                for r in olds:
                    plan.scale(r, 0)  # Recreate: old pods go first
            else:
                count = desired
                if is_rolling(dep):
                    current = sum(replicas_of(r) for r in olds)
                    count = max(0, min(desired + surge - current, desired))
                collision = _int((dep.get("status") or {}).get("collisionCount"), 0) or None
                created = new_replicaset(dep, compute_hash(template, collision), count, max_old_rev + 1)
                ev = make_event(dep, "ScalingReplicaSet",
                                f"Scaled up replica set {objects.name(created)} from 0 to {count}",
                                component=COMPONENT, now=now)
                plan.actions.append(Action("create", REPLICASETS, created, then_event=ev))
        else:
            if revision_of(new_rs) <= max_old_rev or not revision_of(new_rs):
                plan.edit(new_rs)["metadata"].setdefault("annotations", {})[REVISION] = str(max_old_rev + 1)
            if is_rolling(dep):
                _rolling(plan, dep, new_rs, olds)
            else:
                _recreate(plan, dep, new_rs, olds)
            _cleanup(plan, dep, olds)

    # the Deployment's own revision annotation follows its newest ReplicaSet
    actions = plan.finish()
    newest = created or (plan.current(new_rs) if new_rs is not None else None)
    if newest is not None:
        rev = str(revision_of(newest))
        ann = objects.meta(dep).get("annotations") or {}
        if rev != "0" and ann.get(REVISION) != rev:
            upd = copy.deepcopy(dep)
            upd["metadata"].setdefault("annotations", {})[REVISION] = rev
            actions.append(Action("update", DEPLOYMENTS, upd))
    status = compute_status(dep, [plan.current(r) for r in mine], newest, created is not None, now)
    if _status_changed(dep.get("status") or {}, status):
        new_dep = copy.deepcopy(dep)
        new_dep["status"] = status
        actions.append(Action("update_status", DEPLOYMENTS, new_dep))
    return actions


def _rolling(plan: _Plan, dep: Obj, new_rs: Obj, olds: list[Obj]) -> None:
    desired = replicas_of(dep)
    surge, _ = surge_and_unavailable(dep)
    all_rs = [new_rs, *olds]
    new_count = replicas_of(new_rs)
    # reconcileNewReplicaSet
    if new_count > desired:
        plan.scale(new_rs, desired)
        return
    if new_count < desired:
        current = sum(replicas_of(plan.current(r)) for r in all_rs)
        max_total = desired + surge
        if current < max_total:
            plan.scale(new_rs, new_count + min(max_total - current, desired - new_count))
            return
    # reconcileOldReplicaSets
    old_count = sum(replicas_of(plan.current(r)) for r in olds)
    if old_count == 0:
        return
    all_count = sum(replicas_of(plan.current(r)) for r in all_rs)
    min_available = desired - max_unavailable(dep)
    new_unavailable = replicas_of(plan.current(new_rs)) - _status_int(new_rs, "availableReplicas")
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return
    cleaned = 0
    for r in olds:  # unhealthy old replicas go first, or they would block the rollout
        cur = replicas_of(plan.current(r))
        available = _status_int(r, "availableReplicas")
        if cleaned >= max_scaled_down:
            break
        if cur == 0 or available >= cur:
            continue
        down = min(max_scaled_down - cleaned, cur - available)
        plan.scale(r, cur - down)
        cleaned += down
    available_total = sum(_status_int(r, "availableReplicas") for r in all_rs)
    if available_total <= min_available:
        return
    budget = available_total - min_available
    for r in olds:
        if budget <= 0:
            break
        cur = replicas_of(plan.current(r))
        if cur == 0:
            continue
        down = min(cur, budget)
        plan.scale(r, cur - down)
        budget -= down


def _recreate(plan: _Plan, dep: Obj, new_rs: Obj, olds: list[Obj]) -> None:
    if any(replicas_of(r) > 0 for r in olds):
        for r in olds:
            plan.scale(r, 0)
        return
    if any(_status_int(r, "replicas") > 0 for r in olds):
        return  # wait until the old pods are gone
    plan.scale(new_rs, replicas_of(dep))


def _cleanup(plan: _Plan, dep: Obj, olds: list[Obj]) -> None:
    limit = (dep.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else _int(limit, 10)
    idle = [r for r in olds if replicas_of(plan.current(r)) == 0 and _status_int(r, "replicas") == 0
            and not objects.is_deleting(r) and objects.name(r) not in plan.changed]
    idle.sort(key=revision_of)
    for r in idle[:max(0, len(idle) - limit)]:
        plan.actions.append(delete_action(REPLICASETS, r))


def _condition(ctype: str, status: str, reason: str, message: str, now: dt.datetime) -> dict[str, Any]:
    t = rfc3339(now)
    return {"type": ctype, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def _set_condition(conds: list[dict[str, Any]], new: dict[str, Any]) -> None:
    """`SetDeploymentCondition`: no change for the same status and reason; keep the transition
    time when only the reason changes."""
    for i, c in enumerate(conds):
        if c.get("type") != new["type"]:
            continue
        if c.get("status") == new["status"] and c.get("reason") == new["reason"]:
            return
        if c.get("status") == new["status"]:
            new["lastTransitionTime"] = c.get("lastTransitionTime", new["lastTransitionTime"])
        conds[i] = new
        return
    conds.append(new)


def compute_status(dep: Obj, rss: list[Obj], new_rs: Obj | None, just_created: bool,
                   now: dt.datetime) -> dict[str, Any]:
    desired = replicas_of(dep)
    old = dep.get("status") or {}
    available = sum(_status_int(r, "availableReplicas") for r in rss)
    total_spec = sum(replicas_of(r) for r in rss)
    counts = {
        "observedGeneration": _int(objects.meta(dep).get("generation"), 0),
        "replicas": sum(_status_int(r, "replicas") for r in rss),
        "updatedReplicas": _status_int(new_rs, "replicas") if new_rs is not None and not just_created else 0,
        "readyReplicas": sum(_status_int(r, "readyReplicas") for r in rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total_spec - available, 0),
    }
    status: dict[str, Any] = {k: v for k, v in counts.items() if v or k == "observedGeneration"}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    conds = copy.deepcopy(old.get("conditions") or [])
    if available >= desired - max_unavailable(dep):
        _set_condition(conds, _condition("Available", "True", "MinimumReplicasAvailable",
                                         "Deployment has minimum availability.", now))
    else:
        _set_condition(conds, _condition("Available", "False", "MinimumReplicasUnavailable",
                                         "Deployment does not have minimum availability.", now))
    rs_name = objects.name(new_rs) if new_rs is not None else ""
    spec = dep.get("spec") or {}
    progressing = next((c for c in conds if c.get("type") == "Progressing"), None)
    if spec.get("paused"):
        _set_condition(conds, _condition("Progressing", "Unknown", "DeploymentPaused",
                                         "Deployment is paused", now))
    elif just_created:
        _set_condition(conds, _condition("Progressing", "True", "NewReplicaSetCreated",
                                         f'Created new replica set "{rs_name}"', now))
    else:
        complete_before = (progressing is not None and progressing.get("reason") == "NewReplicaSetAvailable"
                           and counts["replicas"] == counts["updatedReplicas"])
        if not complete_before:
            _progress(conds, dep, old, counts, progressing, rs_name, now)
    status["conditions"] = conds
    return status


def _progress(conds: list[dict[str, Any]], dep: Obj, old: dict[str, Any], counts: dict[str, int],
              current: dict[str, Any] | None, rs_name: str, now: dt.datetime) -> None:
    desired = replicas_of(dep)
    what = f'ReplicaSet "{rs_name}"' if rs_name else f'Deployment "{objects.name(dep)}"'
    complete = (counts["updatedReplicas"] == desired and counts["replicas"] == desired
                and counts["availableReplicas"] == desired
                and counts["observedGeneration"] >= _int(objects.meta(dep).get("generation"), 0))
    old_old = _int(old.get("replicas")) - _int(old.get("updatedReplicas"))
    new_old = counts["replicas"] - counts["updatedReplicas"]
    progressed = (counts["updatedReplicas"] > _int(old.get("updatedReplicas")) or new_old < old_old
                  or counts["readyReplicas"] > _int(old.get("readyReplicas"))
                  or counts["availableReplicas"] > _int(old.get("availableReplicas")))
    if complete:
        _set_condition(conds, _condition("Progressing", "True", "NewReplicaSetAvailable",
                                         f"{what} has successfully progressed.", now))
    elif progressed:
        cond = _condition("Progressing", "True", "ReplicaSetUpdated", f"{what} is progressing.", now)
        if current is not None and current.get("status") == "True":
            cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
        conds[:] = [c for c in conds if c.get("type") != "Progressing"] + [cond]
    elif current is not None and current.get("reason") != "NewReplicaSetAvailable":
        deadline = _int((dep.get("spec") or {}).get("progressDeadlineSeconds"), 600)
        since = parse_time(current.get("lastUpdateTime"))
        if current.get("reason") != "ProgressDeadlineExceeded" and since is not None \
                and (now - since).total_seconds() > deadline:
            _set_condition(conds, _condition("Progressing", "False", "ProgressDeadlineExceeded",
                                             f"{what} has timed out progressing.", now))


def _status_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = (set(old) | set(new)) - {"conditions"}
    if any((old.get(k) or 0) != (new.get(k) or 0) for k in keys):
        return True
    return (old.get("conditions") or []) != (new.get("conditions") or [])
