"""NetworkPolicy semantics through the rendered rules: build the state of both nodes, render it, read
the text back as the kernel's table and judge packets through it (explain.judge_direction), so the
reachability below is what the nft rules say, checked against Kubernetes' rules for each case."""

from __future__ import annotations

from typing import Any

import pytest
from policy_fixtures import IPS, NAMESPACES, PODS, netpol, pod

from podnet.policy.compile import build_state, cidr_ranges, port_intervals
from podnet.policy.explain import Packet, describe, is_self, judge_direction, parse_table
from podnet.policy.render import render_full

Obj = dict[str, Any]
NAMES = sorted(IPS)


def node_of(name: str) -> str:
    return "n1" if name.endswith("/a") else "n2"


def reach(policies: list[Obj], proto: str = "tcp", port: int = 80, pods: list[Obj] | None = None,
          namespaces: list[Obj] | None = None, admins: list[Obj] | None = None) -> set[tuple[str, str]]:
    pods = pods if pods is not None else PODS
    namespaces = namespaces if namespaces is not None else NAMESPACES
    tables = {n: parse_table(render_full(build_state(policies, pods, namespaces, n, admins=admins or [])))
              for n in ("n1", "n2")}
    ok = set()
    for s in NAMES:
        for d in NAMES:
            pkt = Packet(IPS[s], IPS[d], proto, port)
            if s == d and is_self(tables[node_of(s)], pkt):
                ok.add((s, d))
                continue
            eg = judge_direction(tables[node_of(s)], "egress", pkt)
            ing = judge_direction(tables[node_of(d)], "ingress", pkt)
            if eg.verdict != "dropped" and ing.verdict != "dropped":
                ok.add((s, d))
    return ok


def expect(pred: Any) -> set[tuple[str, str]]:
    return {(s, d) for s in NAMES for d in NAMES if s == d or pred(s, d)}


def ns_of(n: str) -> str:
    return n.split("/")[0]


def test_no_policy_everything_reaches_everything() -> None:
    assert reach([]) == expect(lambda s, d: True)


def test_deny_all_ingress_and_egress() -> None:
    assert reach([netpol("x", "deny")]) == expect(lambda s, d: ns_of(d) != "x")
    eg = netpol("x", "deny", policyTypes=["Egress"])
    assert reach([eg]) == expect(lambda s, d: ns_of(s) != "x")


def test_same_namespace_and_namespace_label() -> None:
    same = netpol("x", "same", ingress=[{"from": [{"podSelector": {}}]}])
    assert reach([same]) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) == "x")
    by_label = netpol("x", "lbl", podSelector={"matchLabels": {"pod": "a"}},
                      ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])
    assert reach([by_label]) == expect(lambda s, d: d != "x/a" or ns_of(s) == "y")


def test_and_versus_or() -> None:
    peer_and = netpol("x", "and", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {"matchLabels": {"pod": "b"}}}]}])
    assert reach([peer_and]) == expect(lambda s, d: d != "x/a" or s == "y/b")
    peer_or = netpol("x", "or", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
        {"podSelector": {"matchLabels": {"pod": "b"}}}]}])
    assert reach([peer_or]) == expect(lambda s, d: d != "x/a" or ns_of(s) == "y" or s == "x/b")


def test_ip_block_except() -> None:
    p = netpol("x", "ipb", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
        {"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{IPS['y/b']}/32"]}}]}])
    assert reach([p]) == expect(lambda s, d: d != "x/a" or s != "y/b")


def test_ports_named_numbered_ranges_and_protocols() -> None:
    named = netpol("x", "named", podSelector={"matchLabels": {"pod": "a"}},
                   ingress=[{"ports": [{"port": "serve-81-tcp"}]}])
    assert reach([named], "tcp", 81) == expect(lambda s, d: True)
    assert reach([named], "tcp", 80) == expect(lambda s, d: d != "x/a")
    rng = netpol("x", "rng", podSelector={"matchLabels": {"pod": "a"}},
                 ingress=[{"ports": [{"port": 79, "endPort": 80}]}])
    assert reach([rng], "tcp", 80) == expect(lambda s, d: True)
    assert reach([rng], "tcp", 81) == expect(lambda s, d: d != "x/a")
    assert reach([rng], "udp", 80) == expect(lambda s, d: d != "x/a")
    udp = netpol("x", "udp", ingress=[{"ports": [{"protocol": "UDP"}]}])
    assert reach([udp], "udp", 80) == expect(lambda s, d: True)
    assert reach([udp], "sctp", 80) == expect(lambda s, d: ns_of(d) != "x")


def test_named_port_resolves_per_pod() -> None:
    pods = [p for p in PODS if p["metadata"]["name"] != "b" or p["metadata"]["namespace"] != "x"]
    pods.append(pod("x", "b", IPS["x/b"], "n2", ports=(("serve-80-tcp", 8080, "TCP"),)))
    p = netpol("x", "named", ingress=[{"ports": [{"port": "serve-80-tcp"}]}])
    got = reach([p], "tcp", 80, pods)
    assert got == expect(lambda s, d: d != "x/b")  # x/b's serve-80-tcp is 8080
    assert reach([p], "tcp", 8080, pods) == expect(lambda s, d: ns_of(d) != "x" or d == "x/b")


def test_policies_add_up() -> None:
    deny = netpol("x", "deny")
    from_y = netpol("x", "from-y", podSelector={"matchLabels": {"pod": "a"}},
                    ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])
    from_z = netpol("x", "from-z", podSelector={"matchLabels": {"pod": "a"}},
                    ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}],
                              "ports": [{"port": 81}]}])
    assert reach([deny, from_y, from_z], "tcp", 80) == expect(
        lambda s, d: ns_of(d) != "x" or (d == "x/a" and ns_of(s) == "y"))
    assert reach([deny, from_y, from_z], "tcp", 81) == expect(
        lambda s, d: ns_of(d) != "x" or (d == "x/a" and ns_of(s) in "yz"))


def test_egress_and_ingress_both_apply() -> None:
    eg = netpol("y", "to-x-only", policyTypes=["Egress"], egress=[{"to": [
        {"namespaceSelector": {"matchLabels": {"ns": "x"}}}]}])
    ing = netpol("x", "from-z-only",
                 ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}])
    assert reach([eg, ing]) == expect(lambda s, d: (ns_of(s) != "y" or ns_of(d) == "x")
                                      and (ns_of(d) != "x" or ns_of(s) == "z"))


def test_namespace_label_change_moves_pods_in_and_out() -> None:
    p = netpol("x", "blue", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}])
    assert reach([p]) == expect(lambda s, d: ns_of(d) != "x")
    namespaces = [*NAMESPACES[:2], {"metadata": {"name": "z", "labels": {"team": "blue"}}}]
    assert reach([p], namespaces=namespaces) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) == "z")


def test_describe_names_the_rule_or_the_policies() -> None:
    deny = netpol("x", "deny")
    from_y = netpol("x", "from-y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])
    table = parse_table(render_full(build_state([deny, from_y], PODS, NAMESPACES, "n1")))
    ok = judge_direction(table, "ingress", Packet(IPS["y/b"], IPS["x/a"], "tcp", 80))
    allowed = describe(ok, Packet(IPS["y/b"], IPS["x/a"], "tcp", 80))
    assert allowed == "ingress: allowed by x/from-y ingress[0]"
    pkt = Packet(IPS["z/b"], IPS["x/a"], "tcp", 80)
    bad = judge_direction(table, "ingress", pkt)
    assert describe(bad, pkt, {IPS["z/b"]: "z/b", IPS["x/a"]: "x/a"}) == (
        "dropped: pod x/a is selected by policies x/deny, x/from-y in direction ingress and none allows "
        "TCP port 80 from z/b")


def test_cidr_ranges_cut_out_excepts_and_merge() -> None:
    assert cidr_ranges([{"cidr": "10.0.0.0/30", "except": ["10.0.0.1/32"]}]) == ["10.0.0.0/32", "10.0.0.2/31"]
    assert cidr_ranges([{"cidr": "10.0.0.0/25"}, {"cidr": "10.0.0.128/25"}]) == ["10.0.0.0/24"]
    assert cidr_ranges([{"cidr": "fd00::/64"}, {"cidr": "bogus"}]) == []


def test_port_intervals_merge_overlaps_per_protocol() -> None:
    numeric, named = port_intervals([{"protocol": "TCP", "port": 80},
                                     {"protocol": "TCP", "port": 79, "endPort": 85},
                                     {"protocol": "UDP"}, {"protocol": "TCP", "port": "http"},
                                     {"protocol": "TCP", "port": 80}])
    assert numeric == ["tcp . 79-85", "udp . 0-65535"]
    assert named == [("tcp", "http")]


@pytest.mark.parametrize("bad", [
    {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}},
])
def test_a_policy_with_a_broken_selector_is_skipped_and_reported(bad: Obj) -> None:
    obj = netpol("x", "broken")
    obj["spec"].update(bad)
    good = netpol("x", "deny")
    st = build_state([obj, good], PODS, NAMESPACES, "n1")
    assert any("x/broken" in p for p in st.problems)
    assert st.elements["ingress-class"]  # the other policy still isolates x/a


def test_a_named_port_no_pod_defines_allows_nothing_and_a_policy_selecting_nothing_changes_nothing() -> None:
    unknown = netpol("x", "unknown-port", ingress=[{"ports": [{"port": "no-such-port"}]}])
    assert reach([unknown]) == expect(lambda s, d: ns_of(d) != "x")
    nobody = netpol("x", "nobody", podSelector={"matchLabels": {"pod": "nobody"}})
    assert reach([nobody]) == expect(lambda s, d: True)
