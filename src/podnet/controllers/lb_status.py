"""LoadBalancer status: `status.loadBalancer.ingress` from the IP the Service hook reserved.

ServiceHooks (podnet.allocators) is the one owner of pool addresses: it reserves the IP while the
Service is written and records it in the annotation `podnet.io/lb-ip`. This controller only reads
the pool's size (podnet.core.lbpool) and the Services; it mirrors the recorded IP into
`status.loadBalancer.ingress: [{ip, ipMode: VIP}]` (so `kubectl get svc` shows the
EXTERNAL-IP), clears the status when the Service stops being a LoadBalancer, and asks
the API server to try again (an unchanged PUT: the hook allocates) when a Service is
still pending while the pool has room.
"""

from __future__ import annotations

import copy

from podnet.allocators.lb_pool import LB_IP_ANNOTATION, handles
from podnet.controllers import objects
from podnet.controllers.actions import Action
from podnet.controllers.events import make_event
from podnet.core.lbpool import PoolSpec
from podnet.model.kinds import EVENTS, SERVICES, Obj

COMPONENT = "service-controller"


def recorded_ip(svc: Obj) -> str:
    return str((objects.meta(svc).get("annotations") or {}).get(LB_IP_ANNOTATION) or "")


def pool_has_room(pool: PoolSpec, services: list[Obj]) -> bool:
    if not pool.enabled:
        return False
    held = {recorded_ip(s) for s in services if handles(s) and recorded_ip(s)}
    return pool.size() > len(held)


def reconcile_lb_status(svc: Obj, pool: PoolSpec, services: list[Obj]) -> list[Action]:
    """`services`: all Services (to know whether the pool has room for a pending one)."""
    status = svc.get("status") or {}
    current = (status.get("loadBalancer") or {}).get("ingress") or []
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        if current:
            new = copy.deepcopy(svc)
            new.setdefault("status", {})["loadBalancer"] = {}
            return [Action("update_status", SERVICES, new)]
        return []
    if not handles(svc):
        return []  # another implementation's Service (spec.loadBalancerClass)
    ip = recorded_ip(svc)
    if ip:
        want = [{"ip": ip, "ipMode": "VIP"}]
        if current == want:
            return []
        new = copy.deepcopy(svc)
        new.setdefault("status", {})["loadBalancer"] = {"ingress": want}
        return [Action("update_status", SERVICES, new)]
    if pool_has_room(pool, services):
        return [Action("update", SERVICES, copy.deepcopy(svc))]
    if pool.enabled:
        return [Action("event", EVENTS, make_event(
            svc, "AllocationFailed",
            f"no free IP address in the LoadBalancer pool {pool.spec}: the Service stays <pending>",
            type="Warning", component=COMPONENT))]
    return []
