"""FakeNetOps follows the kernel's rules (the kernel suite checks the same scenario on RealNetOps)."""

from __future__ import annotations

import pytest

from podnet.net.fake import FakeNetOps
from podnet.net.ops import PROTO_KERNEL, ExistsError, InvalidError, NotFoundError, Route


@pytest.fixture
def ops() -> FakeNetOps:
    o = FakeNetOps()
    o.netns_add("a")
    o.netns_add("b")
    o.veth_add("v0", "v1", netns="a", peer_netns="b")
    o.link_set("v0", netns="a", up=True)
    return o


def test_new_namespace_has_only_a_loopback_that_is_down() -> None:
    o = FakeNetOps()
    o.netns_add("x")
    links = o.link_list(netns="x")
    assert [(lk.name, lk.kind, lk.up) for lk in links] == [("lo", "loopback", False)]
    assert o.addr_list(netns="x") == []
    o.link_set("lo", netns="x", up=True)
    assert [a.cidr for a in o.addr_list(netns="x")] == ["127.0.0.1/8"]
    assert o.route_list(netns="x") == []  # loopback routes live in the local table


def test_names_are_checked() -> None:
    o = FakeNetOps()
    with pytest.raises(InvalidError, match=r"invalid interface name 'abcdefghijklmnop': must be 1-15"):
        o.bridge_add("abcdefghijklmnop")
    with pytest.raises(InvalidError, match=r"network namespace name"):
        o.netns_add("a/b")
    o.netns_add("x")
    with pytest.raises(ExistsError, match=r"network namespace 'x' already exists"):
        o.netns_add("x")
    with pytest.raises(NotFoundError, match=r"network namespace 'nope' does not exist"):
        o.link_list(netns="nope")


def test_duplicate_link_names_fail_per_namespace(ops: FakeNetOps) -> None:
    with pytest.raises(ExistsError, match=r"link 'v0' already exists in network namespace 'a'"):
        ops.veth_add("v0", "x1", netns="a", peer_netns="b")
    ops.veth_add("v0", "x1", netns="b", peer_netns="a")  # same name in another namespace is fine


def test_address_on_up_link_adds_connected_route_and_down_removes_routes(ops: FakeNetOps) -> None:
    ops.addr_add("v0", "10.1.0.1/24", netns="a")
    ops.route_add(Route(dst="10.2.0.0/16", via="10.1.0.2"), netns="a")
    routes = {(r.dst, r.via, r.dev, r.proto) for r in ops.route_list(netns="a")}
    assert routes == {("10.1.0.0/24", None, "v0", PROTO_KERNEL), ("10.2.0.0/16", "10.1.0.2", "v0", 3)}
    ops.link_set("v0", netns="a", up=False)
    assert ops.route_list(netns="a") == []
    ops.link_set("v0", netns="a", up=True)
    assert [r.dst for r in ops.route_list(netns="a")] == ["10.1.0.0/24"]


def test_gateway_must_be_on_link_unless_onlink(ops: FakeNetOps) -> None:
    with pytest.raises(InvalidError, match=r"gateway 10.9.9.9 is unreachable"):
        ops.route_add(Route(dst="10.2.0.0/16", via="10.9.9.9"), netns="a")
    ops.route_add(Route(dst="10.2.0.0/16", via="10.9.9.9", dev="v0", onlink=True), netns="a")
    with pytest.raises(InvalidError, match=r"'onlink' needs a device"):
        ops.route_add(Route(dst="10.3.0.0/16", via="10.9.9.9", onlink=True), netns="a")


def test_route_through_down_link_fails_and_duplicates_fail(ops: FakeNetOps) -> None:
    with pytest.raises(InvalidError, match=r"link 'v1' in network namespace 'b' is down"):
        ops.route_add(Route(dst="10.5.0.5/32", dev="v1", scope="link"), netns="b")
    ops.route_add(Route(dst="10.5.0.5/32", dev="v0", scope="link"), netns="a")
    with pytest.raises(ExistsError, match=r"route to 10.5.0.5/32 \(metric 0\) already exists"):
        ops.route_add(Route(dst="10.5.0.5/32", dev="v0", scope="link"), netns="a")
    ops.route_add(Route(dst="10.5.0.5/32", dev="v0", scope="link", metric=7), netns="a")  # other metric: ok
    ops.route_del("10.5.0.5/32", metric=7, netns="a")
    assert [r.metric for r in ops.route_list(netns="a")] == [0]
    with pytest.raises(NotFoundError):
        ops.route_del("10.6.0.0/16", netns="a")


def test_unreachable_routes_take_no_device() -> None:
    o = FakeNetOps()
    o.route_add(Route(dst="10.244.0.0/16", type="unreachable", metric=3000))
    assert o.route_list()[0].type == "unreachable"
    with pytest.raises(InvalidError, match=r"takes no device"):
        o.route_add(Route(dst="10.96.0.0/12", type="unreachable", dev="lo"))
    with pytest.raises(InvalidError, match=r"invalid route destination '10.244.0.1/16'"):
        o.route_add(Route(dst="10.244.0.1/16", type="unreachable"))


def test_deleting_a_veth_end_or_namespace_deletes_the_peer(ops: FakeNetOps) -> None:
    ops.link_del("v1", netns="b")
    assert ops.link_get("v0", netns="a") is None
    ops.veth_add("v0", "v1", netns="a", peer_netns="b")
    ops.netns_del("b")
    assert ops.link_get("v0", netns="a") is None
    assert ops.netns_list() == ["a"]


def test_bridge_ports_and_mtu() -> None:
    o = FakeNetOps()
    o.bridge_add("br0")
    o.veth_add("h0", "p0", mtu=1400)
    with pytest.raises(InvalidError, match=r"'h0' in the current network namespace is not a bridge"):
        o.link_set("p0", master="h0")
    o.link_set("h0", master="br0")
    br = o.link_get("br0")
    assert br is not None and br.mtu == 1400
    assert o.link_get("h0").master == "br0"  # type: ignore[union-attr]
    o.link_del("h0")
    assert o.link_get("br0").mtu == 1500  # type: ignore[union-attr]


def test_neigh_fdb_and_sysctls(ops: FakeNetOps) -> None:
    ops.vxlan_add("vx", vni=7, local="10.1.0.1", dstport=8472, netns="a", mac="0e:70:0a:01:00:01")
    ops.neigh_add("vx", "10.244.2.0", "0E:70:0A:01:00:02", netns="a")
    with pytest.raises(ExistsError):
        ops.neigh_add("vx", "10.244.2.0", "0e:70:0a:01:00:02", netns="a")
    ops.fdb_add("vx", "0e:70:0a:01:00:02", "10.1.0.2", netns="a")
    assert ops.neigh_list("vx", netns="a")[0].mac == "0e:70:0a:01:00:02"
    assert [f.dst for f in ops.fdb_list("vx", netns="a")] == ["10.1.0.2"]
    with pytest.raises(InvalidError, match=r"invalid VXLAN id 0"):
        ops.vxlan_add("vy", vni=0, local="10.1.0.1", dstport=8472, netns="a")
    assert ops.sysctl_get("net.ipv4.conf.v0.proxy_arp", netns="a") == "0"
    ops.sysctl_set("net.ipv4.conf.v0.proxy_arp", "1", netns="a")
    assert ops.sysctl_get("net.ipv4.conf.v0.proxy_arp", netns="a") == "1"
    with pytest.raises(NotFoundError, match=r"sysctl net.ipv4.conf.zz.proxy_arp does not exist"):
        ops.sysctl_set("net.ipv4.conf.zz.proxy_arp", "1", netns="a")
    ops.link_del("v0", netns="a")
    with pytest.raises(NotFoundError):
        ops.sysctl_get("net.ipv4.conf.v0.proxy_arp", netns="a")
