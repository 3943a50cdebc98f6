"""Node routes: planning (pure) and reconcile on FakeNetOps, in host-gw and vxlan mode."""

from __future__ import annotations

import pytest

from podnet.net.fake import FakeNetOps
from podnet.net.nodenet import (
    VXLAN_IF,
    NodeInfo,
    api_via,
    plan_node_network,
    pod_mtu,
    reconcile_node_routes,
    setup_node_netns,
    vtep_mac,
)
from podnet.net.ops import PROTO_PODNET_NODE, InvalidError, Route

N1 = NodeInfo("n1", "172.30.0.2", "10.244.1.0/24")
N2 = NodeInfo("n2", "172.30.0.3", "10.244.2.0/24")
N3 = NodeInfo("n3", "172.30.0.4", "10.244.3.0/24")


@pytest.fixture
def ops() -> FakeNetOps:
    o = FakeNetOps()
    o.bridge_add("br0")
    o.link_set("br0", up=True)
    o.netns_add("node1")
    setup_node_netns(o, netns="node1", host_if="h1", bridge="br0", node_ip_cidr="172.30.0.2/24")
    return o


def ours(o: FakeNetOps) -> set[tuple[str, str | None, str | None, bool]]:
    return {
        (r.dst, r.via, r.dev, r.onlink) for r in o.route_list(netns="node1") if r.proto == PROTO_PODNET_NODE
    }


def test_setup_node_netns(ops: FakeNetOps) -> None:
    assert ops.link_get("h1").master == "br0"  # type: ignore[union-attr]
    assert [a.cidr for a in ops.addr_list(netns="node1", ifname="eth0")] == ["172.30.0.2/24"]
    assert ops.sysctl_get("net.ipv4.ip_forward", netns="node1") == "1"
    assert ours(ops) == {("169.254.1.1/32", None, "eth0", False)}
    setup_node_netns(
        ops, netns="node1", host_if="h1", bridge="br0", node_ip_cidr="172.30.0.2/24"
    )  # idempotent
    assert len(ops.addr_list(netns="node1", ifname="eth0")) == 1


def test_host_gw_plan_is_one_route_per_other_node() -> None:
    plan = plan_node_network(
        mode="host-gw",
        my_node=N1,
        others=[N1, N2, N3, NodeInfo("n4", "172.30.0.5", "")],
        vni=1,
        uplink="eth0",
    )
    assert plan.vxlan is None
    assert [(r.dst, r.via, r.dev) for r in plan.routes] == [
        ("169.254.1.1/32", None, "eth0"),
        ("10.244.2.0/24", "172.30.0.3", "eth0"),
        ("10.244.3.0/24", "172.30.0.4", "eth0"),
    ]


def test_vxlan_plan() -> None:
    plan = plan_node_network(mode="vxlan", my_node=N1, others=[N2], vni=42, uplink="eth0")
    assert plan.vxlan is not None
    assert (plan.vxlan.vni, plan.vxlan.local, plan.vxlan.addr, plan.vxlan.mtu) == (
        42,
        "172.30.0.2",
        "10.244.1.0/32",
        1450,
    )
    assert plan.routes[1] == Route(
        dst="10.244.2.0/24", via="10.244.2.0", dev=VXLAN_IF, onlink=True, proto=PROTO_PODNET_NODE,
        src="172.30.0.2",
    )
    assert [(n.ip, n.mac) for n in plan.neighs] == [("10.244.2.0", "0e:70:ac:1e:00:03")]
    assert [(f.mac, f.dst) for f in plan.fdbs] == [("0e:70:ac:1e:00:03", "172.30.0.3")]


def test_vtep_mac_and_mtu() -> None:
    assert vtep_mac("10.0.0.1") == "0e:70:0a:00:00:01"
    assert pod_mtu("vxlan") == 1450 and pod_mtu("host-gw") == 1500


def test_bad_input() -> None:
    with pytest.raises(InvalidError, match=r"unsupported network mode 'bgp': must be one of host-gw, vxlan"):
        plan_node_network(mode="bgp", my_node=N1, others=[], vni=1, uplink="eth0")
    with pytest.raises(InvalidError, match=r"node 'x'"):
        plan_node_network(
            mode="host-gw", my_node=N1, others=[NodeInfo("x", "1.2.3", "")], vni=1, uplink="eth0"
        )
    with pytest.raises(InvalidError, match=r"invalid VXLAN id 0"):
        plan_node_network(mode="vxlan", my_node=N1, others=[], vni=0, uplink="eth0")


def test_reconcile_host_gw_adds_and_removes(ops: FakeNetOps) -> None:
    reconcile_node_routes(ops, netns="node1", mode="host-gw", my_node=N1, others=[N1, N2, N3], vni=1)
    assert ours(ops) == {
        ("169.254.1.1/32", None, "eth0", False),
        ("10.244.2.0/24", "172.30.0.3", "eth0", False),
        ("10.244.3.0/24", "172.30.0.4", "eth0", False),
    }
    moved = NodeInfo("n2", "172.30.0.9", "10.244.2.0/24")
    reconcile_node_routes(ops, netns="node1", mode="host-gw", my_node=N1, others=[N1, moved], vni=1)
    assert ours(ops) == {
        ("169.254.1.1/32", None, "eth0", False),
        ("10.244.2.0/24", "172.30.0.9", "eth0", False),
    }


def test_reconcile_leaves_foreign_routes_alone(ops: FakeNetOps) -> None:
    ops.route_add(Route(dst="10.244.9.0/24", via="172.30.0.77"), netns="node1")  # not podnet's (proto boot)
    reconcile_node_routes(ops, netns="node1", mode="host-gw", my_node=N1, others=[N1], vni=1)
    assert "10.244.9.0/24" in {r.dst for r in ops.route_list(netns="node1")}


def test_reconcile_vxlan_then_back_to_host_gw(ops: FakeNetOps) -> None:
    reconcile_node_routes(ops, netns="node1", mode="vxlan", my_node=N1, others=[N1, N2, N3], vni=9)
    vx = ops.link_get(VXLAN_IF, netns="node1")
    assert vx is not None and vx.up and vx.vni == 9 and vx.local == "172.30.0.2" and vx.dstport == 8472
    assert ("10.244.3.0/24", "10.244.3.0", VXLAN_IF, True) in ours(ops)
    assert {f.dst for f in ops.fdb_list(VXLAN_IF, netns="node1")} == {"172.30.0.3", "172.30.0.4"}
    reconcile_node_routes(ops, netns="node1", mode="vxlan", my_node=N1, others=[N1, N2], vni=9)
    assert {f.dst for f in ops.fdb_list(VXLAN_IF, netns="node1")} == {"172.30.0.3"}
    assert {n.ip for n in ops.neigh_list(VXLAN_IF, netns="node1")} == {"10.244.2.0"}
    reconcile_node_routes(ops, netns="node1", mode="vxlan", my_node=N1, others=[N1, N2], vni=10)  # new VNI
    assert ops.link_get(VXLAN_IF, netns="node1").vni == 10  # type: ignore[union-attr]
    reconcile_node_routes(ops, netns="node1", mode="host-gw", my_node=N1, others=[N1, N2], vni=10)
    assert ops.link_get(VXLAN_IF, netns="node1") is None
    assert ours(ops) == {
        ("169.254.1.1/32", None, "eth0", False),
        ("10.244.2.0/24", "172.30.0.3", "eth0", False),
    }


def test_reconcile_without_node_ip_says_so(ops: FakeNetOps) -> None:
    with pytest.raises(Exception, match=r"no link holds the node IP 172.30.0.99"):
        reconcile_node_routes(
            ops, netns="node1", mode="host-gw", my_node=NodeInfo("n", "172.30.0.99", ""), others=[], vni=1
        )


def test_service_cidr_is_routed_out_of_the_uplink_from_the_node_ip(ops: FakeNetOps) -> None:
    for mode in ("host-gw", "vxlan"):
        reconcile_node_routes(ops, netns="node1", mode=mode, my_node=N1, others=[N1, N2], vni=9,
                              service_cidr="10.96.0.0/12")
        got = [r for r in ops.route_list(netns="node1") if r.dst == "10.96.0.0/12"]
        assert got == [Route(dst="10.96.0.0/12", dev="eth0", scope="link", proto=PROTO_PODNET_NODE,
                             src="172.30.0.2")]
    reconcile_node_routes(ops, netns="node1", mode="host-gw", my_node=N1, others=[N1, N2], vni=9)
    assert "10.96.0.0/12" not in {r.dst for r in ops.route_list(netns="node1")}  # none given: it goes


def test_the_api_advertise_address_is_routed_through_the_host_when_given() -> None:
    """`podnet up --listen` on an address outside the node network: the creating machine's nodes reach it
    through the host's bridge address (one /32, from the node IP); joined machines get no such route."""
    plan = plan_node_network(mode="host-gw", my_node=N1, others=[N2], vni=1, uplink="eth0",
                             api_via=("192.0.2.7", "172.30.0.1"))
    assert Route(dst="192.0.2.7/32", via="172.30.0.1", dev="eth0", proto=PROTO_PODNET_NODE,
                 src="172.30.0.2") in plan.routes
    plain = plan_node_network(mode="host-gw", my_node=N1, others=[N2], vni=1, uplink="eth0")
    assert not [r for r in plain.routes if r.dst == "192.0.2.7/32"]


def test_reconcile_adds_and_removes_the_api_route(ops: FakeNetOps) -> None:
    reconcile_node_routes(ops, netns="node1", mode="host-gw", my_node=N1, others=[N2], vni=1,
                          api_via=("192.0.2.7", "172.30.0.1"))
    assert ("192.0.2.7/32", "172.30.0.1", "eth0", False) in ours(ops)
    reconcile_node_routes(ops, netns="node1", mode="host-gw", my_node=N1, others=[N2], vni=1)
    assert not [r for r in ours(ops) if r[0] == "192.0.2.7/32"]


def test_which_nodes_need_the_api_route() -> None:
    assert api_via("192.0.2.7", "172.30.0.0/24", "172.30.0.2") == ("192.0.2.7", "172.30.0.1")
    assert api_via("172.30.0.1", "172.30.0.0/24", "172.30.0.2") is None  # --listen on the bridge itself
    assert api_via("", "172.30.0.0/24", "172.30.0.2") is None  # no --listen: the host's bridge address
    assert api_via("192.0.2.7", "", "172.28.1.11") is None  # a joined machine: no node network of ours
