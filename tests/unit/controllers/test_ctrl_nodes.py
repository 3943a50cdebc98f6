"""Node IPAM and node lifecycle."""

from __future__ import annotations

import datetime as dt

from _ctrl_factories import NOW, node, pod

from podnet.controllers.node_ipam import next_free_cidr, reconcile_node_cidr
from podnet.controllers.node_lifecycle import reconcile_node_health


def test_next_free_cidr_and_reuse_after_delete() -> None:
    nodes = [node("a", pod_cidr="10.244.0.0/24"), node("b", pod_cidr="10.244.2.0/24")]
    assert next_free_cidr("10.244.0.0/16", 24, nodes) == "10.244.1.0/24"
    [a] = reconcile_node_cidr(node("c"), nodes, "10.244.0.0/16", 24)
    assert a.verb == "update"
    assert a.obj["spec"]["podCIDR"] == "10.244.1.0/24" and a.obj["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    assert reconcile_node_cidr(nodes[0], nodes, "10.244.0.0/16", 24) == []
    # node b deleted: its range is free again
    assert next_free_cidr("10.244.0.0/16", 24, nodes[:1]) == "10.244.1.0/24"
    assert next_free_cidr("10.244.0.0/23", 24, [*nodes[:1], node("x", pod_cidr="10.244.1.0/24")]) is None


def test_cidr_exhausted_emits_event() -> None:
    nodes = [node("a", pod_cidr="10.244.0.0/24")]
    [a] = reconcile_node_cidr(node("b"), nodes, "10.244.0.0/24", 24)
    assert a.verb == "event" and a.obj["reason"] == "CIDRNotAvailable"
    assert a.obj["metadata"]["namespace"] == "default"


def test_fresh_heartbeat_no_action() -> None:
    assert reconcile_node_health(node("n1", heartbeat_ago=5), [], NOW, grace_seconds=20) == []


def test_stale_node_goes_unknown_tainted_and_pods_not_ready() -> None:
    n = node("n1", heartbeat_ago=60)
    pods = [pod("a", node="n1"), pod("b", node="n2"), pod("c", node="n1", ready=False)]
    actions = reconcile_node_health(n, pods, NOW, grace_seconds=20)
    kinds = [(a.verb, a.rt.kind, a.obj["metadata"].get("name")) for a in actions]
    assert kinds[0] == ("update_status", "Node", "n1")
    ready = next(c for c in actions[0].obj["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    taint_update = next(a for a in actions if a.verb == "update" and a.rt.kind == "Node")
    assert {(t["key"], t["effect"]) for t in taint_update.obj["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}
    pod_updates = [a for a in actions if a.rt.kind == "Pod"]
    assert [a.obj["metadata"]["name"] for a in pod_updates] == ["a"]
    conds = pod_updates[0].obj["status"]["conditions"]
    assert next(c for c in conds if c["type"] == "Ready")["status"] == "False"


def test_node_back_loses_taints() -> None:
    n = node("n1", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
                           {"key": "keep", "effect": "NoSchedule"}])
    [a] = reconcile_node_health(n, [], NOW, grace_seconds=20)
    assert a.obj["spec"]["taints"] == [{"key": "keep", "effect": "NoSchedule"}]


def test_never_posted_status() -> None:
    actions = reconcile_node_health(node("n1", ready=None, created_ago=60), [], NOW, grace_seconds=20)
    ready = next(c for c in actions[0].obj["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusNeverUpdated")
    assert reconcile_node_health(node("n2", ready=None, created_ago=5), [], NOW, grace_seconds=20) == []


def test_old_heartbeat_seen_changing_recently_is_not_stale() -> None:
    """After a control-plane outage every stored heartbeat is old; what counts is when the controller
    last saw it change, so a restarted controller gives each node a full grace period."""
    n = node("node-1", heartbeat_ago=120)
    assert reconcile_node_health(n, [], NOW, grace_seconds=20,
                                 observed_at=NOW - dt.timedelta(seconds=5)) == []
    late = reconcile_node_health(n, [], NOW, grace_seconds=20, observed_at=NOW - dt.timedelta(seconds=25))
    assert [a.verb for a in late][:1] == ["update_status"]
    ready = next(c for c in late[0].obj["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
