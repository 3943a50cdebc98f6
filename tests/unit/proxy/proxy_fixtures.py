"""Builders of Service / EndpointSlice / Node objects in their wire shape, and named cluster states."""

from __future__ import annotations

from typing import Any

from podnet.model.kinds import Obj
from podnet.proxy.serviceports import NodeFacts, build_service_ports
from podnet.proxy.state import RulesetState, build_state

MANAGED_BY, CONTROLLER = "endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"
NODE1 = NodeFacts("n1", ("172.31.5.11",), "10.244.0.0/16", "10.244.1.0/24",
                  ("10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"), service_cidr="10.96.0.0/12")
NODE3 = NodeFacts("n3", ("172.31.5.13",), "10.244.0.0/16", "10.244.3.0/24",
                  ("10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"), service_cidr="10.96.0.0/12")


def svc(name: str, cluster_ip: str, ports: list[dict[str, Any]], *, type_: str = "ClusterIP",
        ns: str = "default", **spec: Any) -> Obj:
    s: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
              "spec": {"type": type_, "clusterIP": cluster_ip, "ports": ports, **spec}}
    if "lb_ips" in spec:
        s["spec"].pop("lb_ips")
        s["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in spec["lb_ips"]]}}
    return s


def port(p: int, target: int | str | None = None, name: str = "", proto: str = "TCP",
         node_port: int = 0) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "port": p, "protocol": proto, "targetPort": target or p}
    if node_port:
        d["nodePort"] = node_port
    return d


def ep(ip: str, node: str, ready: bool = True, serving: bool | None = None, terminating: bool = False,
       pod: str = "") -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node,
            "conditions": {"ready": ready, "serving": ready if serving is None else serving,
                           "terminating": terminating},
            "targetRef": {"kind": "Pod", "namespace": "default",
                          "name": pod or f"pod-{ip.replace('.', '-')}"}}


def eslice(service: str, endpoints: list[dict[str, Any]], ports: list[tuple[str, int, str]],
           name: str = "", ns: str = "default") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name or f"{service}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service, MANAGED_BY: CONTROLLER}},
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports],
            "endpoints": endpoints}


def state_of(services: list[Obj], slices: list[Obj], node: NodeFacts = NODE1,
             previous: RulesetState | None = None) -> RulesetState:
    built = build_service_ports(services, slices, node)
    st = build_state(built.ports, node, previous.svc_ids if previous else None)
    st.problems = built.problems + st.problems
    return st


# ---- representative clusters -----------------------------------------------------------------
WEB_EPS = [ep("10.244.1.5", "n1"), ep("10.244.2.5", "n2"), ep("10.244.3.5", "n3")]


def cluster_ip_case() -> tuple[list[Obj], list[Obj]]:
    return ([svc("web", "10.96.0.20", [port(80, 8080, "http")])],
            [eslice("web", WEB_EPS, [("http", 8080, "TCP")])])


def node_port_case() -> tuple[list[Obj], list[Obj]]:
    return ([svc("np", "10.96.0.21", [port(80, 8080, "http", node_port=30080)], type_="NodePort",
                 externalTrafficPolicy="Cluster")],
            [eslice("np", WEB_EPS[1:], [("http", 8080, "TCP")])])


def lb_case() -> tuple[list[Obj], list[Obj]]:
    return ([svc("lb", "10.96.0.22", [port(80, 8080, "http", node_port=30081)], type_="LoadBalancer",
                 externalTrafficPolicy="Cluster", lb_ips=["172.31.5.200"],
                 loadBalancerSourceRanges=["172.31.5.0/24", "10.1.0.0/16"],
                 externalIPs=["172.31.5.210"])],
            [eslice("lb", WEB_EPS, [("http", 8080, "TCP")])])


def etp_local_case() -> tuple[list[Obj], list[Obj]]:
    return ([svc("loc", "10.96.0.23", [port(80, 8080, "http", node_port=30082)], type_="LoadBalancer",
                 externalTrafficPolicy="Local", healthCheckNodePort=32000, lb_ips=["172.31.5.201"])],
            [eslice("loc", [ep("10.244.1.6", "n1"), ep("10.244.2.6", "n2")], [("http", 8080, "TCP")])])


def itp_local_case() -> tuple[list[Obj], list[Obj]]:
    return ([svc("itp", "10.96.0.24", [port(80, 8080)], internalTrafficPolicy="Local")],
            [eslice("itp", [ep("10.244.1.7", "n1"), ep("10.244.2.7", "n2")], [("", 8080, "TCP")])])


def affinity_case() -> tuple[list[Obj], list[Obj]]:
    return ([svc("sticky", "10.96.0.25", [port(80, 8080)], sessionAffinity="ClientIP",
                 sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})],
            [eslice("sticky", WEB_EPS[:2], [("", 8080, "TCP")])])


def no_endpoints_case() -> tuple[list[Obj], list[Obj]]:
    return ([svc("empty", "10.96.0.26", [port(80, 8080), port(53, 53, "dns", "UDP")])],
            [eslice("empty", [], [])])


def multi_port_udp_named_case() -> tuple[list[Obj], list[Obj]]:
    """Two ports (TCP http named → 8080/8081 per slice, UDP dns) and terminating-only fallback."""
    return ([svc("multi", "10.96.0.27", [port(80, "web", "http"), port(53, 5353, "dns", "UDP")]),
             svc("term", "10.96.0.28", [port(80, 8080)])],
            [eslice("multi", [ep("10.244.1.8", "n1")], [("http", 8080, "TCP"), ("dns", 5353, "UDP")],
                    name="multi-a"),
             eslice("multi", [ep("10.244.2.8", "n2")], [("http", 8081, "TCP"), ("dns", 5353, "UDP")],
                    name="multi-b"),
             eslice("term", [ep("10.244.2.9", "n2", ready=False, serving=True, terminating=True),
                             ep("10.244.3.9", "n3", ready=False, serving=False, terminating=True)],
                    [("", 8080, "TCP")])])


CASES = {
    "cluster_ip": cluster_ip_case,
    "node_port": node_port_case,
    "load_balancer": lb_case,
    "etp_local": etp_local_case,
    "itp_local": itp_local_case,
    "affinity": affinity_case,
    "no_endpoints": no_endpoints_case,
    "multi_port_udp_named": multi_port_udp_named_case,
}


def all_cases() -> tuple[list[Obj], list[Obj]]:
    svcs: list[Obj] = []
    slices: list[Obj] = []
    for f in CASES.values():
        a, b = f()
        svcs += a
        slices += b
    return svcs, slices
