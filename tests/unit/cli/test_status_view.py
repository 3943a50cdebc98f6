"""`podnet status` view built from API objects: what a user reads, without a cluster."""

from __future__ import annotations

import io

from rich.console import Console

from podnet.cli.cmd_status import render, summarize


def _node(name: str, ip: str, cidr: str, ready: bool) -> dict:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _pod(name: str, ip: str, node: str, ready: bool, ns: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": {"nodeName": node},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


SVC = {"metadata": {"name": "web", "namespace": "default"},
       "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "selector": {"app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30008}]}}
LB = {"metadata": {"name": "lb", "namespace": "default"},
      "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.21", "selector": {"app": "web"},
               "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 31000}]},
      "status": {"loadBalancer": {}}}
SLICE = {"metadata": {"name": "web-abc", "namespace": "default",
                      "labels": {"kubernetes.io/service-name": "web"}},
         "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": True}},
                       {"addresses": ["10.244.2.2"], "conditions": {"ready": False}}]}


def test_summary_counts_ready_endpoints_and_hides_kube_system() -> None:
    view = summarize(
        [_node("n2", "172.30.0.12", "10.244.2.0/24", False),
         _node("n1", "172.30.0.11", "10.244.1.0/24", True)],
        [_pod("web-1", "10.244.1.2", "n1", True), _pod("web-2", "10.244.2.2", "n2", False),
         _pod("coredns-x", "10.244.1.3", "n1", True, ns="kube-system")],
        [SVC, LB], [SLICE], all_namespaces=False)
    assert [n["name"] for n in view["nodes"]] == ["n1", "n2"]
    assert view["nodes"][1]["ready"] is False
    assert [p["name"] for p in view["pods"]] == ["web-1", "web-2"]
    web = next(s for s in view["services"] if s["name"] == "web")
    assert (web["readyEndpoints"], web["endpoints"]) == (1, 2)
    lb = next(s for s in view["services"] if s["name"] == "lb")
    assert lb["pending"] is True and lb["readyEndpoints"] == 0


def test_rendered_tables_show_addresses() -> None:
    view = summarize([_node("n1", "172.30.0.11", "10.244.1.0/24", True)],
                     [_pod("web-1", "10.244.1.2", "n1", True)], [SVC, LB], [SLICE], all_namespaces=True)
    buf = io.StringIO()
    render(view, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "172.30.0.11" in text and "10.244.1.0/24" in text
    assert "80:30008/TCP" in text
    assert "<pending>" in text
    assert "1/2" in text
