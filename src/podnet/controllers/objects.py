"""Small readers of pod/node/owner fields shared by the controllers. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from podnet.controllers.timeutil import parse_time
from podnet.model.kinds import Obj


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def name(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def namespace(obj: Obj) -> str:
    return str(meta(obj).get("namespace") or "")


def uid(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def labels(obj: Obj) -> dict[str, str]:
    lab = meta(obj).get("labels")
    return dict(lab) if isinstance(lab, dict) else {}


def key(obj: Obj) -> str:
    ns = namespace(obj)
    return f"{ns}/{name(obj)}" if ns else name(obj)


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def owner_ref_to(owner: Obj, *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""),
            "name": name(owner), "uid": uid(owner), "controller": controller,
            "blockOwnerDeletion": True}


def condition(obj: Obj, ctype: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def pod_phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def pod_is_terminal(pod: Obj) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def pod_is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def pod_ready_since(pod: Obj) -> dt.datetime | None:
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def pod_is_available(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> bool:
    if not pod_is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_since(pod)
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def pod_ips(pod: Obj) -> list[str]:
    st = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in st.get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
    if not ips and st.get("podIP"):
        ips = [str(st["podIP"])]
    return ips


def node_name(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def restart_count(pod: Obj) -> int:
    total = 0
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if isinstance(cs, dict):
            total += int(cs.get("restartCount") or 0)
    return total


def creation_time(obj: Obj) -> dt.datetime | None:
    return parse_time(meta(obj).get("creationTimestamp"))


def node_ready_status(node: Obj) -> str:
    """`True`, `False`, `Unknown`, or "" when the node never posted a Ready condition."""
    c = condition(node, "Ready")
    return str(c.get("status") or "Unknown") if c else ""
