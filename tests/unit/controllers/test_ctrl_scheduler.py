"""Scheduler decisions and kube-scheduler's wording."""

from __future__ import annotations

from _ctrl_factories import NOW, node, pod

from podnet.controllers.scheduler import missing_node_event, schedule


def pending(name: str = "p", **spec: object) -> dict:
    p = pod(name, ip=None, node="", phase="Pending", ready=False)
    p["spec"].update(spec)
    return p


def test_binds_to_ready_node_with_fewest_pods() -> None:
    nodes = [node("node-1"), node("node-2"), node("node-3")]
    running = [pod("a", node="node-1"), pod("b", node="node-1"), pod("c", node="node-3")]
    [a] = schedule(pending("web-1"), nodes, running, NOW)
    assert a.verb == "bind"
    assert a.obj == {"apiVersion": "v1", "kind": "Binding",
                     "metadata": {"name": "web-1", "namespace": "default", "uid": "uid-web-1"},
                     "target": {"apiVersion": "v1", "kind": "Node", "name": "node-2"}}
    assert a.then_event is not None
    assert (a.then_event["reason"], a.then_event["message"]) == (
        "Scheduled", "Successfully assigned default/web-1 to node-2")
    assert a.then_event["source"] == {"component": "default-scheduler"}


def _owned(p: dict, owner: str) -> dict:
    p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                         "uid": f"uid-{owner}", "controller": True}]
    return p


def test_replicas_of_one_owner_spread_over_nodes_before_filling_the_emptiest() -> None:
    """The mission's case: back-end and DNS pods already placed; three front-end replicas must land on
    three different nodes, even where that is not the node with the fewest pods."""
    nodes = [node("node-1"), node("node-2"), node("node-3")]
    placed = [pod("dns", node="node-1"), _owned(pod("back-1", node="node-1"), "back"),
              _owned(pod("back-2", node="node-2"), "back")]
    chosen = []
    for i in range(3):
        [a] = schedule(_owned(pending(f"front-{i}"), "front"), nodes, placed, NOW)
        target = a.obj["target"]["name"]
        chosen.append(target)
        placed.append(_owned(pod(f"front-{i}", node=target), "front"))
    assert sorted(chosen) == ["node-1", "node-2", "node-3"]
    assert chosen[0] == "node-3"  # no front-end anywhere yet: the emptiest node first


def test_unschedulable_message_as_kube_scheduler_words_it() -> None:
    nodes = [node("n1", unschedulable=True), node("n2", labels={"disk": "hdd"}),
             node("n3", labels={"disk": "hdd"})]
    actions = schedule(pending("web-1", nodeSelector={"disk": "ssd"}), nodes, [], NOW)
    assert [a.verb for a in actions] == ["update_status", "event"]
    msg = ("0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node "
           "affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
           "scheduling.")
    cond = next(c for c in actions[0].obj["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", msg)
    ev = actions[1].obj
    assert (ev["type"], ev["reason"], ev["message"]) == ("Warning", "FailedScheduling", msg)
    assert ev["involvedObject"]["kind"] == "Pod" and ev["involvedObject"]["name"] == "web-1"
    # the same situation again: nothing new to say
    assert schedule(actions[0].obj, nodes, [], NOW) == []


def test_not_ready_nodes_and_taints() -> None:
    nodes = [node("down", ready="False"), node("gone", ready="Unknown"),
             node("tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])]
    actions = schedule(pending(), nodes, [], NOW)
    msg = actions[0].obj["status"]["conditions"][-1]["message"]
    assert msg.startswith("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                          "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                          "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.")
    tolerant = pending(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                     "effect": "NoSchedule"}])
    [a] = schedule(tolerant, nodes, [], NOW)
    assert a.obj["target"]["name"] == "tainted"


def test_no_nodes_and_not_our_pods() -> None:
    actions = schedule(pending(), [], [], NOW)
    assert actions[0].obj["status"]["conditions"][-1]["message"] == "no nodes available to schedule pods"
    assert schedule(pending(schedulerName="other-scheduler"), [node("n1")], [], NOW) == []
    assert schedule(pod("bound", node="n1"), [node("n1")], [], NOW) == []


def test_node_affinity_required_terms() -> None:
    p = pending(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}})
    [a] = schedule(p, [node("n1", labels={"zone": "a"}), node("n2", labels={"zone": "b"})], [], NOW)
    assert a.obj["target"]["name"] == "n2"


def test_missing_node_event_for_pod_naming_unknown_node() -> None:
    p = pod("p", node="node-9", phase="Pending", ready=False, ip=None)
    [a] = missing_node_event(p, [node("node-1")], NOW)
    assert a.obj["type"] == "Warning" and a.obj["reason"] == "NodeNotFound"
    assert 'node "node-9" not found' in a.obj["message"]
    assert missing_node_event(p, [node("node-9")], NOW) == []


def test_a_full_node_is_skipped_and_all_full_is_too_many_pods() -> None:
    nodes = [node("node-1"), node("node-2")]
    for n in nodes:
        n["status"]["allocatable"] = {"pods": "2"}
    placed = [pod("a", node="node-1"), pod("b", node="node-1"), pod("c", node="node-2")]
    [a] = schedule(pending("web-1"), nodes, placed, NOW)
    assert a.obj["target"]["name"] == "node-2"
    placed.append(pod("d", node="node-2"))
    actions = schedule(pending("web-2"), nodes, placed, NOW)
    assert [x.verb for x in actions] == ["update_status", "event"]
    assert actions[1].obj["message"].startswith("0/2 nodes are available: 2 Too many pods.")
