"""The pod network on FakeNetOps: what a wired pod looks like, idempotence, repair, removal."""

from __future__ import annotations

import pytest

from podnet.net.cni import add_pod_network, del_pod_network, host_if_name, plan_pod_network
from podnet.net.fake import FakeNetOps
from podnet.net.ops import PROTO_PODNET_POD, Addr, InvalidError, Link, Route


@pytest.fixture
def ops() -> FakeNetOps:
    o = FakeNetOps()
    o.netns_add("node1")
    return o


def wire(ops: FakeNetOps, ip: str = "10.244.1.5", mtu: int = 1500) -> None:
    add_pod_network(ops, node_netns="node1", pod_netns="pod-a", pod_ip=ip, host_if="pnpa", mtu=mtu)


def network_state(ops: FakeNetOps) -> tuple[list[Link], list[Route], list[Route], list[Addr]]:
    """What wiring pod-a touches: the node's links and routes, the pod's routes and addresses."""
    return (
        ops.link_list(netns="node1"),
        ops.route_list(netns="node1"),
        ops.route_list(netns="pod-a"),
        ops.addr_list(netns="pod-a"),
    )


def test_host_if_name_is_short_and_stable() -> None:
    a = host_if_name("5f0c3a3e-2b7c-4c8e-9e0f-1a2b3c4d5e6f")
    assert a == host_if_name("5f0c3a3e-2b7c-4c8e-9e0f-1a2b3c4d5e6f")
    assert len(a) <= 15 and a.startswith("pnp")
    assert a != host_if_name("5f0c3a3e-2b7c-4c8e-9e0f-1a2b3c4d5e70")


def test_a_wired_pod(ops: FakeNetOps) -> None:
    wire(ops)
    assert "pod-a" in ops.netns_list()
    eth0 = ops.link_get("eth0", netns="pod-a")
    assert eth0 is not None and eth0.up and eth0.kind == "veth"
    assert [a.cidr for a in ops.addr_list(netns="pod-a", ifname="eth0")] == ["10.244.1.5/32"]
    assert ops.link_get("lo", netns="pod-a").up  # type: ignore[union-attr]
    assert {(r.dst, r.via, r.dev, r.scope) for r in ops.route_list(netns="pod-a")} == {
        ("169.254.1.1/32", None, "eth0", "link"),
        ("0.0.0.0/0", "169.254.1.1", "eth0", "universe"),
    }
    assert Route(dst="10.244.1.5/32", dev="pnpa", scope="link", proto=PROTO_PODNET_POD) in ops.route_list(
        netns="node1"
    )
    assert ops.sysctl_get("net.ipv4.conf.pnpa.proxy_arp", netns="node1") == "1"
    assert ops.sysctl_get("net.ipv4.neigh.pnpa.proxy_delay", netns="node1") == "0"


def test_adding_twice_changes_nothing(ops: FakeNetOps) -> None:
    wire(ops)
    before = network_state(ops)
    wire(ops)
    after = network_state(ops)
    assert sorted(map(str, before[0])) == sorted(map(str, after[0]))
    assert [sorted(map(str, x)) for x in before[1:]] == [sorted(map(str, x)) for x in after[1:]]


def test_repairs_what_is_missing_and_changes_ip_and_mtu(ops: FakeNetOps) -> None:
    wire(ops)
    ops.route_del("0.0.0.0/0", netns="pod-a")
    ops.link_set("pnpa", netns="node1", up=False)  # drops the node's /32 route too
    wire(ops, ip="10.244.1.6", mtu=1450)
    assert [a.cidr for a in ops.addr_list(netns="pod-a", ifname="eth0")] == ["10.244.1.6/32"]
    assert "0.0.0.0/0" in {r.dst for r in ops.route_list(netns="pod-a")}
    assert {r.dst for r in ops.route_list(netns="node1")} == {"10.244.1.6/32"}
    assert ops.link_get("eth0", netns="pod-a").mtu == 1450  # type: ignore[union-attr]


def test_half_made_pod_is_rebuilt(ops: FakeNetOps) -> None:
    ops.netns_add("pod-a")
    ops.veth_add("eth0", "stray", netns="pod-a", peer_netns="node1")  # a foreign eth0 in the pod
    wire(ops)
    assert ops.link_get("stray", netns="node1") is None
    assert ops.link_get("pnpa", netns="node1") is not None


def test_delete_is_idempotent(ops: FakeNetOps) -> None:
    wire(ops)
    del_pod_network(ops, node_netns="node1", pod_netns="pod-a", host_if="pnpa")
    del_pod_network(ops, node_netns="node1", pod_netns="pod-a", host_if="pnpa")
    assert ops.netns_list() == ["node1"]
    assert ops.route_list(netns="node1") == []


def test_bad_input_names_the_value() -> None:
    with pytest.raises(InvalidError, match=r"invalid pod IP '10.244.1.300'"):
        plan_pod_network(node_netns=None, pod_netns="p", pod_ip="10.244.1.300", host_if="x")
    with pytest.raises(InvalidError, match=r"invalid MTU 100"):
        plan_pod_network(node_netns=None, pod_netns="p", pod_ip="10.244.1.3", host_if="x", mtu=100)


def test_current_namespace_as_node() -> None:
    ops = FakeNetOps()
    add_pod_network(ops, node_netns=None, pod_netns="pod-b", pod_ip="10.244.2.2", host_if="pnpb")
    assert ops.link_get("pnpb") is not None
    assert any(r.dst == "10.244.2.2/32" for r in ops.route_list())


def test_new_ip_on_a_live_pod_replaces_the_node_route(ops: FakeNetOps) -> None:
    wire(ops)
    wire(ops, ip="10.244.1.8")
    assert {r.dst for r in ops.route_list(netns="node1")} == {"10.244.1.8/32"}
