"""`podnet trace` story and `podnet top` counters, from literals (no cluster)."""

from __future__ import annotations

import pytest
from proxy_fixtures import NODE1, all_cases, state_of

from podnet.cli.cmd_trace import resolve
from podnet.cli.main import CLIError
from podnet.core.config import ClusterConfig
from podnet.proxy.explain import counters_from_json, explain
from podnet.proxy.fake import FakeNft, Packet
from podnet.proxy.render import render_full


def node(name: str, ip: str, cidr: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


NODES = [node("n1", "172.31.5.11", "10.244.1.0/24"), node("n2", "172.31.5.12", "10.244.2.0/24"),
         node("n3", "172.31.5.13", "10.244.3.0/24")]
PODS = [{"metadata": {"name": "client", "namespace": "default"}, "spec": {"nodeName": "n1"},
         "status": {"podIP": "10.244.1.40"}},
        {"metadata": {"name": "web-b", "namespace": "default"}, "spec": {"nodeName": "n2"},
         "status": {"podIP": "10.244.2.5"}}]


def fake() -> FakeNft:
    svcs, slices = all_cases()
    f = FakeNft()
    f.apply(render_full(state_of(svcs, slices, NODE1)))
    return f


def test_story_of_pod_to_cluster_ip() -> None:
    res = fake().trace(Packet("10.244.1.40", "10.96.0.20", 80), NODE1.ips)
    ex = explain(res, src="10.244.1.40", dst="10.96.0.20", port=80, proto="tcp", entry_node="n1",
                 pods=PODS, nodes=NODES)
    text = "\n".join(ex.lines)
    assert "TCP connection from pod default/client (10.244.1.40) to 10.96.0.20:80, entering node n1" in text
    assert "Service port matched: default/web:http/TCP clusterIP" in text
    assert "DNAT 10.96.0.20:80 → one of 3 endpoints, chosen at random per connection:" in text
    assert ("  - 10.244.2.5:8080 default/web-b on node n2: no SNAT: the server sees the client address"
            in ex.lines)
    assert ("      route: 10.244.2.5 is in 10.244.2.0/24 (podCIDR of n2): routed to n2 via 172.31.5.12"
            in ex.lines)
    assert [c["node"] for c in ex.data["candidates"]] == ["n1", "n2", "n3"]


def test_story_of_rejection_and_direct_pod_traffic() -> None:
    f = fake()
    res = f.trace(Packet("10.244.1.40", "10.96.0.26", 80), NODE1.ips)
    ex = explain(res, src="10.244.1.40", dst="10.96.0.26", port=80, proto="tcp", entry_node="n1",
                 pods=PODS, nodes=NODES)
    assert "REJECTED at once (tcp reset): the Service has no ready endpoints" in ex.lines
    res = f.trace(Packet("10.244.1.40", "10.244.2.5", 8080), NODE1.ips)
    ex = explain(res, src="10.244.1.40", dst="10.244.2.5", port=8080, proto="tcp", entry_node="n1",
                 pods=PODS, nodes=NODES)
    assert "No Service matched: pod-to-pod traffic goes direct, no NAT (pod default/web-b)" in ex.lines


def test_counters_from_kernel_json_shape() -> None:
    doc = {"nftables": [
        {"set": {"name": "svc-counters", "elem": [
            {"elem": {"val": 7, "comment": "default/web:http/TCP",
                      "counter": {"packets": 10, "bytes": 900}}}]}},
        {"set": {"name": "ep-counters", "elem": [
            {"elem": {"val": {"concat": ["10.244.1.5", "tcp", 8080]}, "comment": "default/web-a",
                      "counter": {"packets": 4, "bytes": 300}}}]}},
        {"map": {"name": "frontends", "elem": []}}]}
    svcs, eps = counters_from_json(doc)
    assert svcs == {"default/web:http/TCP": (10, 900)}
    assert eps == {"10.244.1.5:8080/tcp (default/web-a)": (4, 300)}


def test_resolve_sources_and_destinations() -> None:
    cfg = ClusterConfig(name="t", node_network="172.31.5.0/24")
    svcs = [{"metadata": {"name": "web", "namespace": "default"},
             "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}}]
    assert resolve("client", "web", NODES, PODS, svcs, cfg) == ("10.244.1.40", "n1", "10.96.0.20", 80, "in")
    assert resolve("n2", "10.96.0.20:81", NODES, PODS, svcs, cfg) == ("172.31.5.12", "n2", "10.96.0.20", 81,
                                                                     "local")
    assert resolve("outside", "172.31.5.13:30080", NODES, PODS, svcs, cfg) == (
        "172.31.5.1", "n3", "172.31.5.13", 30080, "in")
    with pytest.raises(CLIError, match="no pod or node of that name"):
        resolve("ghost", "web", NODES, PODS, svcs, cfg)
    with pytest.raises(CLIError, match="invalid port 'x'"):
        resolve("client", "web:x", NODES, PODS, svcs, cfg)
    with pytest.raises(CLIError, match="'nothing' is not an IPv4 address"):
        resolve("client", "nothing", NODES, PODS, svcs, cfg)


@pytest.mark.parametrize(("dst", "port", "routes", "verdict", "line"), [
    ("10.96.0.20", 81, None, "reject",
     "REJECTED at once (tcp reset): the ClusterIP has no Service port with this protocol and port"),
    ("10.96.9.9", 80, None, "drop", "DROPPED: no Service holds this address of the service CIDR"),
    ("192.0.2.9", 80, ("10.244.0.0/16", "10.96.0.0/12"), "unreachable",
     "NO ROUTE on node n1: the node has no route for the destination (the client gets "
     "'Network is unreachable')"),
    ("10.96.0.20", 80, ("10.244.0.0/16", "10.96.0.0/12"), "accept", ""),
])
def test_story_of_each_verdict(dst: str, port: int, routes: tuple[str, ...] | None, verdict: str,
                               line: str) -> None:
    res = fake().trace(Packet("10.244.1.40", dst, port), NODE1.ips, routes)
    ex = explain(res, src="10.244.1.40", dst=dst, port=port, proto="tcp", entry_node="n1", pods=PODS,
                 nodes=NODES)
    assert ex.data["verdict"] == verdict
    if line:
        assert line in ex.lines


def test_a_node_without_a_route_for_the_service_cidr_cannot_connect() -> None:
    f = fake()
    no_svc_route = ("10.244.1.5/32", "10.244.2.0/24", "10.244.3.0/24", "172.31.5.0/24")  # before the fix
    res = f.trace(Packet("172.31.5.11", "10.96.0.20", 80, entry="local"), NODE1.ips, no_svc_route)
    assert (res.verdict, [str(s) for s in res.steps]) == (
        "unreachable", ["[routing] no route to 10.96.0.20  (Network is unreachable)"])
    routes = (*no_svc_route, "10.96.0.0/12")
    res = f.trace(Packet("172.31.5.11", "10.96.0.20", 80, entry="local"), NODE1.ips, routes)
    assert res.verdict == "accept" and res.dnat is not None
