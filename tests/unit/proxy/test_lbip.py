"""LoadBalancer IP ownership: one node per IP, same answer in every agent."""

from __future__ import annotations

from podnet.core.lbpool import pool_networks as parse_pool
from podnet.proxy.lbip import lb_owner, node_is_ready, owner_of
from podnet.proxy.serviceports import EndpointInfo, ServicePortInfo


def node(name: str, ready: str = "True") -> dict[str, object]:
    return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_owner_is_stable_and_spreads() -> None:
    nodes = ["n3", "n1", "n2"]
    owners = {owner_of(f"172.31.5.{i}", nodes) for i in range(200, 230)}
    assert owners == {"n1", "n2", "n3"}
    assert owner_of("172.31.5.200", nodes) == owner_of("172.31.5.200", list(reversed(nodes)))
    assert owner_of("172.31.5.200", []) is None


def test_not_ready_nodes_do_not_carry_ips() -> None:
    sp = ServicePortInfo("default", "lb", "", "TCP", 80, "10.96.0.9", lb_ips=("172.31.5.200",))
    nodes = [node("n1", "False"), node("n2"), node("n3", "Unknown")]
    assert not node_is_ready(nodes[0])
    assert lb_owner("172.31.5.200", sp, nodes) == "n2"


def test_local_policy_puts_the_ip_on_a_node_with_local_endpoints() -> None:
    sp = ServicePortInfo("default", "lb", "", "TCP", 80, "10.96.0.9", lb_ips=("172.31.5.200",),
                         etp_local=True,
                         endpoints=(EndpointInfo("10.244.3.4", 80, "n3"),))
    for i in range(200, 220):
        assert lb_owner(f"172.31.5.{i}", sp, [node("n1"), node("n2"), node("n3")]) == "n3"


def test_pool_parsing() -> None:
    assert parse_pool("172.31.5.200-172.31.5.203") == ["172.31.5.200/30"]
    assert parse_pool("172.31.5.0/28, none") == ["172.31.5.0/28"]
    assert parse_pool("") == [] and parse_pool("bogus") == []
