"""AdminNetworkPolicy / BaselineAdminNetworkPolicy with real packets and the real kubectl, on the netpol
suite's fixture (namespaces x, y, z x pods a, b, c; one 2-node cluster for the module). A few scenarios
of network-policy-api's conformance tests, each probed as a 9x9 matrix on TCP 80: an ANP Deny beats a
NetworkPolicy Allow, an ANP Allow beats a NetworkPolicy deny, Pass hands over to NetworkPolicy, the BANP
applies only where no NetworkPolicy selects the pod, priorities decide (also after a priority change),
egress to a `networks` CIDR, and a pod label change re-evaluated. Plus serving: kubectl get/apply/delete
with the CRDs' columns and messages, and `podnet policy check` / `podnet top` naming the ANP.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import Cluster, running_cluster
from netpol_support import Model, check, expect, netpol, setup_model

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, nftables)")

GV = "policy.networking.k8s.io/v1alpha1"
NAME_LABEL = "kubernetes.io/metadata.name"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("anp", "--nodes", "2") as c:
        yield c


@pytest.fixture(scope="module")
def model(cluster: Cluster) -> Model:
    return setup_model(cluster, f"anp{os.getpid() % 100000}")


def ns(m: Model, short: str) -> dict[str, Any]:
    """`namespaces:` selecting one of the test's namespaces by name (ANPs are cluster-wide)."""
    return {"namespaces": {"matchLabels": {NAME_LABEL: m.ns[short]}}}


def anp(name: str, priority: int, subject: dict[str, Any], **rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": GV, "kind": "AdminNetworkPolicy", "metadata": {"name": name},
            "spec": {"priority": priority, "subject": subject, **rules}}


def banp(subject: dict[str, Any], **rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": GV, "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
            "spec": {"subject": subject, **rules}}


def rule(action: str, peers: list[dict[str, Any]], name: str = "", key: str = "from") -> dict[str, Any]:
    return {"name": name or action.lower(), "action": action, key: peers}


@contextlib.contextmanager
def applied(m: Model, *objs: dict[str, Any]) -> Iterator[None]:
    for o in objs:
        m.cluster.apply(o)
    try:
        yield
    finally:
        for o in objs:
            kind = {"AdminNetworkPolicy": "anp", "BaselineAdminNetworkPolicy": "banp"}.get(o["kind"])
            where = ["-n", o["metadata"]["namespace"]] if kind is None else []
            m.cluster.kubectl("delete", kind or "networkpolicy", *where, o["metadata"]["name"],
                              "--ignore-not-found", "--wait=false")


def nsof(short: str) -> str:
    return short.split("/")[0]


def test_kubectl_serves_both_kinds_with_the_crds_columns_and_messages(cluster: Cluster) -> None:
    res = cluster.kubectl("api-resources", "--api-group", "policy.networking.k8s.io").stdout
    assert "adminnetworkpolicies" in res and "anp " in res and "baselineadminnetworkpolicies" in res
    assert "banp" in res and "false" in res  # cluster-scoped
    obj = anp("anp-cols", 42, {"namespaces": {"matchLabels": {"none": "here"}}})
    cluster.apply(obj)
    table = cluster.kubectl("get", "anp").stdout.splitlines()
    assert table[0].split() == ["NAME", "PRIORITY", "AGE"] and table[1].split()[:2] == ["anp-cols", "42"]
    bad = subprocess.run(
        ["kubectl", "--kubeconfig", cluster.kubeconfig, "apply", "-f", "-"], text=True, capture_output=True,
        input=json.dumps(anp("anp-bad", 1001, {"namespaces": {}},
                             ingress=[rule("Reject", [{"namespaces": {}}])])),
        timeout=60)
    assert bad.returncode != 0
    assert "spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000" \
        in bad.stderr, bad.stderr
    assert 'spec.ingress[0].action: Unsupported value: "Reject": supported values: "Allow", "Deny", "Pass"' \
        in bad.stderr
    other = banp({"namespaces": {}})
    other["metadata"]["name"] = "other"
    res2 = subprocess.run(["kubectl", "--kubeconfig", cluster.kubeconfig, "create", "-f", "-"], text=True,
                          capture_output=True, input=json.dumps(other), timeout=60)
    assert 'Only one baseline admin network policy with metadata.name="default" can be created' in res2.stderr
    cluster.kubectl("delete", "anp", "anp-cols")
    assert "anp-cols" not in cluster.kubectl("get", "adminnetworkpolicies").stdout + \
        cluster.kubectl("get", "adminnetworkpolicies").stderr


def test_anp_deny_beats_a_networkpolicy_allow(model: Model) -> None:
    np = netpol("from-x-y", model.ns["x"], {"podSelector": {}, "ingress": [{"from": [
        {"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]})
    deny = anp("deny-y-to-x", 10, ns(model, "x"), ingress=[rule("Deny", [ns(model, "y")])])
    with applied(model, np, deny):
        check(model, expect(model, lambda s, d: nsof(d) != "x" or nsof(s) == "x"))
    check(model, expect(model, lambda s, d: True))


def test_anp_allow_beats_a_networkpolicy_deny_and_pass_hands_over(model: Model) -> None:
    deny_all = netpol("deny-all", model.ns["x"], {"podSelector": {}})
    allow_z = anp("allow-z-to-x", 10, ns(model, "x"), ingress=[rule("Allow", [ns(model, "z")])])
    with applied(model, deny_all, allow_z):
        check(model, expect(model, lambda s, d: nsof(d) != "x" or nsof(s) == "z"))
    from_y = netpol("from-y", model.ns["x"], {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]})
    passing = anp("pass-y", 10, ns(model, "x"), ingress=[rule("Pass", [ns(model, "y")])])
    deny_yz = anp("deny-yz", 20, ns(model, "x"), ingress=[rule("Deny", [ns(model, "y"), ns(model, "z")])])
    with applied(model, from_y, passing, deny_yz):
        # y: passed to the NetworkPolicy, which allows it; z: the second ANP denies; x: the NP isolates
        check(model, expect(model, lambda s, d: nsof(d) != "x" or nsof(s) == "y"))
        c, x, y = model.cluster, model.ns["x"], model.ns["y"]
        out = c.podnet("policy", "check", "--name", c.name, f"{y}/b", f"{x}/a", "80").stdout
        out = " ".join(out.split())
        assert ('ingress: passed by AdminNetworkPolicy pass-y rule "pass" (ingress[0], Pass), '
                f"then allowed by {x}/from-y ingress[0]") in out, out
    check(model, expect(model, lambda s, d: True))


def test_banp_applies_only_where_no_networkpolicy_selects(model: Model) -> None:
    both = {"namespaces": {"matchExpressions": [{"key": NAME_LABEL, "operator": "In",
                                                 "values": [model.ns["x"], model.ns["y"]]}]}}
    base = banp(both, ingress=[rule("Deny", [ns(model, "z")])])
    np_y = netpol("from-z", model.ns["y"], {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]})
    with applied(model, base, np_y):
        want = {"x": lambda s: nsof(s) != "z", "y": lambda s: nsof(s) == "z", "z": lambda s: True}
        check(model, expect(model, lambda s, d: want[nsof(d)](s)))
    check(model, expect(model, lambda s, d: True))


def test_priorities_decide_also_after_a_change(model: Model) -> None:
    allow = anp("prio-allow", 30, ns(model, "x"), ingress=[rule("Allow", [ns(model, "y")])])
    deny = anp("prio-deny", 40, ns(model, "x"), ingress=[rule("Deny", [ns(model, "y"), ns(model, "z")])])
    with applied(model, allow, deny):
        check(model, expect(model, lambda s, d: nsof(d) != "x" or nsof(s) != "z"))
        model.cluster.kubectl("patch", "anp", "prio-allow", "--type=merge", "-p", '{"spec":{"priority":50}}')
        check(model, expect(model, lambda s, d: nsof(d) != "x" or nsof(s) == "x"))
        c, x, y = model.cluster, model.ns["x"], model.ns["y"]
        out = " ".join(c.podnet("policy", "check", "--name", c.name, f"{y}/b", f"{x}/a", "80").stdout.split())
        assert 'dropped by AdminNetworkPolicy prio-deny rule "deny" (ingress[0], Deny)' in out, out
        assert "verdict: dropped" in out
        traced = " ".join(c.podnet("trace", "--name", c.name, "--from", f"{y}/b", f"{x}/a:80").stdout.split())
        assert 'dropped by AdminNetworkPolicy prio-deny rule "deny" (ingress[0], Deny)' in traced, traced
        top = json.loads(c.podnet("top", "--name", c.name, "-o", "json").stdout)
        drops = {d["policy"]: d["packets"] for d in top["policy_drops"]}
        assert drops.get("AdminNetworkPolicy prio-deny ingress", 0) > 0, drops
    check(model, expect(model, lambda s, d: True))


def test_egress_to_a_networks_cidr(model: Model) -> None:
    target = model.ips["y/b"]
    deny = anp("no-egress-to-yb", 5, ns(model, "x"),
               egress=[rule("Deny", [{"networks": [f"{target}/32"]}], key="to")])
    with applied(model, deny):
        check(model, expect(model, lambda s, d: not (nsof(s) == "x" and d == "y/b")))
    check(model, expect(model, lambda s, d: True))


def test_a_pod_label_change_is_re_evaluated(model: Model) -> None:
    c = model.cluster
    bad = {"pods": {"namespaceSelector": {"matchLabels": {"ns": "y"}},
                    "podSelector": {"matchLabels": {"role": "bad"}}}}
    deny = anp("deny-bad", 5, ns(model, "x"), ingress=[rule("Deny", [bad])])
    with applied(model, deny):
        check(model, expect(model, lambda s, d: True))
        c.kubectl("label", "pod", "-n", model.ns["y"], "c", "role=bad")
        try:
            check(model, expect(model, lambda s, d: not (s == "y/c" and nsof(d) == "x")))
        finally:
            c.kubectl("label", "pod", "-n", model.ns["y"], "c", "role-")
        check(model, expect(model, lambda s, d: True))
