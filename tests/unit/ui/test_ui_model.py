"""The JSON the page draws: nodes, pods inside nodes, Services with ready endpoint pods and counters."""

from __future__ import annotations

from typing import Any

from podnet.ui.model import build_view, events_text


def _node(name: str, ip: str, cidr: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _pod(name: str, node: str, ip: str, ready: bool = True, ns: str = "default",
         phase: str = "Running", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"podIP": ip, "phase": phase,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


SVC = {"metadata": {"name": "web", "namespace": "default"},
       "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30008}]},
       "status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.200"}]}}}
SLICE = {"metadata": {"name": "web-abc", "namespace": "default",
                      "labels": {"kubernetes.io/service-name": "web"}},
         "ports": [{"port": 8080, "protocol": "TCP"}],
         "endpoints": [
             {"addresses": ["10.244.1.5"], "conditions": {"ready": True}, "nodeName": "n1",
              "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}},
             {"addresses": ["10.244.2.5"], "conditions": {"ready": False}, "nodeName": "n2",
              "targetRef": {"kind": "Pod", "name": "web-2", "namespace": "default"}}]}
COUNTERS = {"services": [{"service": "default/web:80/TCP", "packets": 12, "bytes": 900}],
            "endpoints": [{"endpoint": "10.244.1.5:8080/tcp (default/web-1)", "packets": 7, "bytes": 500},
                          {"endpoint": "10.244.2.5:8080/tcp (default/web-2)", "packets": 5, "bytes": 400}],
            "policy_drops": [{"policy": "default/deny-all ingress", "packets": 4, "bytes": 240}],
            "errors": ["n3: no such netns"]}


def test_nodes_pods_and_services_with_their_addresses() -> None:
    v = build_view([_node("n2", "172.30.0.3", "10.244.2.0/24", ready=False),
                    _node("n1", "172.30.0.2", "10.244.1.0/24")],
                   [_pod("web-2", "n2", "10.244.2.5", ready=False), _pod("web-1", "n1", "10.244.1.5"),
                    _pod("dns", "n1", "10.244.1.2", ns="kube-system")],
                   [SVC], [SLICE], COUNTERS)
    assert v["nodes"] == [
        {"name": "n1", "ip": "172.30.0.2", "podCIDR": "10.244.1.0/24", "ready": True},
        {"name": "n2", "ip": "172.30.0.3", "podCIDR": "10.244.2.0/24", "ready": False}]
    assert [(p["name"], p["node"], p["ip"], p["ready"]) for p in v["pods"]] == [
        ("web-1", "n1", "10.244.1.5", True), ("web-2", "n2", "10.244.2.5", False)]  # kube-system hidden
    (svc,) = v["services"]
    assert svc["clusterIP"] == "10.96.0.10" and svc["lbIPs"] == ["172.30.0.200"]
    assert svc["ports"] == [{"port": 80, "protocol": "TCP", "nodePort": 30008}]
    # only the ready endpoint is drawn, with its own counter (matched by IP and target port)
    assert svc["endpoints"] == [{"ip": "10.244.1.5", "pod": "web-1", "node": "n1", "packets": 7}]
    assert svc["packets"] == 12
    assert v["counterErrors"] == ["n3: no such netns"]
    assert v["policyDrops"] == [{"policy": "default/deny-all ingress", "packets": 4}]


def test_no_counters_and_a_deleting_pod() -> None:
    v = build_view([_node("n1", "172.30.0.2", "10.244.1.0/24")],
                   [_pod("old", "n1", "10.244.1.9", deleting=True), _pod("new", "", "", phase="Pending")],
                   [SVC], [], None)
    assert [(p["name"], p["deleting"], p["phase"]) for p in v["pods"]] == [
        ("new", False, "Pending"), ("old", True, "Running")]
    assert v["services"][0]["endpoints"] == [] and v["services"][0]["packets"] == 0


def test_events_as_lines_oldest_first() -> None:
    assert events_text([]) == "<none>\n"
    evs = [{"type": "Warning", "reason": "BackOff", "count": 3, "message": "restarting <b>",
            "lastTimestamp": "2026-01-01T00:00:09Z"},
           {"type": "Normal", "reason": "Scheduled", "message": "assigned to n1",
            "lastTimestamp": "2026-01-01T00:00:01Z"}]
    assert events_text(evs) == ("2026-01-01T00:00:01Z  Normal  Scheduled  assigned to n1\n"
                                "2026-01-01T00:00:09Z  Warning  BackOff (x3)  restarting <b>\n")
