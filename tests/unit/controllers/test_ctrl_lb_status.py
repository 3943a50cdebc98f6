"""LoadBalancer status controller."""

from __future__ import annotations

from _ctrl_factories import service

from podnet.allocators import LB_IP_ANNOTATION, LoadBalancerPool
from podnet.controllers.lb_status import reconcile_lb_status

POOL = LoadBalancerPool("172.31.5.200-172.31.5.201")


def lb(name: str, ip: str = "", **spec: object) -> dict:
    s = service(name, {"app": name}, type="LoadBalancer", **spec)
    if ip:
        s["metadata"]["annotations"] = {LB_IP_ANNOTATION: ip}
    return s


def test_status_written_from_reserved_ip_once() -> None:
    s = lb("web", "172.31.5.200")
    [a] = reconcile_lb_status(s, POOL, [s])
    assert a.verb == "update_status"
    assert a.obj["status"]["loadBalancer"] == {"ingress": [{"ip": "172.31.5.200", "ipMode": "VIP"}]}
    assert reconcile_lb_status(a.obj, POOL, [a.obj]) == []


def test_pending_service_retried_only_when_pool_has_room() -> None:
    pending = lb("new")
    [a] = reconcile_lb_status(pending, POOL, [pending, lb("a", "172.31.5.200")])
    assert a.verb == "update"  # an unchanged PUT: the Service hook allocates
    full = [pending, lb("a", "172.31.5.200"), lb("b", "172.31.5.201")]
    [ev] = reconcile_lb_status(pending, POOL, full)
    assert ev.verb == "event" and ev.obj["reason"] == "AllocationFailed" and ev.obj["type"] == "Warning"
    assert reconcile_lb_status(pending, LoadBalancerPool("none"), [pending]) == []


def test_other_class_left_alone_and_type_change_clears_status() -> None:
    theirs = lb("x", loadBalancerClass="example.com/lb")
    assert reconcile_lb_status(theirs, POOL, [theirs]) == []
    was_lb = service("web", {"app": "web"})
    was_lb["status"] = {"loadBalancer": {"ingress": [{"ip": "172.31.5.200", "ipMode": "VIP"}]}}
    [a] = reconcile_lb_status(was_lb, POOL, [was_lb])
    assert a.verb == "update_status" and a.obj["status"]["loadBalancer"] == {}
