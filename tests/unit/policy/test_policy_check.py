"""`podnet policy check`'s judgement over both nodes' tables (here rendered, in the kernel read with nft)."""

from __future__ import annotations

from policy_fixtures import IPS, NAMESPACES, PODS, netpol

from podnet.cli.cmd_policy import LiveTables, judge
from podnet.core.config import ClusterConfig
from podnet.policy.compile import build_state
from podnet.policy.explain import Table, parse_table
from podnet.policy.render import render_full

NODES = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
         for n, ip in (("n1", "172.30.0.11"), ("n2", "172.30.0.12"))]


class Rendered(LiveTables):
    def __init__(self, policies: list[dict[str, object]]):
        super().__init__(ClusterConfig(name="t"))
        self.policies = policies

    def of(self, node: str) -> Table:
        return parse_table(render_full(build_state(self.policies, PODS, NAMESPACES, node)))


POLICIES = [netpol("x", "deny-all", policyTypes=["Ingress", "Egress"]),
            netpol("x", "from-y", podSelector={"matchLabels": {"pod": "a"}},
                   ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])]


def test_allowed_names_the_rule_on_the_receivers_node() -> None:
    v = judge(Rendered(POLICIES), PODS, NODES, IPS["y/b"], IPS["x/a"], 80, "tcp")
    assert v.allowed
    assert v.lines == ["policy (node n2): egress: allowed: pod y/b is selected by no policy for egress",
                       "policy (node n1): ingress: allowed by x/from-y ingress[0]"]


def test_dropped_names_the_policies_and_the_direction() -> None:
    v = judge(Rendered(POLICIES), PODS, NODES, IPS["x/a"], IPS["y/b"], 53, "udp")
    assert not v.allowed
    assert v.lines[0] == ("policy (node n1): dropped: pod x/a is selected by policies x/deny-all in "
                          "direction egress and none allows UDP port 53 to y/b")
    assert v.data["steps"][0]["policies"] == ["x/deny-all"]


def test_own_node_and_self_are_allowed() -> None:
    v = judge(Rendered(POLICIES), PODS, NODES, "172.30.0.11", IPS["x/a"], 80, "tcp")
    assert v.allowed and "own node" in v.lines[0]
    v = judge(Rendered(POLICIES), PODS, NODES, IPS["x/a"], IPS["x/a"], 80, "tcp")
    assert v.allowed and "reaching itself" in v.lines[0]
    v = judge(Rendered(POLICIES), PODS, NODES, "172.30.0.12", IPS["x/a"], 80, "tcp")
    assert not v.allowed  # another node is judged like any other address
