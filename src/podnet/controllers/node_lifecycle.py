"""Node lifecycle: a node that stopped posting status goes Ready=Unknown, gets the
`node.kubernetes.io/unreachable` taints, and its pods go not-Ready so Services stop
sending traffic there. A node Ready again loses those taints.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action
from podnet.controllers.events import make_event
from podnet.controllers.scheduler import NOT_READY_TAINT, UNREACHABLE_TAINT
from podnet.controllers.timeutil import parse_time, rfc3339, utcnow
from podnet.core.config import DEFAULT_NODE_GRACE_SECONDS
from podnet.model.kinds import EVENTS, NODES, PODS, Obj

COMPONENT = "node-controller"
WATCHED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def _stale(node: Obj, now: dt.datetime, grace: float, observed_at: dt.datetime | None = None) -> str | None:
    """`Unknown` reason when the node's status is older than the grace period, else None.

    `observed_at`: when this controller last saw the heartbeat change (kube-controller-manager's
    probeTimestamp). Judging by it rather than by the stored timestamp gives every node a full grace
    period after the control plane itself was down, instead of declaring them all Unknown at once."""
    ready = objects.condition(node, "Ready")
    if ready is None:
        created = objects.creation_time(node)
        if created is not None and (now - created).total_seconds() > grace:
            return "NodeStatusNeverUpdated"
        return None
    if ready.get("status") == "Unknown":
        return None
    beat = parse_time(ready.get("lastHeartbeatTime")) or parse_time(ready.get("lastTransitionTime"))
    if observed_at is not None:
        beat = observed_at
    if beat is not None and (now - beat).total_seconds() > grace:
        return "NodeStatusUnknown"
    return None


def _with_taints(node: Obj, key: str, drop: tuple[str, ...], now: dt.datetime) -> Obj | None:
    taints: list[dict[str, Any]] = list((node.get("spec") or {}).get("taints") or [])
    kept = [t for t in taints if t.get("key") not in drop or t.get("key") == key]
    have = {(t.get("key"), t.get("effect")) for t in kept}
    if key:
        if (key, "NoSchedule") not in have:
            kept.append({"key": key, "effect": "NoSchedule"})
        if (key, "NoExecute") not in have:
            kept.append({"key": key, "effect": "NoExecute", "timeAdded": rfc3339(now)})
    if kept == taints:
        return None
    new = copy.deepcopy(node)
    if kept:
        new.setdefault("spec", {})["taints"] = kept
    else:
        new.setdefault("spec", {}).pop("taints", None)
    return new


def reconcile_node_health(node: Obj, pods: Iterable[Obj], now: dt.datetime | None = None,
                          grace_seconds: float = DEFAULT_NODE_GRACE_SECONDS,
                          observed_at: dt.datetime | None = None) -> list[Action]:
    """`pods`: pods bound to this node (others are ignored), only iterated when the node is
    unreachable (a lazy iterable spares the healthy case a pass over the node's pods). `observed_at`:
    see `_stale`."""
    now = now or utcnow()
    actions: list[Action] = []
    stale = _stale(node, now, grace_seconds, observed_at)
    if stale is not None:
        new = copy.deepcopy(node)
        conds = new.setdefault("status", {}).setdefault("conditions", [])
        msg = ("Kubelet never posted node status." if stale == "NodeStatusNeverUpdated"
               else "Kubelet stopped posting node status.")
        if not any(c.get("type") == "Ready" for c in conds):
            conds.append({"type": "Ready"})
        for c in conds:
            if c.get("type") in WATCHED_CONDITIONS:
                c.update({"status": "Unknown", "reason": stale, "message": msg,
                          "lastTransitionTime": rfc3339(now)})
                c.setdefault("lastHeartbeatTime", rfc3339(now))
        actions.append(Action("update_status", NODES, new))
        actions.append(Action("event", EVENTS, make_event(
            node, "NodeNotReady", f"Node {objects.name(node)} status is now: NodeNotReady",
            component=COMPONENT, now=now)))
        status = "Unknown"
    else:
        status = objects.node_ready_status(node)

    if status == "Unknown":
        tainted = _with_taints(node, UNREACHABLE_TAINT, (NOT_READY_TAINT,), now)
    elif status == "False":
        tainted = _with_taints(node, NOT_READY_TAINT, (UNREACHABLE_TAINT,), now)
    elif status == "True":
        tainted = _with_taints(node, "", (NOT_READY_TAINT, UNREACHABLE_TAINT), now)
    else:
        tainted = None
    if tainted is not None:
        actions.append(Action("update", NODES, tainted))

    if status == "Unknown":
        for pod in pods:
            if objects.node_name(pod) != objects.name(node) or not objects.pod_is_ready(pod):
                continue
            new_pod = copy.deepcopy(pod)
            for c in new_pod["status"]["conditions"]:
                if c.get("type") in ("Ready", "ContainersReady") and c.get("status") == "True":
                    c["status"] = "False"
                    c["lastTransitionTime"] = rfc3339(now)
            actions.append(Action("update_status", PODS, new_pod))
    return actions
