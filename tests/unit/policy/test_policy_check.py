"""`podnet policy check`'s judgement over both nodes' tables (here rendered, in the kernel read with nft)."""

from __future__ import annotations

from policy_fixtures import IPS, NAMESPACES, PODS, anp, banp, netpol, ns_sel

from podnet.cli.cmd_policy import LiveTables, judge
from podnet.core.config import ClusterConfig
from podnet.policy.compile import build_state
from podnet.policy.explain import Table, parse_table
from podnet.policy.render import render_full

NODES = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
         for n, ip in (("n1", "172.30.0.11"), ("n2", "172.30.0.12"))]


class Rendered(LiveTables):
    def __init__(self, policies: list[dict[str, object]], admins: list[dict[str, object]] | None = None):
        super().__init__(ClusterConfig(name="t"))
        self.policies = policies
        self.admins = admins or []

    def of(self, node: str) -> Table:
        st = build_state(self.policies, PODS, NAMESPACES, node, admins=self.admins)
        return parse_table(render_full(st))


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


def test_admin_policies_are_named_with_rule_and_action() -> None:
    deny = anp("deny-y", 10, ns_sel("x"), ingress=[{"name": "no-y", "action": "Deny", "from": [ns_sel("y")]}])
    base = banp(ns_sel("y"), egress=[{"name": "y-out", "action": "Allow", "to": [ns_sel("x")]}])
    v = judge(Rendered(POLICIES, [deny, base]), PODS, NODES, IPS["y/b"], IPS["x/a"], 80, "tcp")
    assert not v.allowed
    assert v.lines == [
        'policy (node n2): egress: allowed by BaselineAdminNetworkPolicy default rule "y-out" '
        '(egress[0], Allow)',
        'policy (node n1): ingress: dropped by AdminNetworkPolicy deny-y rule "no-y" (ingress[0], Deny): '
        "pod x/a, TCP port 80 from y/b"]
    admin = {"kind": "AdminNetworkPolicy", "name": "deny-y", "rule": "ingress[0]", "ruleName": "no-y",
             "action": "Deny"}
    assert v.data["steps"][1]["admin"] == admin
    assert v.data["steps"][1]["tier"] == "AdminNetworkPolicy"
