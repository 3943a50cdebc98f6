"""Two nodes and their pods wired with podnet's own functions; TCP between pods across nodes, in host-gw
and in VXLAN mode, with the server seeing the client pod's real IP (no NAT).

The node network is a bridge in a "hub" namespace of the test's own, so nothing touches the host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from netns_tools import echo_server, ns_python, tcp_peer_seen, unique

from podnet.net.cni import add_pod_network, del_pod_network, host_if_name
from podnet.net.nodenet import NodeInfo, pod_mtu, reconcile_node_routes, setup_node_netns
from podnet.net.real import RealNetOps

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@dataclass
class TwoNodes:
    ops: RealNetOps
    hub: str
    nodes: list[str]
    infos: list[NodeInfo]
    mode: str


@pytest.fixture(params=["host-gw", "vxlan"])
def two_nodes(request: pytest.FixtureRequest) -> Iterator[TwoNodes]:
    ops = RealNetOps()
    tag = unique("")
    hub = f"pnt-hub-{tag}"
    nodes = [f"pnt-n1-{tag}", f"pnt-n2-{tag}"]
    infos = [NodeInfo("n1", "172.31.250.2", "10.244.1.0/24"), NodeInfo("n2", "172.31.250.3", "10.244.2.0/24")]
    made: list[str] = []
    try:
        ops.netns_add(hub)
        made.append(hub)
        ops.bridge_add("br0", netns=hub)
        ops.link_set("br0", netns=hub, up=True)
        for i, (ns, info) in enumerate(zip(nodes, infos, strict=True)):
            made.append(ns)
            setup_node_netns(
                ops, netns=ns, host_if=f"n{i}", bridge="br0", node_ip_cidr=f"{info.ip}/24", host_netns=hub
            )
        yield TwoNodes(ops, hub, nodes, infos, request.param)
    finally:
        for ns in reversed(made):
            if ops.netns_exists(ns):
                ops.netns_del(ns)
        ops.close()


def _wire_routes(t: TwoNodes) -> None:
    for ns, me in zip(t.nodes, t.infos, strict=True):
        reconcile_node_routes(t.ops, netns=ns, mode=t.mode, my_node=me, others=t.infos, vni=4242)


def test_pods_reach_each_other_across_nodes_with_their_own_ips(two_nodes: TwoNodes) -> None:
    t = two_nodes
    _wire_routes(t)
    pods = {"a": (t.nodes[0], "10.244.1.7"), "b": (t.nodes[1], "10.244.2.9")}
    pod_ns = {k: f"pnt-p{k}-{unique('')}" for k in pods}
    try:
        for k, (node, ip) in pods.items():
            add_pod_network(
                t.ops,
                node_netns=node,
                pod_netns=pod_ns[k],
                pod_ip=ip,
                host_if=host_if_name(k),
                mtu=pod_mtu(t.mode),
            )
        with echo_server(pod_ns["b"], "10.244.2.9"):
            assert tcp_peer_seen(pod_ns["a"], "10.244.2.9") == "10.244.1.7"
        with echo_server(pod_ns["a"], "10.244.1.7", 8081):
            assert tcp_peer_seen(pod_ns["b"], "10.244.1.7", 8081) == "10.244.2.9"
        # a node reaches a pod on the other node too, with its own node IP in both modes
        with echo_server(pod_ns["b"], "10.244.2.9", 8082):
            seen = tcp_peer_seen(t.nodes[0], "10.244.2.9", 8082)
        assert seen == "172.31.250.2"
        eth0 = t.ops.link_get("eth0", netns=pod_ns["a"])
        assert eth0 is not None and eth0.mtu == (1450 if t.mode == "vxlan" else 1500)
    finally:
        for k, (node, _) in pods.items():
            del_pod_network(t.ops, node_netns=node, pod_netns=pod_ns[k], host_if=host_if_name(k))
    assert not any(ns in t.ops.netns_list() for ns in pod_ns.values())
    assert t.ops.link_get(host_if_name("a"), netns=t.nodes[0]) is None


def test_routes_follow_node_changes_and_stale_ones_go(two_nodes: TwoNodes) -> None:
    t = two_nodes
    _wire_routes(t)
    extra = NodeInfo("n3", "172.31.250.4", "10.244.3.0/24")
    reconcile_node_routes(
        t.ops, netns=t.nodes[0], mode=t.mode, my_node=t.infos[0], others=[*t.infos, extra], vni=4242
    )
    dsts = {r.dst for r in t.ops.route_list(netns=t.nodes[0]) if r.proto == 77}
    assert {"10.244.2.0/24", "10.244.3.0/24"} <= dsts
    reconcile_node_routes(t.ops, netns=t.nodes[0], mode=t.mode, my_node=t.infos[0], others=t.infos, vni=4242)
    dsts = {r.dst for r in t.ops.route_list(netns=t.nodes[0]) if r.proto == 77}
    assert "10.244.3.0/24" not in dsts and "10.244.2.0/24" in dsts
    if t.mode == "vxlan":
        fdb_dsts = {f.dst for f in t.ops.fdb_list("podnet-vxlan", netns=t.nodes[0])}
        assert fdb_dsts == {"172.31.250.3"}


AGENT_STYLE = r"""
import sys
from podnet.net.cni import add_pod_network
from podnet.net.nodenet import NodeInfo, reconcile_node_routes
from podnet.net.real import RealNetOps
ops = RealNetOps()
infos = [NodeInfo("n1", "172.31.250.2", "10.244.1.0/24"), NodeInfo("n2", "172.31.250.3", "10.244.2.0/24")]
reconcile_node_routes(ops, netns=None, mode="host-gw", my_node=infos[int(sys.argv[2])], others=infos, vni=1)
add_pod_network(ops, node_netns=None, pod_netns=sys.argv[1], pod_ip=sys.argv[3], host_if=sys.argv[4])
add_pod_network(ops, node_netns=None, pod_netns=sys.argv[1], pod_ip=sys.argv[3], host_if=sys.argv[4])
print("ok")
"""


@pytest.mark.parametrize("two_nodes", ["host-gw"], indirect=True)
def test_agent_inside_the_node_namespace_wires_pods(two_nodes: TwoNodes) -> None:
    """The node agent runs inside its node's namespace and passes node_netns=None (twice: idempotent)."""
    t = two_nodes
    pa, pb = f"pnt-pa-{unique('')}", f"pnt-pb-{unique('')}"
    try:
        for node, idx, ns, ip, hif in (
            (t.nodes[0], "0", pa, "10.244.1.5", "pnpa"),
            (t.nodes[1], "1", pb, "10.244.2.5", "pnpb"),
        ):
            r = ns_python(node, AGENT_STYLE, ns, idx, ip, hif)
            assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-800:]
        with echo_server(pb, "10.244.2.5"):
            assert tcp_peer_seen(pa, "10.244.2.5") == "10.244.1.5"
        # the pod's veth is in the node's namespace, not in the host's
        assert t.ops.link_get("pnpa", netns=t.nodes[0]) is not None
        assert t.ops.link_get("pnpa") is None
    finally:
        for node, ns, hif in ((t.nodes[0], pa, "pnpa"), (t.nodes[1], pb, "pnpb")):
            del_pod_network(t.ops, node_netns=node, pod_netns=ns, host_if=hif)


@pytest.mark.parametrize("two_nodes", ["host-gw"], indirect=True)
def test_pod_network_is_idempotent_and_repairs_a_half_made_pod(two_nodes: TwoNodes) -> None:
    t = two_nodes
    pod = f"pnt-pc-{unique('')}"
    try:
        add_pod_network(t.ops, node_netns=t.nodes[0], pod_netns=pod, pod_ip="10.244.1.9", host_if="pnpc")
        t.ops.route_del("0.0.0.0/0", netns=pod)
        t.ops.link_set("pnpc", netns=t.nodes[0], up=False)
        add_pod_network(t.ops, node_netns=t.nodes[0], pod_netns=pod, pod_ip="10.244.1.9", host_if="pnpc")
        routes = {(r.dst, r.via, r.dev) for r in t.ops.route_list(netns=pod)}
        assert routes == {("169.254.1.1/32", None, "eth0"), ("0.0.0.0/0", "169.254.1.1", "eth0")}
        assert ("10.244.1.9/32", None, "pnpc") in {
            (r.dst, r.via, r.dev) for r in t.ops.route_list(netns=t.nodes[0])
        }
        assert t.ops.sysctl_get("net.ipv4.conf.pnpc.proxy_arp", netns=t.nodes[0]) == "1"
    finally:
        del_pod_network(t.ops, node_netns=t.nodes[0], pod_netns=pod, host_if="pnpc")
