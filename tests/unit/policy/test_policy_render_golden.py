"""render_full / render_delta against golden files (regenerate with PODNET_UPDATE_GOLDEN=1 and review)."""

from __future__ import annotations

import os
from pathlib import Path

from policy_fixtures import NAMESPACES, PODS, netpol, pod

from podnet.policy.compile import build_state
from podnet.policy.render import carry_over, is_full, render_delta, render_full

GOLDEN = Path(__file__).parent / "golden"

POLICIES = [
    netpol("x", "deny-all", policyTypes=["Ingress", "Egress"]),
    netpol("x", "web", podSelector={"matchLabels": {"pod": "a"}}, policyTypes=["Ingress", "Egress"],
           ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {}},
                              {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}],
                     "ports": [{"port": 80}, {"port": 8000, "endPort": 8080}, {"port": "serve-81-tcp"}]}],
           egress=[{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                                   "kube-system"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}]}]),
]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PODNET_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"golden file {path} missing: run with PODNET_UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(), f"{name} differs from its golden file"


def test_full_ruleset() -> None:
    text = render_full(build_state(POLICIES, PODS, NAMESPACES, "n1"))
    assert is_full(text)
    check_golden("two_policies.nft", text)


def test_pod_joining_a_peer_set_is_one_element() -> None:
    old = build_state(POLICIES, PODS, NAMESPACES, "n1")
    new = build_state(POLICIES, [*PODS, pod("y", "d", "10.244.2.99", "n2", {"pod": "d"})], NAMESPACES, "n1")
    check_golden("pod_joins_peer_set.nft", render_delta(old, new))


def test_local_pod_joining_an_existing_class_is_map_elements() -> None:
    old = build_state(POLICIES, PODS, NAMESPACES, "n1")
    new = build_state(POLICIES, [*PODS, pod("x", "a2", "10.244.1.99", "n1", {"pod": "a"})], NAMESPACES, "n1")
    text = render_delta(old, new)
    assert not is_full(text)
    check_golden("local_pod_joins_class.nft", text)


def test_same_inputs_render_nothing_and_new_policy_renders_full() -> None:
    old = build_state(POLICIES, PODS, NAMESPACES, "n1")
    assert render_delta(old, build_state(POLICIES, PODS, NAMESPACES, "n1")) == ""
    more = [*POLICIES, netpol("x", "another", ingress=[{}])]
    assert is_full(render_delta(old, build_state(more, PODS, NAMESPACES, "n1")))


def test_a_pod_leaving_its_class_for_an_existing_one_stays_a_delta() -> None:
    pods = [*PODS, pod("x", "b2", "10.244.1.98", "n1", {"pod": "b"})]
    old = build_state(POLICIES, pods, NAMESPACES, "n1")
    moved = [*PODS, pod("x", "b2", "10.244.1.98", "n1", {"pod": "a"})]  # joins x/a's class; its own empties
    new = carry_over(old, build_state(POLICIES, moved, NAMESPACES, "n1"))
    text = render_delta(old, new)
    assert not is_full(text)
    assert "10.244.1.98 : goto in-" in text and "delete element ip podnet-policy ingress-class" in text
    assert set(new.chains) == set(old.chains)  # the empty class's chain waits for the next full sync
