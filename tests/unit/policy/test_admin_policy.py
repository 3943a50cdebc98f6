"""AdminNetworkPolicy / BaselineAdminNetworkPolicy semantics through the rendered rules, as
test_policy_semantics does for NetworkPolicy: both nodes' tables are built, rendered, read back and
every packet of the 9x9 matrix judged through them (explain.judge_direction), so what is asserted is
what the nft rules do. The cases follow network-policy-api's conformance tests: ANP Deny beats a
NetworkPolicy Allow, ANP Allow beats a NetworkPolicy deny, Pass hands over to NetworkPolicy, the BANP
applies only where no NetworkPolicy selects the pod, priorities order ANPs (equal ones by name)."""

from __future__ import annotations

from typing import Any

from policy_fixtures import IPS, NAMESPACES, PODS, anp, banp, netpol, ns_sel, pod
from test_policy_semantics import expect, ns_of, reach

from podnet.policy.compile import build_state
from podnet.policy.explain import Packet, describe, judge_direction, parse_table
from podnet.policy.render import carry_over, is_full, render_delta, render_full

Obj = dict[str, Any]
ALL_NS: Obj = {"namespaces": {}}


def rule(
    action: str, peers: list[Obj], name: str = "", ports: list[Obj] | None = None, direction: str = "from"
) -> Obj:
    r: Obj = {"name": name or action.lower(), "action": action, direction: peers}
    if ports is not None:
        r["ports"] = ports
    return r


def test_anp_deny_beats_a_networkpolicy_allow() -> None:
    np_allow = netpol(
        "x", "from-y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]
    )
    deny = anp("deny-y-to-x", 10, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")])])
    assert reach([np_allow]) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) == "y")
    assert reach([np_allow], admins=[deny]) == expect(lambda s, d: ns_of(d) != "x")


def test_anp_allow_beats_a_networkpolicy_deny() -> None:
    np_deny = netpol("x", "deny-all")
    allow = anp("allow-z", 10, ns_sel("x"), ingress=[rule("Allow", [ns_sel("z")])])
    assert reach([np_deny], admins=[allow]) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) == "z")


def test_pass_hands_over_to_networkpolicy_and_then_to_the_banp() -> None:
    passing = anp("pass-y", 5, ns_sel("x"), ingress=[rule("Pass", [ns_sel("y")])])
    deny_later = anp("deny-y", 50, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")])])
    np_allow_y = netpol(
        "x", "from-y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]
    )
    # Pass skips the later ANP's Deny; the NetworkPolicy allows y (and isolates x from z)
    assert reach([np_allow_y], admins=[passing, deny_later]) == expect(
        lambda s, d: ns_of(d) != "x" or ns_of(s) == "y"
    )
    # no NetworkPolicy: Pass reaches the BANP, which denies y; z is not matched by it
    base = banp(ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")])])
    assert reach([], admins=[passing, deny_later, base]) == expect(
        lambda s, d: ns_of(d) != "x" or ns_of(s) != "y"
    )
    # without the Pass the later Deny decides
    assert reach([np_allow_y], admins=[deny_later]) == expect(lambda s, d: ns_of(d) != "x")


def test_banp_applies_only_where_no_networkpolicy_selects_the_pod() -> None:
    base = banp(ALL_NS, ingress=[rule("Deny", [ns_sel("y")]), rule("Allow", [ALL_NS])])
    np_z = netpol("z", "from-y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])
    # z's pods: their NetworkPolicy decides (only y gets in; the BANP is not consulted for them);
    # every other pod: the BANP denies y (y's own pods too) and allows the rest
    assert reach([np_z], admins=[base]) == expect(
        lambda s, d: (ns_of(s) == "y") if ns_of(d) == "z" else ns_of(s) != "y"
    )


def test_banp_allow_and_deny_rules_in_order_and_egress() -> None:
    base = banp(
        ns_sel("x"),
        egress=[rule("Allow", [ns_sel("y")], direction="to"), rule("Deny", [ALL_NS], direction="to")],
    )
    assert reach([], admins=[base]) == expect(lambda s, d: ns_of(s) != "x" or ns_of(d) == "y")


def test_priorities_order_anps_and_equal_priorities_go_by_name() -> None:
    allow_y = anp("allow-y", 5, ns_sel("x"), ingress=[rule("Allow", [ns_sel("y")])])
    deny_y = anp("deny-y", 10, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")])])
    np_deny = netpol("x", "deny-all")
    assert reach([np_deny], admins=[deny_y, allow_y]) == expect(
        lambda s, d: ns_of(d) != "x" or ns_of(s) == "y"
    )
    deny_first = anp("deny-y", 1, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")])])
    assert reach([], admins=[allow_y, deny_first]) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) != "y")
    # same priority: "a-deny" sorts before "b-allow"
    a = anp("a-deny", 7, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")])])
    b = anp("b-allow", 7, ns_sel("x"), ingress=[rule("Allow", [ns_sel("y")])])
    assert reach([], admins=[b, a]) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) != "y")


def test_rules_in_order_within_one_anp_and_ports() -> None:
    p = anp(
        "ports",
        3,
        ns_sel("x"),
        ingress=[
            rule("Allow", [ns_sel("y")], "allow-81", ports=[{"portNumber": {"port": 81}}]),
            rule("Deny", [ns_sel("y")], "deny-range", ports=[{"portRange": {"start": 79, "end": 81}}]),
            rule("Deny", [ns_sel("z")], "deny-named", ports=[{"namedPort": "serve-80-udp"}]),
        ],
    )
    assert reach([], "tcp", 81, admins=[p]) == expect(lambda s, d: True)
    assert reach([], "tcp", 80, admins=[p]) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) != "y")
    assert reach([], "udp", 80, admins=[p]) == expect(lambda s, d: ns_of(d) != "x" or ns_of(s) != "z")
    assert reach([], "udp", 81, admins=[p]) == expect(lambda s, d: True)


def test_pods_subject_and_peer() -> None:
    subject = {
        "pods": {
            "namespaceSelector": {"matchLabels": {"ns": "x"}},
            "podSelector": {"matchLabels": {"pod": "a"}},
        }
    }
    peer = {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}}}
    p = anp("a-from-b", 1, subject, ingress=[rule("Deny", [peer])])
    assert reach([], admins=[p]) == expect(lambda s, d: d != "x/a" or not s.endswith("/b"))


def test_egress_to_networks_and_nodes() -> None:
    nodes = [
        {
            "metadata": {"name": "n2", "labels": {"role": "worker"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "172.30.0.3"}]},
        }
    ]
    p = anp(
        "egress",
        1,
        ns_sel("x"),
        egress=[
            rule("Deny", [{"nodes": {"matchLabels": {"role": "worker"}}}], "no-workers", direction="to"),
            rule("Deny", [{"networks": ["10.244.2.0/24", "fd00::/64"]}], "no-n2-pods", direction="to"),
        ],
    )
    assert reach([], admins=[p]) == expect(lambda s, d: ns_of(s) != "x" or d.endswith("/a"))
    table = parse_table(render_full(build_state([], PODS, NAMESPACES, "n1", admins=[p], nodes=nodes)))
    to_node = Packet(IPS["x/a"], "172.30.0.3", "tcp", 10250)
    step = judge_direction(table, "egress", to_node)
    assert step.verdict == "dropped"
    assert describe(step, to_node, {IPS["x/a"]: "x/a"}) == (
        'egress: dropped by AdminNetworkPolicy egress rule "no-workers" (egress[0], Deny): pod x/a, '
        "TCP port 10250 to 172.30.0.3"
    )
    other = Packet(IPS["x/a"], "172.30.0.4", "tcp", 10250)
    assert judge_direction(table, "egress", other).verdict == "not-isolated"


def test_describe_names_the_anp_rule_and_the_pass() -> None:
    passing = anp("pass-y", 5, ns_sel("x"), ingress=[rule("Pass", [ns_sel("y")], "to-np")])
    allow_z = anp("allow-z", 6, ns_sel("x"), ingress=[rule("Allow", [ns_sel("z")], "z-ok")])
    np_deny = netpol("x", "deny-all")
    table = parse_table(
        render_full(build_state([np_deny], PODS, NAMESPACES, "n1", admins=[passing, allow_z]))
    )
    names = {IPS[n]: n for n in IPS}
    z = Packet(IPS["z/b"], IPS["x/a"], "tcp", 80)
    assert describe(judge_direction(table, "ingress", z), z, names) == (
        'ingress: allowed by AdminNetworkPolicy allow-z rule "z-ok" (ingress[0], Allow)'
    )
    y = Packet(IPS["y/b"], IPS["x/a"], "tcp", 80)
    step = judge_direction(table, "ingress", y)
    assert (step.verdict, step.tier) == ("dropped", "NetworkPolicy")
    assert describe(step, y, names) == (
        'passed by AdminNetworkPolicy pass-y rule "to-np" (ingress[0], Pass), then dropped: pod x/a is '
        "selected by policies x/deny-all in direction ingress and none allows TCP port 80 from y/b"
    )


def test_drops_count_per_admin_policy() -> None:
    deny = anp("deny-y", 10, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")])])
    base = banp(ns_sel("x"), egress=[rule("Deny", [ns_sel("z")], direction="to")])
    st = build_state([], PODS, NAMESPACES, "n1", admins=[deny, base])
    assert sorted(st.counters.values()) == [
        "AdminNetworkPolicy deny-y ingress",
        "BaselineAdminNetworkPolicy default egress",
    ]
    text = render_full(st)
    for name in st.counters:
        assert f'counter name "{name}" drop' in text


def test_a_label_change_is_a_set_element_delta() -> None:
    peer = {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "bad"}}}}
    deny = anp("deny-bad", 1, ns_sel("x"), ingress=[rule("Deny", [peer])])
    pods = [*PODS, pod("y", "d", "10.244.2.99", "n2", {"pod": "d"})]
    old = build_state([], pods, NAMESPACES, "n1", admins=[deny])
    relabelled = [*PODS, pod("y", "d", "10.244.2.99", "n2", {"pod": "d", "role": "bad"})]
    new = carry_over(old, build_state([], relabelled, NAMESPACES, "n1", admins=[deny]))
    text = render_delta(old, new)
    assert not is_full(text)
    assert text.startswith("add element ip podnet-policy pods-") and "10.244.2.99" in text
    table = parse_table(render_full(new))
    assert (
        judge_direction(table, "ingress", Packet("10.244.2.99", IPS["x/a"], "tcp", 80)).verdict == "dropped"
    )


def test_a_banp_not_named_default_and_an_anp_selecting_nothing_change_nothing() -> None:
    other = banp(ALL_NS, ingress=[rule("Deny", [ALL_NS])])
    other["metadata"]["name"] = "other"
    nobody = anp(
        "nobody", 1, {"namespaces": {"matchLabels": {"ns": "none"}}}, ingress=[rule("Deny", [ALL_NS])]
    )
    assert reach([], admins=[other, nobody]) == expect(lambda s, d: True)


def test_ipv6_ip_blocks_are_valid_never_fail_a_sync_and_never_match_ipv4() -> None:
    from podnet.model.validation import validate

    v6_only = netpol(
        "x", "v6", ingress=[{"from": [{"ipBlock": {"cidr": "::/0"}}, {"ipBlock": {"cidr": "::ffff:0:0/96"}}]}]
    )
    mixed = netpol(
        "y",
        "mixed",
        policyTypes=["Egress"],
        egress=[
            {
                "to": [
                    {"ipBlock": {"cidr": "fd00::/64", "except": ["fd00::/80"]}},
                    {"ipBlock": {"cidr": "10.244.1.0/24"}},
                ]
            }
        ],
    )
    assert validate(v6_only) == [] and validate(mixed) == []
    # x is isolated and its only peers are IPv6: nothing IPv4 gets in; y sends only to 10.244.1.0/24
    assert reach([v6_only, mixed]) == expect(
        lambda s, d: ns_of(d) != "x" and (ns_of(s) != "y" or d.endswith("/a"))
    )
    v6_networks = anp(
        "v6-net", 1, ns_sel("z"), egress=[rule("Deny", [{"networks": ["::/0"]}], direction="to")]
    )
    assert reach([], admins=[v6_networks]) == expect(lambda s, d: True)


def test_free_text_rule_names_and_long_policy_names_keep_the_verdict_readable() -> None:
    long_name = "n" * 63 + "." + "m" * 63 + "." + "o" * 63
    weird = 'deny "quoted" \\ new\nline café ' + "x" * 60
    p = anp(long_name, 1, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")], weird)])
    table = parse_table(render_full(build_state([], PODS, NAMESPACES, "n1", admins=[p])))
    pkt = Packet(IPS["y/b"], IPS["x/a"], "tcp", 80)
    step = judge_direction(table, "ingress", pkt)
    assert (step.verdict, step.tier) == ("dropped", "AdminNetworkPolicy")
    # nft keeps 128 bytes of a comment: the action and the rule's place always survive, names are cut
    text = describe(step, pkt, {IPS["x/a"]: "x/a", IPS["y/b"]: "y/b"})
    assert text.startswith("ingress: dropped by AdminNetworkPolicy nnnnnnnnnn")
    assert text.endswith("(ingress[0], Deny): pod x/a, TCP port 80 from y/b")
    short = anp("short", 1, ns_sel("x"), ingress=[rule("Deny", [ns_sel("y")], weird)])
    table = parse_table(render_full(build_state([], PODS, NAMESPACES, "n1", admins=[short])))
    text = describe(judge_direction(table, "ingress", pkt), pkt)
    assert text.startswith(
        "ingress: dropped by AdminNetworkPolicy short rule \"deny 'quoted' / new?line caf? xxx")
