from __future__ import annotations

import pytest

from podnet.core import naming
from podnet.core.config import ClusterConfig
from podnet.core.layout import default_lb_pool, host_cidr, plan_nodes


def test_names_fit_the_kernel_limits() -> None:
    for cluster in ("a", "demo", "x" * 32):
        assert len(naming.bridge_name(cluster)) <= 15
        assert len(naming.node_host_if(cluster, f"{cluster}-node-12")) <= 15
    assert len(naming.pod_host_if("0f9e7c3a-1111-2222-3333-444455556666")) <= 15


def test_node_and_pod_names() -> None:
    assert naming.node_name("demo", 2) == "demo-node-2"
    assert naming.node_netns("demo", "demo-node-2") == "pn-demo-node-2"
    assert naming.node_netns("demo", "other") == "pn-demo-other"
    assert naming.pod_netns("demo", "abc-123") == "pn-demo-pod-abc-123"
    assert naming.bridge_name("a") != naming.bridge_name("b")
    assert naming.route_metric("a") != naming.route_metric("b")
    assert 1 <= naming.cluster_vni("demo") <= 0xFFFFFF


@pytest.mark.parametrize(
    ("name", "msg"),
    [
        ("", "must not be empty"),
        ("Demo", "invalid: must consist of lower case"),
        ("1abc", "start with a letter"),
        ("abc-", "end with an alphanumeric"),
        ("a" * 33, "too long: must be no more than 32 characters"),
    ],
)
def test_cluster_name_validation(name: str, msg: str) -> None:
    err = naming.validate_cluster_name(name)
    assert err is not None and msg in err


def test_valid_cluster_names() -> None:
    assert naming.validate_cluster_name("lab-2") is None


def test_layout() -> None:
    cfg = ClusterConfig(name="demo", nodes=3, node_network="172.30.4.0/24")
    nodes = plan_nodes(cfg)
    assert [(n.name, n.ip, n.netns) for n in nodes] == [
        ("demo-node-1", "172.30.4.2", "pn-demo-node-1"),
        ("demo-node-2", "172.30.4.3", "pn-demo-node-2"),
        ("demo-node-3", "172.30.4.4", "pn-demo-node-3"),
    ]
    assert host_cidr(cfg) == "172.30.4.1/24"
    assert default_lb_pool("172.30.4.0/24") == "172.30.4.200-172.30.4.250"
