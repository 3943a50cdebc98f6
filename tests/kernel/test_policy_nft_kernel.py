"""The policy table in a real kernel (a scratch network namespace of this test): every shape render
writes is accepted by nft, deltas apply on top of a full sync, a refused transaction leaves the
table as it was, and the listing reads back into the same verdicts (explain.parse_table)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "policy"))
from policy_fixtures import IPS, NAMESPACES, PODS, anp, banp, netpol, ns_sel, pod

from podnet.policy.compile import build_state
from podnet.policy.explain import Packet, judge_direction, parse_table
from podnet.policy.nft import PolicyNftError, RealPolicyNft
from podnet.policy.render import render_delta, render_full

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, nftables)")

POLICIES = [
    netpol("x", "deny-all", policyTypes=["Ingress", "Egress"]),
    netpol("x", "web", podSelector={"matchLabels": {"pod": "a"}}, policyTypes=["Ingress", "Egress"],
           ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                              {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.2.0/24"]}}],
                     "ports": [{"port": 80}, {"port": 8000, "endPort": 8080}, {"port": "serve-81-tcp"},
                               {"protocol": "SCTP"}, {"protocol": "UDP", "port": "serve-80-udp"}]}],
           egress=[{"to": [{"podSelector": {"matchLabels": {"nobody": "here"}}}]},
                   {"ports": [{"port": 53}]}]),
]


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pn-netpol-kt-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_full_delta_and_listing_round_trip(netns: str) -> None:
    nft = RealPolicyNft(netns)
    old = build_state(POLICIES, PODS, NAMESPACES, "n1")
    nft.apply(render_full(old))
    nft.apply(render_full(old))  # a second full sync replaces the table in place
    new = build_state(POLICIES, [*PODS, pod("y", "d", "10.244.2.99", "n2", {"pod": "d"}),
                                 pod("x", "a2", "10.244.1.99", "n1", {"pod": "a"})], NAMESPACES, "n1")
    nft.apply(render_delta(old, new))
    listing = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip", "podnet-policy"],
                             capture_output=True, text=True, check=True).stdout
    live = parse_table(listing)
    assert live.maps["ingress-class"].keys() == parse_table(render_full(new)).maps["ingress-class"].keys()
    for src, port, want in (("10.244.2.99", 80, "allowed"), (IPS["z/a"], 80, "allowed"),
                            (IPS["x/b"], 80, "dropped"), ("10.244.2.5", 8080, "dropped"),
                            (IPS["z/a"], 81, "allowed"), (IPS["z/a"], 82, "dropped")):
        got = judge_direction(live, "ingress", Packet(src, "10.244.1.99", "tcp", port)).verdict
        assert got == want, (src, port)
    assert judge_direction(live, "ingress", Packet(IPS["z/a"], IPS["x/a"], "sctp", 9)).verdict == "allowed"
    assert judge_direction(live, "ingress", Packet(IPS["z/a"], IPS["x/a"], "udp", 80)).verdict == "allowed"
    assert judge_direction(live, "egress", Packet(IPS["x/a"], IPS["z/b"], "udp", 53)).verdict == "dropped"
    assert judge_direction(live, "egress", Packet(IPS["x/a"], IPS["z/b"], "tcp", 53)).verdict == "allowed"


def test_a_refused_transaction_leaves_the_table_as_it_was(netns: str) -> None:
    nft = RealPolicyNft(netns)
    st = build_state(POLICIES, PODS, NAMESPACES, "n1")
    nft.apply(render_full(st))
    before = nft.list_json()
    with pytest.raises(PolicyNftError, match=r"Error"):
        nft.apply(render_full(st).replace("typeof ip saddr;", "typeof ip bogus;", 1))
    assert nft.list_json() == before


def test_ten_thousand_rules_in_one_policy_apply_and_judge(netns: str) -> None:
    big = netpol("x", "big", ingress=[{"from": [{"podSelector": {}}], "ports": [{"port": 1000 + i}]}
                                      for i in range(10_000)])
    nft = RealPolicyNft(netns)
    nft.apply(render_full(build_state([big, *POLICIES], PODS, NAMESPACES, "n1")))
    live = parse_table(subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip",
                                       "podnet-policy"], capture_output=True, text=True, check=True).stdout)
    judge = judge_direction
    assert judge(live, "ingress", Packet(IPS["x/b"], IPS["x/a"], "tcp", 10_999)).rule == "x/big ingress[9999]"
    assert judge(live, "ingress", Packet(IPS["x/b"], IPS["x/a"], "tcp", 11_000)).verdict == "dropped"


def test_admin_policies_load_and_the_listing_judges_like_the_rendered_text(netns: str) -> None:
    """Every shape policy/admin.py writes (Allow/Deny/Pass, pods/namespaces/nodes/networks peers, port
    numbers, ranges and named ports, the BANP) is accepted by nft, and the kernel's listing gives the same
    verdict, tier and rule as the rendered text for every pair of pods and a few ports."""
    admins = [
        anp("pass-y", 5, ns_sel("x"), ingress=[{"name": "to-np", "action": "Pass", "from": [ns_sel("y")]}]),
        anp("mixed", 9, {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "a"}}}},
            ingress=[{"name": "ok-81", "action": "Allow", "from": [{"namespaces": {}}],
                      "ports": [{"portNumber": {"port": 81}}, {"namedPort": "serve-80-udp"}]},
                     {"name": "no-z", "action": "Deny", "from": [ns_sel("z")],
                      "ports": [{"portRange": {"protocol": "TCP", "start": 70, "end": 90}}]}],
            egress=[{"name": "no-net", "action": "Deny", "to": [{"networks": ["10.244.2.0/25"]},
                                                                {"nodes": {}}]}]),
        banp({"namespaces": {}}, ingress=[{"name": "no-x", "action": "Deny", "from": [ns_sel("x")]}],
             egress=[{"name": "ok", "action": "Allow", "to": [{"namespaces": {}}]}]),
    ]
    nodes = [{"metadata": {"name": "n1"},
              "status": {"addresses": [{"type": "InternalIP", "address": "172.30.0.2"}]}}]
    nft = RealPolicyNft(netns)
    st = build_state(POLICIES, PODS, NAMESPACES, "n1", admins=admins, nodes=nodes)
    text = render_full(st)
    nft.apply(text)
    rendered = parse_table(text)
    live = parse_table(subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip",
                                       "podnet-policy"], capture_output=True, text=True, check=True).stdout)
    seen = set()
    for src in IPS.values():
        for dst in IPS.values():
            for proto, port in (("tcp", 80), ("tcp", 81), ("udp", 80)):
                for direction in ("ingress", "egress"):
                    pkt = Packet(src, dst, proto, port)
                    want = judge_direction(rendered, direction, pkt)
                    got = judge_direction(live, direction, pkt)
                    assert (got.verdict, got.tier, got.rule, got.passed) == \
                        (want.verdict, want.tier, want.rule, want.passed), (direction, pkt)
                    seen.add((got.tier, got.verdict))
    assert {("AdminNetworkPolicy", "allowed"), ("AdminNetworkPolicy", "dropped"),
            ("NetworkPolicy", "allowed"), ("NetworkPolicy", "dropped"),
            ("BaselineAdminNetworkPolicy", "dropped"), ("BaselineAdminNetworkPolicy", "allowed")} <= seen


def test_admin_rule_names_with_quotes_newlines_and_non_ascii_load(netns: str) -> None:
    p = anp("n" * 63 + "." + "m" * 63 + "." + "o" * 63, 1, ns_sel("x"),
            ingress=[{"name": 'a "b" \\ c\nd é ' + "ü" * 85, "action": "Deny", "from": [ns_sel("y")]}])
    RealPolicyNft(netns).apply(render_full(build_state([], PODS, NAMESPACES, "n1", admins=[p])))
    live = parse_table(subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip",
                                       "podnet-policy"], capture_output=True, text=True, check=True).stdout)
    step = judge_direction(live, "ingress", Packet(IPS["y/b"], IPS["x/a"], "tcp", 80))
    assert (step.verdict, step.tier) == ("dropped", "AdminNetworkPolicy") and step.rule.startswith("ANP Deny")
