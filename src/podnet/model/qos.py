"""A pod's QoS class (`status.qosClass`), as Kubernetes computes it from containers and init containers.

Guaranteed: every container has cpu and memory limits, and requests (where given) equal them;
BestEffort: no container sets any request or limit; Burstable: everything else.
"""

from __future__ import annotations

from typing import Any

from podnet.model.kinds import Obj


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def qos_class(pod: Obj) -> str:
    spec = _map(pod.get("spec"))
    containers = _dicts(spec.get("containers")) + _dicts(spec.get("initContainers"))
    any_set, guaranteed = False, True
    for c in containers:
        res = _map(c.get("resources"))
        req, lim = _map(res.get("requests")), _map(res.get("limits"))
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
