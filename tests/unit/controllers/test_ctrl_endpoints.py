"""Legacy Endpoints reconcile."""

from __future__ import annotations

import copy

from _ctrl_factories import pod, service

from podnet.controllers.endpoints import cleanup_endpoints, reconcile_endpoints

SEL = {"app": "web"}


def test_endpoints_shape_ready_and_not_ready_addresses() -> None:
    svc = service("web", SEL)
    svc["metadata"]["labels"] = {"app": "web"}
    pods = [pod("b", "10.244.2.7", node="node-2"), pod("a", "10.244.1.5"),
            pod("n", "10.244.3.4", ready=False, node="node-3"), pod("t", "10.244.3.9", deleting=True)]
    [a] = reconcile_endpoints(svc, pods, None)
    assert a.verb == "create"
    assert a.obj["metadata"] == {"name": "web", "namespace": "default", "labels": {"app": "web"}}
    assert a.obj["subsets"] == [{
        "addresses": [
            {"ip": "10.244.1.5", "nodeName": "node-1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}},
            {"ip": "10.244.2.7", "nodeName": "node-2",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}}],
        "notReadyAddresses": [
            {"ip": "10.244.3.4", "nodeName": "node-3",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "n", "uid": "uid-n"}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]


def test_no_pods_no_subsets_and_minimal_writes() -> None:
    svc = service("web", SEL)
    [a] = reconcile_endpoints(svc, [], None)
    assert "subsets" not in a.obj
    existing = copy.deepcopy(a.obj)
    existing["metadata"]["resourceVersion"] = "7"
    assert reconcile_endpoints(svc, [], existing) == []
    [u] = reconcile_endpoints(svc, [pod("a")], existing)
    assert u.verb == "update" and u.obj["metadata"]["resourceVersion"] == "7"
    assert u.obj["subsets"][0]["addresses"][0]["ip"] == "10.244.1.5"


def test_subsets_grouped_by_port_set() -> None:
    svc = service("web", SEL, ports=[{"name": "a", "port": 80, "targetPort": "http"},
                                     {"name": "b", "port": 81, "targetPort": 9000}])
    with_http = pod("x", "10.244.1.1", ports=[{"name": "http", "containerPort": 8080}])
    without = pod("y", "10.244.1.2")
    [a] = reconcile_endpoints(svc, [with_http, without], None)
    subsets = {tuple(p["port"] for p in s["ports"]): [x["ip"] for x in s["addresses"]]
               for s in a.obj["subsets"]}
    assert subsets == {(8080, 9000): ["10.244.1.1"], (9000,): ["10.244.1.2"]}


def test_selectorless_untouched_and_cleanup() -> None:
    assert reconcile_endpoints(service("bare"), [pod("a")], None) == []
    ep = {"metadata": {"name": "web", "namespace": "default", "uid": "u"}}
    [d] = cleanup_endpoints(ep)
    assert d.verb == "delete" and d.obj["metadata"]["name"] == "web"
    assert cleanup_endpoints(None) == []
