"""ServiceHooks: what kube-apiserver's allocation step does to Services, with its exact errors."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from podnet.allocators import LB_IP_ANNOTATION, ServiceHooks
from podnet.api.errors import APIError
from podnet.model.kinds import PODS, SERVICES, Obj
from podnet.store.memory import MemoryStore


def svc(name: str, type_: str = "ClusterIP", ports: list[dict[str, Any]] | None = None,
        **spec: Any) -> Obj:
    s: Obj = {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": name, "namespace": "default"},
              "spec": {"type": type_, "selector": {"app": name},
                       "ports": ports if ports is not None else [{"port": 80, "protocol": "TCP"}],
                       **spec}}
    return s


def hooks(pool: str = "172.31.5.200-172.31.5.202") -> ServiceHooks:
    return ServiceHooks("10.96.0.0/12", (30000, 32767), pool)


async def create(h: ServiceHooks, obj: Obj) -> Obj:
    res = await h.before_create(SERVICES, obj)
    res.commit()
    return obj


async def update(h: ServiceHooks, new: Obj, old: Obj) -> Obj:
    res = await h.before_update(SERVICES, new, old)
    res.commit()
    return new


async def test_create_fills_cluster_ip_families_and_policy() -> None:
    h = hooks()
    s = await create(h, svc("web"))
    spec = s["spec"]
    assert spec["clusterIP"] == spec["clusterIPs"][0]
    assert spec["clusterIP"].startswith("10.")
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert "nodePort" not in spec["ports"][0]


async def test_requested_cluster_ip_taken_gives_exact_422() -> None:
    h = hooks()
    await create(h, svc("a", clusterIP="10.96.0.10"))
    with pytest.raises(APIError) as e:
        await create(h, svc("b", clusterIP="10.96.0.10"))
    assert e.value.code == 422
    assert e.value.message == ('Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.10"]: '
                               "failed to allocate IP 10.96.0.10: provided IP is already allocated")
    assert e.value.details is not None
    assert e.value.details["causes"] == [{
        "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
        "message": 'Invalid value: ["10.96.0.10"]: failed to allocate IP 10.96.0.10: '
                   "provided IP is already allocated"}]


async def test_requested_cluster_ip_out_of_range() -> None:
    with pytest.raises(APIError) as e:
        await create(hooks(), svc("b", clusterIP="192.168.0.10"))
    assert e.value.message.endswith(
        "failed to allocate IP 192.168.0.10: the provided IP (192.168.0.10) is not in the valid range. "
        "The range of valid IPs is 10.96.0.0/12")


async def test_bad_cluster_ip_text_is_refused_before_allocation() -> None:
    with pytest.raises(APIError) as e:
        await create(hooks(), svc("b", clusterIP="banana"))
    assert e.value.message == ('Service "b" is invalid: spec.clusterIPs[0]: Invalid value: "banana": '
                               "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")


async def test_headless_gets_none_and_no_allocation() -> None:
    h = hooks()
    s = await create(h, svc("db", clusterIP="None"))
    assert s["spec"]["clusterIPs"] == ["None"]
    assert s["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert h.cluster_ips.used() == 0
    bare = svc("ext", clusterIP="None")
    del bare["spec"]["selector"]
    await create(h, bare)
    # headless selectorless: upstream allows both families even on a single-stack cluster
    assert bare["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert bare["spec"]["ipFamilies"] == ["IPv4", "IPv6"]


async def test_families_from_requested_ip_and_unserved_family() -> None:
    s = await create(hooks(), svc("a", clusterIP="10.96.5.5", clusterIPs=["10.96.5.5"]))
    assert s["spec"]["ipFamilies"] == ["IPv4"]
    with pytest.raises(APIError) as e:
        await create(hooks(), svc("b", ipFamilies=["IPv6"]))
    assert e.value.message == ('Service "b" is invalid: spec.ipFamilies[0]: Invalid value: "IPv6": '
                               "not configured on this cluster")
    with pytest.raises(APIError) as e2:
        await create(hooks(), svc("c", ipFamilyPolicy="SingleStack", ipFamilies=["IPv4", "IPv6"]))
    assert e2.value.message == ('Service "c" is invalid: spec.ipFamilyPolicy: Invalid value: "SingleStack": '
                                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families "
                                "are specified")


async def test_taken_health_check_node_port_is_internal_error_as_upstream() -> None:
    h = hooks()
    await create(h, svc("a", "NodePort", [{"port": 80, "nodePort": 30100}]))
    with pytest.raises(APIError) as e:
        await create(h, svc("b", "LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=30100))
    assert e.value.code == 500
    assert e.value.message == ("Internal error occurred: failed to allocate requested HealthCheck NodePort "
                               "30100: provided port is already allocated")
    assert h.node_ports.used() == 1 and h.cluster_ips.used() == 1


async def test_require_dual_stack_refused_on_single_stack_cluster() -> None:
    with pytest.raises(APIError) as e:
        await create(hooks(), svc("x", ipFamilyPolicy="RequireDualStack"))
    assert e.value.message == ('Service "x" is invalid: spec.ipFamilyPolicy: Invalid value: '
                               '"RequireDualStack": this cluster is not configured for dual-stack services')


async def test_node_ports_allocated_and_shared_between_tcp_and_udp() -> None:
    h = hooks()
    s = await create(h, svc("dns", "NodePort", [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "protocol": "TCP"}]))
    p = s["spec"]["ports"]
    assert p[0]["nodePort"] == p[1]["nodePort"] != p[2]["nodePort"]
    assert all(30086 <= x["nodePort"] <= 32767 for x in p)
    assert h.node_ports.used() == 2


async def test_explicit_node_port_errors_are_exact() -> None:
    h = hooks()
    with pytest.raises(APIError) as e:
        await create(h, svc("a", "NodePort", [{"port": 80, "nodePort": 40000}]))
    assert e.value.message == (
        'Service "a" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port is not in '
        "the valid range. The range of valid ports is 30000-32767")
    await create(h, svc("b", "NodePort", [{"port": 80, "nodePort": 30080}]))
    with pytest.raises(APIError) as e2:
        await create(h, svc("c", "NodePort", [{"name": "x", "port": 81},
                                              {"name": "y", "port": 82, "nodePort": 30080}]))
    assert e2.value.message == ('Service "c" is invalid: spec.ports[1].nodePort: Invalid value: 30080: '
                                "provided port is already allocated")
    # the failed create left nothing behind: port[0]'s automatic nodePort was released
    assert h.node_ports.used() == 1


async def test_cluster_ip_service_may_not_carry_node_port() -> None:
    with pytest.raises(APIError) as e:
        await create(hooks(), svc("a", ports=[{"port": 80, "nodePort": 30001}]))
    assert e.value.message == ("Service \"a\" is invalid: spec.ports[0].nodePort: Forbidden: "
                               "may not be used when `type` is 'ClusterIP'")


async def test_range_full_is_internal_error() -> None:
    h = ServiceHooks("10.0.0.0/29", (30000, 30001))  # 5 usable IPs but .1 is reserved
    for i in range(5):
        await create(h, svc(f"s{i}"))
    with pytest.raises(APIError) as e:
        await create(h, svc("one-too-many"))
    assert e.value.code == 500
    assert e.value.message == "Internal error occurred: failed to allocate a serviceIP: range is full"
    h2 = ServiceHooks("10.0.0.0/24", (30000, 30001))
    await create(h2, svc("n1", "NodePort", [{"name": "a", "port": 1}, {"name": "b", "port": 2}]))
    with pytest.raises(APIError) as e2:
        await create(h2, svc("n2", "NodePort"))
    assert e2.value.message == "Internal error occurred: failed to allocate a nodePort: range is full"


async def test_release_on_failed_validation_frees_everything() -> None:
    h = hooks()
    obj = svc("lb", "LoadBalancer", externalTrafficPolicy="Local")
    res = await h.before_create(SERVICES, obj)
    assert h.cluster_ips.used() == 1 and h.node_ports.used() == 2 and h.lb_pool.used() == 1
    res.release()
    assert h.cluster_ips.used() == 0 and h.node_ports.used() == 0 and h.lb_pool.used() == 0


async def test_load_balancer_gets_pool_ip_and_health_check_port() -> None:
    h = hooks()
    s = await create(h, svc("lb", "LoadBalancer", externalTrafficPolicy="Local"))
    assert s["metadata"]["annotations"][LB_IP_ANNOTATION] == "172.31.5.200"
    assert s["status"]["loadBalancer"] == {"ingress": [{"ip": "172.31.5.200", "ipMode": "VIP"}]}
    hc = s["spec"]["healthCheckNodePort"]
    assert 30000 <= hc <= 32767 and hc != s["spec"]["ports"][0]["nodePort"]


async def test_load_balancer_ip_requests() -> None:
    h = hooks()
    s = await create(h, svc("a", "LoadBalancer", loadBalancerIP="172.31.5.202"))
    assert s["metadata"]["annotations"][LB_IP_ANNOTATION] == "172.31.5.202"
    with pytest.raises(APIError) as e:
        await create(h, svc("b", "LoadBalancer", loadBalancerIP="172.31.5.202"))
    assert e.value.message == ('Service "b" is invalid: spec.loadBalancerIP: Invalid value: '
                               '"172.31.5.202": provided IP is already allocated')
    with pytest.raises(APIError) as e2:
        await create(h, svc("c", "LoadBalancer", loadBalancerIP="8.8.8.8"))
    assert e2.value.code == 422
    assert "spec.loadBalancerIP: Invalid value: \"8.8.8.8\": provided IP is not in the LoadBalancer pool" \
        in e2.value.message


async def test_other_load_balancer_class_and_no_pool_stay_pending() -> None:
    h = hooks()
    s = await create(h, svc("theirs", "LoadBalancer", loadBalancerClass="example.com/lb"))
    assert LB_IP_ANNOTATION not in (s["metadata"].get("annotations") or {})
    assert h.lb_pool.used() == 0
    nopool = hooks("none")
    s2 = await create(nopool, svc("mine", "LoadBalancer"))
    assert LB_IP_ANNOTATION not in (s2["metadata"].get("annotations") or {})
    assert s2["spec"]["ports"][0]["nodePort"]  # still a NodePort underneath


async def test_client_cannot_claim_pool_ip_via_annotation() -> None:
    h = hooks()
    obj = svc("sneaky")
    obj["metadata"]["annotations"] = {LB_IP_ANNOTATION: "172.31.5.200"}
    await create(h, obj)
    assert LB_IP_ANNOTATION not in obj["metadata"]["annotations"]


async def test_pool_exhaustion_leaves_pending_not_error() -> None:
    h = hooks("172.31.5.200-172.31.5.200")
    await create(h, svc("a", "LoadBalancer"))
    s = await create(h, svc("b", "LoadBalancer"))
    assert LB_IP_ANNOTATION not in (s["metadata"].get("annotations") or {})


async def test_update_keeps_omitted_allocations_like_kubectl_apply() -> None:
    h = hooks()
    old = await create(h, svc("web", "LoadBalancer", [{"name": "http", "port": 80}],
                              externalTrafficPolicy="Local"))
    new = svc("web", "LoadBalancer", [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
              externalTrafficPolicy="Local")
    await update(h, new, copy.deepcopy(old))
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert new["spec"]["clusterIPs"] == old["spec"]["clusterIPs"]
    assert new["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
    assert new["spec"]["ports"][1]["nodePort"] not in (0, old["spec"]["ports"][0]["nodePort"])
    assert new["spec"]["healthCheckNodePort"] == old["spec"]["healthCheckNodePort"]
    assert new["metadata"]["annotations"][LB_IP_ANNOTATION] == "172.31.5.200"
    assert h.node_ports.used() == 3 and h.cluster_ips.used() == 1 and h.lb_pool.used() == 1


async def test_update_refuses_cluster_ip_change() -> None:
    h = hooks()
    old = await create(h, svc("web", clusterIP="10.96.100.20"))
    new = svc("web", clusterIP="10.96.100.21")
    with pytest.raises(APIError) as e:
        await update(h, new, old)
    assert e.value.message == ('Service "web" is invalid: spec.clusterIPs[0]: Invalid value: '
                               '"10.96.100.21": may not change once set')
    assert h.cluster_ips.has("10.96.100.20") and not h.cluster_ips.has("10.96.100.21")


async def test_type_change_to_cluster_ip_releases_after_commit_only() -> None:
    h = hooks()
    old = await create(h, svc("web", "LoadBalancer", externalTrafficPolicy="Local"))
    np = old["spec"]["ports"][0]["nodePort"]
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    del new["spec"]["externalTrafficPolicy"]
    del new["spec"]["healthCheckNodePort"]
    res = await h.before_update(SERVICES, new, old)
    assert "nodePort" not in new["spec"]["ports"][0]  # old value sent back: dropped
    assert LB_IP_ANNOTATION not in new["metadata"]["annotations"]
    assert h.node_ports.has(np) and h.lb_pool.used() == 1  # not yet: the write may still fail
    res.commit()
    assert h.node_ports.used() == 0 and h.lb_pool.used() == 0 and h.cluster_ips.used() == 1


async def test_type_change_to_external_name_frees_cluster_ip() -> None:
    h = hooks()
    old = await create(h, svc("web", "NodePort"))
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ExternalName"
    new["spec"]["externalName"] = "example.com"
    await update(h, new, old)
    for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert k not in new["spec"]
    assert h.cluster_ips.used() == 0 and h.node_ports.used() == 0


async def test_type_change_cluster_ip_to_node_port_allocates() -> None:
    h = hooks()
    old = await create(h, svc("web"))
    new = copy.deepcopy(old)
    new["spec"]["type"] = "NodePort"
    await update(h, new, old)
    assert 30000 <= new["spec"]["ports"][0]["nodePort"] <= 32767
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]


async def test_health_check_node_port_is_immutable() -> None:
    h = hooks()
    old = await create(h, svc("web", "LoadBalancer", externalTrafficPolicy="Local"))
    new = copy.deepcopy(old)
    new["spec"]["healthCheckNodePort"] = old["spec"]["healthCheckNodePort"] + 1
    with pytest.raises(APIError) as e:
        await update(h, new, old)
    assert e.value.message == ('Service "web" is invalid: spec.healthCheckNodePort: Forbidden: '
                               "field is immutable")


async def test_after_delete_releases_and_other_kinds_pass_through() -> None:
    h = hooks()
    s = await create(h, svc("web", "LoadBalancer"))
    await h.after_delete(SERVICES, s)
    assert h.cluster_ips.used() == 0 and h.node_ports.used() == 0 and h.lb_pool.used() == 0
    pod: Obj = {"metadata": {"name": "p"}, "spec": {}}
    res = await h.before_create(PODS, pod)
    res.commit()
    assert pod == {"metadata": {"name": "p"}, "spec": {}}


async def test_restart_rebuilds_from_store_and_never_hands_out_twice() -> None:
    store = MemoryStore()
    h = ServiceHooks("10.0.0.0/26", (30000, 30063), "172.31.5.200-172.31.5.203")
    for i in range(20):
        s = await create(h, svc(f"s{i}", "LoadBalancer"))
        await store.create(SERVICES.key, s)
    items, _ = await store.list(SERVICES.key)
    held_ips = {x["spec"]["clusterIP"] for x in items}
    held_ports = {x["spec"]["ports"][0]["nodePort"] for x in items}
    held_lb = {x["metadata"]["annotations"][LB_IP_ANNOTATION] for x in items
               if LB_IP_ANNOTATION in x["metadata"].get("annotations", {})}
    assert len(held_lb) == 4

    fresh = ServiceHooks("10.0.0.0/26", (30000, 30063), "172.31.5.200-172.31.5.203")
    await fresh.load(store)
    assert fresh.cluster_ips.used() == 20 and fresh.node_ports.used() == 20 and fresh.lb_pool.used() == 4
    new_ips, new_ports = set(), set()
    for i in range(20):
        s = await create(fresh, svc(f"t{i}", "NodePort"))
        new_ips.add(s["spec"]["clusterIP"])
        new_ports.add(s["spec"]["ports"][0]["nodePort"])
    assert not new_ips & held_ips and not new_ports & held_ports
    lb = await create(fresh, svc("more", "LoadBalancer"))
    assert LB_IP_ANNOTATION not in lb["metadata"].get("annotations", {})


async def test_200_concurrent_creates_never_collide() -> None:
    """The API server's pipeline: hook -> (await: validation, store write) -> commit/release."""
    store = MemoryStore()
    h = ServiceHooks("10.96.0.0/24", (30000, 30999), "172.31.5.0/24")

    async def one(i: int) -> Obj:
        obj = svc(f"s{i}", "LoadBalancer", [{"name": "a", "port": 80}, {"name": "b", "port": 81}])
        res = await h.before_create(SERVICES, obj)
        await asyncio.sleep(0)  # let the other requests interleave here
        if i % 10 == 0:  # some fail validation after allocation
            res.release()
            return {}
        created = await store.create(SERVICES.key, obj)
        res.commit()
        return created

    results = [r for r in await asyncio.gather(*(one(i) for i in range(200))) if r]
    assert len(results) == 180
    ips = [r["spec"]["clusterIP"] for r in results]
    ports = [p["nodePort"] for r in results for p in r["spec"]["ports"]]
    lbs = [r["metadata"]["annotations"][LB_IP_ANNOTATION] for r in results]
    assert len(set(ips)) == 180 and len(set(ports)) == 360 and len(set(lbs)) == 180
    assert h.cluster_ips.used() == 180 and h.node_ports.used() == 360 and h.lb_pool.used() == 180
