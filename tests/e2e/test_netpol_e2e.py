"""NetworkPolicy truth tables with real packets (Kubernetes' netpol e2e scenarios), on one 2-node
cluster reused by every scenario: namespaces x, y, z x pods a, b, c; each scenario applies its
policies with the real kubectl, probes the 9x9 matrix and compares it with the expected one, then
deletes its policies and checks everything is reachable again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import Cluster, running_cluster
from netpol_support import Matrix, Model, check, expect, netpol, pod_manifest, probe, setup_model, show

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, nftables)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("np", "--nodes", "2") as c:
        yield c


@pytest.fixture(scope="module")
def model(cluster: Cluster) -> Model:
    return setup_model(cluster, f"np{os.getpid() % 100000}")


@contextlib.contextmanager
def policies(m: Model, *objs: dict[str, Any]) -> Iterator[None]:
    for o in objs:
        m.cluster.apply(o)
    try:
        yield
    finally:
        for o in objs:
            m.cluster.kubectl("delete", "networkpolicy", "-n", o["metadata"]["namespace"],
                              o["metadata"]["name"], "--ignore-not-found", "--wait=false")


KUBE_NS = "kubernetes.io/metadata.name"


def ns_peer(short: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"ns": short}}}


def ns_of(short: str) -> str:
    return short.split("/")[0]


def pod_of(short: str) -> str:
    return short.split("/")[1]


def test_without_policies_everything_reaches_everything(model: Model) -> None:
    for proto, port in (("tcp", 80), ("tcp", 81), ("udp", 80)):
        check(model, expect(model, lambda s, d: True), proto, port)


def test_deny_all_ingress(model: Model) -> None:
    x = model.ns["x"]
    with policies(model, netpol("deny-all", x, {"podSelector": {}})):
        want = expect(model, lambda s, d: ns_of(d) != "x")
        check(model, want, "tcp", 80)
        check(model, want, "udp", 80)
    check(model, expect(model, lambda s, d: True))


def test_deny_all_egress(model: Model) -> None:
    x = model.ns["x"]
    with policies(model, netpol("deny-egress", x, {"podSelector": {}, "policyTypes": ["Egress"]})):
        check(model, expect(model, lambda s, d: ns_of(s) != "x"))
    check(model, expect(model, lambda s, d: True))


def test_allow_from_same_namespace(model: Model) -> None:
    x = model.ns["x"]
    same = netpol("same-ns", x, {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})
    with policies(model, same):
        check(model, expect(model, lambda s, d: ns_of(d) != "x" or ns_of(s) == "x"))


def test_allow_from_namespace_by_label(model: Model) -> None:
    x = model.ns["x"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}
    with policies(model, netpol("from-y", x, spec)):
        check(model, expect(model, lambda s, d: d != "x/a" or ns_of(s) == "y"))


def test_pod_and_namespace_selector_in_one_peer_is_and(model: Model) -> None:
    x = model.ns["x"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                   "podSelector": {"matchLabels": {"pod": "b"}}}]}]}
    with policies(model, netpol("y-and-b", x, spec)):
        check(model, expect(model, lambda s, d: d != "x/a" or s == "y/b"))


def test_pod_and_namespace_selector_as_two_peers_is_or(model: Model) -> None:
    x = model.ns["x"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                                  {"podSelector": {"matchLabels": {"pod": "b"}}}]}]}
    with policies(model, netpol("y-or-b", x, spec)):
        check(model, expect(model, lambda s, d: d != "x/a" or ns_of(s) == "y" or s == "x/b"))


def test_ip_block_with_except(model: Model) -> None:
    x = model.ns["x"]
    cluster_cidr = str(ipaddress.ip_network(f"{model.ips['y/b']}/16", strict=False))
    spec = {"podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": cluster_cidr,
                                               "except": [f"{model.ips['y/b']}/32"]}}]}]}
    with policies(model, netpol("ipblock", x, spec)):
        check(model, expect(model, lambda s, d: d != "x/a" or s != "y/b"))


def test_named_ports_resolve_per_pod(model: Model) -> None:
    x = model.ns["x"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"ports": [{"port": "serve-81-tcp"}]}]}
    with policies(model, netpol("named-81", x, spec)):
        check(model, expect(model, lambda s, d: True), "tcp", 81)
        check(model, expect(model, lambda s, d: d != "x/a"), "tcp", 80)


def test_named_egress_port_resolves_on_the_destination(model: Model) -> None:
    x = model.ns["x"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": "serve-80-udp", "protocol": "UDP"}]}]}
    with policies(model, netpol("named-udp-egress", x, spec)):
        check(model, expect(model, lambda s, d: True), "udp", 80)
        check(model, expect(model, lambda s, d: s != "x/a"), "tcp", 80)


def test_end_port_range(model: Model) -> None:
    x = model.ns["x"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"ports": [{"port": 79, "endPort": 80, "protocol": "TCP"}]}]}
    with policies(model, netpol("range", x, spec)):
        check(model, expect(model, lambda s, d: True), "tcp", 80)
        check(model, expect(model, lambda s, d: d != "x/a"), "tcp", 81)
        check(model, expect(model, lambda s, d: d != "x/a"), "udp", 80)


def test_egress_to_dns_only(model: Model) -> None:
    x = model.ns["x"]
    spec = {"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {KUBE_NS: "kube-system"}}}],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}
    with policies(model, netpol("dns-only", x, spec)):
        check(model, expect(model, lambda s, d: ns_of(s) != "x"))
        out = model.cluster.podnet("exec", "--name", model.cluster.name, "-n", x, "a", "--",
                                   "getent", "hosts", "kubernetes.default.svc.cluster.local", timeout=30)
        assert "10.96.0.1" in out.stdout


def test_policy_update_and_delete(model: Model) -> None:
    x = model.ns["x"]
    deny = netpol("changing", x, {"podSelector": {}})
    with policies(model, deny):
        check(model, expect(model, lambda s, d: ns_of(d) != "x"))
        allow_z = netpol("changing", x, {"podSelector": {}, "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]})
        model.cluster.apply(allow_z)
        check(model, expect(model, lambda s, d: ns_of(d) != "x" or ns_of(s) == "z"))
    check(model, expect(model, lambda s, d: True))


def test_pod_and_namespace_label_changes(model: Model) -> None:
    x, y, z = model.ns["x"], model.ns["y"], model.ns["z"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [{"namespaceSelector": {},
                                   "podSelector": {"matchLabels": {"role": "client"}}},
                                  {"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}
    with policies(model, netpol("labels", x, spec)):
        check(model, expect(model, lambda s, d: d != "x/a"))
        model.cluster.kubectl("label", "pod", "-n", y, "c", "role=client")
        check(model, expect(model, lambda s, d: d != "x/a" or s == "y/c"))
        model.cluster.kubectl("label", "namespace", z, "team=blue")
        check(model, expect(model, lambda s, d: d != "x/a" or s == "y/c" or ns_of(s) == "z"))
        model.cluster.kubectl("label", "pod", "-n", y, "c", "role-")
        model.cluster.kubectl("label", "namespace", z, "team-")
        check(model, expect(model, lambda s, d: d != "x/a"))


def test_multiple_policies_add_up(model: Model) -> None:
    x = model.ns["x"]
    deny = netpol("deny-all", x, {"podSelector": {}})
    a = {"matchLabels": {"pod": "a"}}
    from_y = netpol("a-from-y", x, {"podSelector": a, "ingress": [{"from": [ns_peer("y")]}]})
    from_z_81 = netpol("a-from-z-81", x, {"podSelector": a,
                                          "ingress": [{"from": [ns_peer("z")], "ports": [{"port": 81}]}]})
    with policies(model, deny, from_y, from_z_81):
        check(model, expect(model, lambda s, d: ns_of(d) != "x" or (d == "x/a" and ns_of(s) == "y")),
              "tcp", 80)
        check(model, expect(model, lambda s, d: ns_of(d) != "x" or (d == "x/a" and ns_of(s) in ("y", "z"))),
              "tcp", 81)


def test_service_traffic_is_judged_on_the_pod_after_dnat(model: Model) -> None:
    x = model.ns["x"]
    model.cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc-a", "namespace": x},
                         "spec": {"selector": {"pod": "a"}, "ports": [{"port": 8080, "targetPort": 80}]}})
    ip = model.cluster.get_json("service", "-n", x, "svc-a")["spec"]["clusterIP"]
    spec = {"podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}
    try:
        with policies(model, netpol("svc-from-y", x, spec)):
            want = {(s, "svc"): ns_of(s) == "y" or s == "x/a" for s in model.names}
            got: Matrix = {}
            for _ in range(10):  # the Service's endpoints may take a moment
                got = probe(model, "tcp", 8080, {"svc": ip})
                if got == want:
                    break
            assert got == want, f"{got}"
    finally:
        model.cluster.kubectl("delete", "service", "-n", x, "svc-a", "--wait=false")


def test_the_node_reaches_its_pods_despite_deny_all(model: Model) -> None:
    x = model.ns["x"]
    pod = model.cluster.get_json("pod", "-n", x, "a")
    node = pod["spec"]["nodeName"]
    short = node[len(model.cluster.name) + 1:] if node.startswith(model.cluster.name + "-") else node
    node_ns = f"pn-{model.cluster.name}-{short}"
    with policies(model, netpol("deny-all", x, {"podSelector": {}})):
        check(model, expect(model, lambda s, d: ns_of(d) != "x"))
        res = subprocess.run(["nsenter", f"--net=/run/netns/{node_ns}", "timeout", "3", "bash", "-c",
                              f"exec 3<>/dev/tcp/{model.ips['x/a']}/80 && head -c 100 <&3"],
                             capture_output=True, text=True, timeout=10)
        assert res.returncode == 0 and res.stdout.strip() == "a", res


def test_show_prints_both_matrices_readably(model: Model) -> None:
    want = expect(model, lambda s, d: True)
    got = dict(want)
    got[("x/a", "y/b")] = False
    text = show(got, want, model.names)
    assert "x!" in text and text.count("!") == 2  # the cell, and the legend


def test_policy_check_trace_and_top_name_the_rule_and_the_policies(model: Model) -> None:
    c, x, y, z = model.cluster, model.ns["x"], model.ns["y"], model.ns["z"]
    deny = netpol("deny-all", x, {"podSelector": {}})
    from_y = netpol("from-y", x, {"podSelector": {"matchLabels": {"pod": "a"}},
                                  "ingress": [{"from": [ns_peer("y")]}]})
    with policies(model, deny, from_y):
        check(model, expect(model, lambda s, d: ns_of(d) != "x" or (d == "x/a" and ns_of(s) == "y")))
        ok = c.podnet("policy", "check", "--name", c.name, f"{y}/b", f"{x}/a", "80").stdout
        assert f"ingress: allowed by {x}/from-y ingress[0]" in ok and "verdict: allowed" in ok
        bad = c.podnet("policy", "check", "--name", c.name, f"{z}/b", f"{x}/a", "80").stdout
        assert (f"dropped: pod {x}/a is selected by policies {x}/deny-all, {x}/from-y in direction ingress "
                f"and none allows TCP port 80 from {z}/b") in " ".join(bad.split()), bad
        assert "verdict: dropped" in bad
        own = c.podnet("policy", "check", "--name", c.name, f"{x}/a", f"{x}/a", "80").stdout
        assert "reaching itself is always allowed" in own
        traced = c.podnet("trace", "--name", c.name, "--from", f"{z}/b", f"{x}/a:80").stdout
        assert f"dropped: pod {x}/a is selected by policies" in " ".join(traced.split()), traced
        top = json.loads(c.podnet("top", "--name", c.name, "-o", "json").stdout)
        drops = {d["policy"]: d["packets"] for d in top["policy_drops"]}
        assert drops.get(f"{x}/deny-all ingress", 0) > 0, drops


def test_an_agent_restart_keeps_enforcing(model: Model) -> None:
    c, x = model.cluster, model.ns["x"]
    node = c.get_json("pod", "-n", x, "a")["spec"]["nodeName"]
    with policies(model, netpol("deny-all", x, {"podSelector": {}})):
        want = expect(model, lambda s, d: ns_of(d) != "x")
        check(model, want)
        old = c.journal_pid(f"agent-{node}")
        os.kill(old, signal.SIGKILL)  # the supervisor starts a new agent; the rules stay in the kernel
        for _ in range(3):  # while no agent runs: nothing the policy denies gets through
            got = probe(model, "tcp", 80)
            leaked = sorted(k for k, reached in got.items() if reached and not want[k])
            assert not leaked, f"reached while the agent was down: {leaked}"
        check(model, want)  # and what it allows still connects (retried: a 1 s probe can time out under load)
        deadline = time.monotonic() + 60
        while c.journal_pid(f"agent-{node}") == old:
            assert time.monotonic() < deadline, "the agent was not restarted"
            time.sleep(0.5)
        time.sleep(2)  # the new agent's first full sync replaces the table
        check(model, want)
    check(model, expect(model, lambda s, d: True))


def test_a_new_pod_under_a_deny_policy_is_never_reachable(model: Model) -> None:
    """Probe the new pod's IP from the moment it has one until it has served for a while: with a
    deny-all policy in place first, no probe may ever get an answer. (With real packets this also
    passes when the informer alone catches the pod before its server listens; the ordering itself —
    rules programmed before any container starts — is pinned by tests/unit/agent/test_pod_worker.py.)"""
    c, x = model.cluster, model.ns["x"]
    with policies(model, netpol("deny-all", x, {"podSelector": {}})):
        check(model, expect(model, lambda s, d: ns_of(d) != "x"))
        c.apply(pod_manifest(x, "late"))
        ip, deadline = "", time.monotonic() + 60
        while not ip:
            assert time.monotonic() < deadline, "the new pod got no IP"
            ip = (c.get_json("pod", "-n", x, "late").get("status") or {}).get("podIP") or ""
        answered = []
        ready_seen = 0
        while ready_seen < 3 and time.monotonic() < deadline:
            got = probe(model, "tcp", 80, {"late": ip})
            answered += [s for (s, _), ok in got.items() if ok]
            pod = c.get_json("pod", "-n", x, "late")
            conditions = pod["status"].get("conditions", [])
            if any(cd["type"] == "Ready" and cd["status"] == "True" for cd in conditions):
                ready_seen += 1
        assert ready_seen == 3 and answered == [], answered
        c.kubectl("delete", "pod", "-n", x, "late", "--wait=false")
