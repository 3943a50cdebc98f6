"""The real-kernel tests prove the fake right: one scenario on RealNetOps and on FakeNetOps, the observed
state compared after every step, and the same error class for every mistake."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from netns_tools import unique

from podnet.net.fake import FakeNetOps
from podnet.net.ops import ExistsError, InvalidError, NetOps, NotFoundError, Route
from podnet.net.real import RealNetOps

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

Step = Callable[[NetOps, str, str], Any]

SYSCTLS = ["net.ipv4.ip_forward", "net.ipv4.conf.v0.proxy_arp", "net.ipv4.neigh.v0.proxy_delay"]

STEPS: list[tuple[str, Step]] = [
    ("veth across namespaces", lambda o, a, b: o.veth_add("v0", "v1", netns=a, peer_netns=b, mtu=1400)),
    (
        "links up",
        lambda o, a, b: (
            o.link_set("v0", netns=a, up=True),
            o.link_set("v1", netns=b, up=True),
            o.link_set("lo", netns=a, up=True),
        ),
    ),
    ("address with connected route", lambda o, a, b: o.addr_add("v0", "10.9.0.1/24", netns=a)),
    ("/32 address: no connected route", lambda o, a, b: o.addr_add("v1", "10.9.1.7/32", netns=b)),
    (
        "route via gateway",
        lambda o, a, b: o.route_add(Route(dst="10.10.0.0/16", via="10.9.0.2", proto=77), netns=a),
    ),
    (
        "link-scope route",
        lambda o, a, b: o.route_add(Route(dst="10.11.0.5/32", dev="v0", scope="link", proto=78), netns=a),
    ),
    (
        "unreachable with metric",
        lambda o, a, b: o.route_add(
            Route(dst="10.12.0.0/16", type="unreachable", metric=5, proto=77), netns=a
        ),
    ),
    (
        "onlink route",
        lambda o, a, b: o.route_add(
            Route(dst="10.13.0.0/24", via="10.50.0.0", dev="v0", onlink=True, proto=77), netns=a
        ),
    ),
    (
        "replace route",
        lambda o, a, b: o.route_replace(
            Route(dst="10.10.0.0/16", via="10.9.0.3", dev="v0", proto=77), netns=a
        ),
    ),
    (
        "vxlan",
        lambda o, a, b: (
            o.vxlan_add(
                "vx0", vni=42, local="10.9.0.1", dstport=8472, netns=a, mac="0e:00:00:00:00:01", mtu=1350
            ),
            o.link_set("vx0", netns=a, up=True),
        ),
    ),
    (
        "neighbour + fdb",
        lambda o, a, b: (
            o.neigh_add("vx0", "10.50.0.0", "0e:00:00:00:00:02", netns=a),
            o.fdb_add("vx0", "0e:00:00:00:00:02", "10.9.0.2", netns=a),
        ),
    ),
    (
        "bridge + port",
        lambda o, a, b: (o.bridge_add("br0", netns=b), o.link_set("v1", netns=b, master="br0")),
    ),
    (
        "sysctls",
        lambda o, a, b: (
            o.sysctl_set("net.ipv4.ip_forward", "1", netns=a),
            o.sysctl_set("net.ipv4.conf.v0.proxy_arp", "1", netns=a),
            o.sysctl_set("net.ipv4.neigh.v0.proxy_delay", "0", netns=a),
        ),
    ),
    ("delete route", lambda o, a, b: o.route_del("10.12.0.0/16", metric=5, netns=a)),
    (
        "delete fdb + neighbour",
        lambda o, a, b: (
            o.fdb_del("vx0", "0e:00:00:00:00:02", "10.9.0.2", netns=a),
            o.neigh_del("vx0", "10.50.0.0", netns=a),
        ),
    ),
    ("link down drops its routes", lambda o, a, b: o.link_set("v0", netns=a, up=False)),
    ("link up brings the connected route back", lambda o, a, b: o.link_set("v0", netns=a, up=True)),
    ("delete address", lambda o, a, b: o.addr_del("v0", "10.9.0.1/24", netns=a)),
    ("deleting one veth end deletes the other", lambda o, a, b: o.link_del("v1", netns=b)),
]

MISTAKES: list[tuple[str, Step, type[Exception]]] = [
    ("duplicate veth", lambda o, a, b: o.veth_add("v0", "zz", netns=a, peer_netns=b), ExistsError),
    ("duplicate peer", lambda o, a, b: o.veth_add("zz", "v1", netns=a, peer_netns=b), ExistsError),
    ("name too long", lambda o, a, b: o.bridge_add("x" * 16, netns=a), InvalidError),
    ("missing link", lambda o, a, b: o.link_set("nope", netns=a, up=True), NotFoundError),
    ("missing netns", lambda o, a, b: o.link_list(netns=a + "-missing"), NotFoundError),
    ("duplicate netns", lambda o, a, b: o.netns_add(a), ExistsError),
    (
        "unreachable gateway",
        lambda o, a, b: o.route_add(Route(dst="10.14.0.0/16", via="10.99.0.1"), netns=a),
        InvalidError,
    ),
    (
        "route through a down link",
        lambda o, a, b: o.route_add(Route(dst="10.15.0.0/16", dev="d0", scope="link"), netns=a),
        InvalidError,
    ),
    (
        "duplicate route",
        lambda o, a, b: o.route_add(Route(dst="10.9.0.0/24", dev="v0", scope="link"), netns=a),
        ExistsError,
    ),
    ("delete missing route", lambda o, a, b: o.route_del("10.77.0.0/16", netns=a), NotFoundError),
    ("duplicate address", lambda o, a, b: o.addr_add("v0", "10.9.0.1/24", netns=a), ExistsError),
    ("delete missing address", lambda o, a, b: o.addr_del("v0", "10.9.9.9/24", netns=a), NotFoundError),
    ("master is not a bridge", lambda o, a, b: o.link_set("d0", netns=a, master="v0"), InvalidError),
    (
        "sysctl of a missing link",
        lambda o, a, b: o.sysctl_set("net.ipv4.conf.nope.proxy_arp", "1", netns=a),
        NotFoundError,
    ),
]


def observe(ops: NetOps, a: str, b: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for ns in (a, b):
        links = ops.link_list(netns=ns)
        state[f"{ns}/links"] = sorted(
            (lk.name, lk.kind, lk.up, lk.mtu, lk.master, lk.vni, lk.local, lk.dstport) for lk in links
        )
        state[f"{ns}/addrs"] = sorted((x.ifname, x.cidr) for x in ops.addr_list(netns=ns))
        state[f"{ns}/routes"] = sorted(r.shape() for r in ops.route_list(netns=ns))
        if any(lk.name == "vx0" for lk in links):
            state[f"{ns}/neigh"] = ops.neigh_list("vx0", netns=ns)
            state[f"{ns}/fdb"] = ops.fdb_list("vx0", netns=ns)
    names = {lk.name for lk in ops.link_list(netns=a)}
    state["sysctl"] = [
        ops.sysctl_get(k, netns=a) for k in SYSCTLS if k.count(".") == 2 or k.split(".")[3] in names
    ]
    return state


def _run(ops: NetOps, a: str, b: str) -> tuple[list[dict[str, Any]], list[str]]:
    states, errors = [], []
    ops.netns_add(a)
    ops.netns_add(b)
    try:
        states.append(observe(ops, a, b))
        for i, (_, step) in enumerate(STEPS):
            step(ops, a, b)
            states.append(observe(ops, a, b))
            if i == 2:  # a state where every mistake below is a mistake
                ops.veth_add("d0", "d1", netns=a, peer_netns=b)
                for label, bad, _ in MISTAKES:
                    try:
                        bad(ops, a, b)
                        errors.append(f"{label}: no error")
                    except Exception as e:
                        errors.append(f"{label}: {type(e).__name__}")
                ops.link_del("d0", netns=a)
    finally:
        for ns in (a, b):
            if ops.netns_exists(ns):
                ops.netns_del(ns)
    assert a not in ops.netns_list() and b not in ops.netns_list()
    return states, errors


def test_real_and_fake_agree_step_by_step() -> None:
    a, b = unique("pnt-pa-"), unique("pnt-pb-")
    real = RealNetOps()
    try:
        real_states, real_errors = _run(real, a, b)
    finally:
        real.close()
    fake_states, fake_errors = _run(FakeNetOps(), a, b)
    labels = ["start"] + [label for label, _ in STEPS]
    for label, r, f in zip(labels, real_states, fake_states, strict=True):
        assert f == r, f"after step {label!r}"
    assert fake_errors == real_errors
    assert real_errors == [f"{label}: {cls.__name__}" for label, _, cls in MISTAKES]
