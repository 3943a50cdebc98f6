from __future__ import annotations

import pytest

from podnet.cluster.hostnet import (
    AddressPlanError,
    check_ranges,
    choose_node_network,
    describe_route,
    parse_lb_pool,
    parse_port_range,
)
from podnet.net.ops import PROTO_PODNET_NODE, Route

HOST = [
    Route(dst="0.0.0.0/0", via="192.0.2.1", dev="eth0"),
    Route(dst="192.0.2.0/24", dev="eth0", scope="link"),
    Route(dst="172.30.0.0/24", dev="docker0", scope="link"),
]


def test_collision_names_both_routes() -> None:
    routes = [*HOST, Route(dst="10.244.0.0/16", via="192.0.2.9", dev="eth0")]
    with pytest.raises(AddressPlanError) as e:
        check_ranges(
            pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", node_network="172.30.1.0/24", routes=routes
        )
    assert str(e.value) == (
        "the pod CIDR 10.244.0.0/16 collides with the host route '10.244.0.0/16 via "
        "192.0.2.9 dev eth0': choose another range with --pod-cidr"
    )


def test_default_route_does_not_count_and_other_clusters_guards_are_shared() -> None:
    guard = Route(dst="10.244.0.0/16", type="unreachable", metric=3001, proto=PROTO_PODNET_NODE)
    check_ranges(
        pod_cidr="10.244.0.0/16",
        service_cidr="10.96.0.0/12",
        node_network="172.30.1.0/24",
        routes=[*HOST, guard],
    )
    with pytest.raises(
        AddressPlanError,
        match=r"the node network 10.244.5.0/24 collides with the host route "
        r"'unreachable 10.244.0.0/16 metric 3001'",
    ):
        check_ranges(
            pod_cidr="10.240.0.0/16",
            service_cidr="10.96.0.0/12",
            node_network="10.244.5.0/24",
            routes=[*HOST, guard],
        )


def test_ranges_must_not_overlap_each_other() -> None:
    with pytest.raises(
        AddressPlanError,
        match=r"the pod CIDR 10.96.0.0/16 \(--pod-cidr\) overlaps the service "
        r"CIDR 10.96.0.0/12 \(--service-cidr\)",
    ):
        check_ranges(
            pod_cidr="10.96.0.0/16", service_cidr="10.96.0.0/12", node_network="172.30.1.0/24", routes=HOST
        )
    with pytest.raises(AddressPlanError, match=r"invalid pod CIDR '10.244.0.1/16' \(--pod-cidr\)"):
        check_ranges(
            pod_cidr="10.244.0.1/16", service_cidr="10.96.0.0/12", node_network="172.30.1.0/24", routes=HOST
        )


def test_choose_node_network_skips_used_ranges() -> None:
    assert choose_node_network(HOST) == "172.30.1.0/24"
    assert choose_node_network(HOST, avoid=["172.30.1.0/24"]) == "172.30.2.0/24"


def test_describe_route() -> None:
    assert describe_route(Route(dst="0.0.0.0/0", via="1.2.3.4", dev="eth0")) == "default via 1.2.3.4 dev eth0"


def test_port_range_and_lb_pool() -> None:
    assert parse_port_range("30000-32767") == (30000, 32767)
    with pytest.raises(AddressPlanError, match=r"invalid node port range '32767-30000'"):
        parse_port_range("32767-30000")
    assert parse_lb_pool("172.30.1.200-172.30.1.210", "172.30.1.0/24") == "172.30.1.200-172.30.1.210"
    assert parse_lb_pool("none", "172.30.1.0/24") == "none"
    with pytest.raises(AddressPlanError, match=r"must lie on the node network 172.30.1.0/24"):
        parse_lb_pool("10.0.0.1-10.0.0.5", "172.30.1.0/24")
    with pytest.raises(
        AddressPlanError,
        match=r"invalid LoadBalancer pool 'x' \(--lb-pool\): expected "
        r"FIRST-LAST, e.g. 172.30.1.200-172.30.1.250, or 'none'",
    ):
        parse_lb_pool("x", "172.30.1.0/24")
