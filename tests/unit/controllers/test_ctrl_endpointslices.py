"""EndpointSlice reconcile: pure inputs -> the API calls the controller would make."""

from __future__ import annotations

import copy

from _ctrl_factories import pod, service

from podnet.controllers.endpointslices import (
    cleanup_slices,
    reconcile_endpoint_slices,
)
from podnet.model.kinds import Obj
from podnet.model.services import ENDPOINTSLICE_CONTROLLER as MANAGED_BY
from podnet.model.services import MANAGED_BY_LABEL, SERVICE_NAME_LABEL

SEL = {"app": "web"}


def created_slice(actions: list, name: str) -> Obj:
    """Apply a create the way the API server would (name from generateName)."""
    [a] = [a for a in actions if a.verb == "create"]
    s = copy.deepcopy(a.obj)
    s["metadata"]["name"] = name
    s["metadata"]["uid"] = f"uid-{name}"
    s["metadata"]["resourceVersion"] = "42"
    return s


def test_slice_shape_matches_kubernetes() -> None:
    svc = service("web", SEL, labels=None)
    svc["metadata"]["labels"] = {"team": "a"}
    pods = [pod("web-a", "10.244.1.5"), pod("web-b", "10.244.2.7", node="node-2", ready=False),
            pod("web-c", "10.244.2.9", deleting=True)]
    [a] = reconcile_endpoint_slices(svc, pods, [])
    assert a.verb == "create" and a.rt.kind == "EndpointSlice"
    s = a.obj
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"] == {"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: MANAGED_BY}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": "svc-web", "controller": True,
                                                 "blockOwnerDeletion": True}]
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_name = {e["targetRef"]["name"]: e for e in s["endpoints"]}
    assert by_name["web-a"] == {"addresses": ["10.244.1.5"],
                                "conditions": {"ready": True, "serving": True, "terminating": False},
                                "nodeName": "node-1",
                                "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-a",
                                              "uid": "uid-web-a"}}
    assert by_name["web-b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert by_name["web-c"]["conditions"] == {"ready": False, "serving": True, "terminating": True}


def test_pods_left_out_other_namespace_terminal_no_ip_or_other_labels() -> None:
    svc = service("web", SEL)
    pods = [pod("ok"), pod("other-ns", ns="prod"), pod("done", phase="Succeeded"),
            pod("failed", phase="Failed"), pod("noip", ip=None), pod("db", labels={"app": "db"})]
    [a] = reconcile_endpoint_slices(svc, pods, [])
    assert [e["targetRef"]["name"] for e in a.obj["endpoints"]] == ["ok"]


def test_selectorless_and_external_name_untouched() -> None:
    assert reconcile_endpoint_slices(service("bare"), [pod("x")], []) == []
    ext = service("ext", SEL, type="ExternalName", externalName="example.com")
    assert reconcile_endpoint_slices(ext, [pod("x")], []) == []


def test_no_pods_gives_placeholder_slice() -> None:
    [a] = reconcile_endpoint_slices(service("web", SEL), [], [])
    assert a.verb == "create" and a.obj["endpoints"] == [] and a.obj["ports"] == []


def test_headless_service_gets_slices_with_headless_label() -> None:
    svc = service("db", {"app": "db"}, clusterIP="None", clusterIPs=["None"])
    [a] = reconcile_endpoint_slices(svc, [pod("db-0", labels={"app": "db"})], [])
    assert a.obj["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert len(a.obj["endpoints"]) == 1


def test_named_target_port_resolves_per_pod_and_groups_slices() -> None:
    svc = service("web", SEL, ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    a8080 = pod("a", "10.244.1.1", ports=[{"name": "web", "containerPort": 8080}])
    b9090 = pod("b", "10.244.1.2", ports=[{"name": "web", "containerPort": 9090}])
    c_none = pod("c", "10.244.1.3", ports=[{"name": "other", "containerPort": 7000}])
    actions = reconcile_endpoint_slices(svc, [a8080, b9090, c_none], [])
    slices = {tuple(p["port"] for p in a.obj["ports"]): [e["targetRef"]["name"] for e in a.obj["endpoints"]]
              for a in actions}
    assert slices == {(8080,): ["a"], (9090,): ["b"], (): ["c"]}


def test_at_most_100_endpoints_per_slice() -> None:
    svc = service("web", SEL)
    pods = [pod(f"p{i:03d}", f"10.244.{i // 200}.{i % 200 + 1}") for i in range(250)]
    actions = reconcile_endpoint_slices(svc, pods, [])
    assert [a.verb for a in actions] == ["create"] * 3
    assert sorted(len(a.obj["endpoints"]) for a in actions) == [50, 100, 100]


def test_no_write_when_nothing_changed_and_one_update_on_readiness_change() -> None:
    svc = service("web", SEL)
    pods = [pod("a", "10.244.1.1"), pod("b", "10.244.1.2", ready=False)]
    s = created_slice(reconcile_endpoint_slices(svc, pods, []), "web-abcde")
    assert reconcile_endpoint_slices(svc, pods, [s]) == []
    pods[1] = pod("b", "10.244.1.2", ready=True)
    [a] = reconcile_endpoint_slices(svc, pods, [s])
    assert a.verb == "update" and a.obj["metadata"]["name"] == "web-abcde"
    assert a.obj["metadata"]["resourceVersion"] == "42"  # a stale decision gets a 409, not a lost write
    assert all(e["conditions"]["ready"] for e in a.obj["endpoints"])


def test_removed_pods_update_slice_and_empty_extra_slices_are_deleted() -> None:
    svc = service("web", SEL)
    pods = [pod(f"p{i:03d}", f"10.244.1.{i + 1}") for i in range(150)]
    actions = reconcile_endpoint_slices(svc, pods, [])
    slices = []
    for i, a in enumerate(actions):
        s = copy.deepcopy(a.obj)
        s["metadata"]["name"] = f"web-{i}"
        slices.append(s)
    small = next(s for s in slices if len(s["endpoints"]) == 50)
    keep_names = {e["targetRef"]["name"] for e in next(s for s in slices if s is not small)["endpoints"]}
    remaining = [p for p in pods if p["metadata"]["name"] in keep_names]
    [a] = reconcile_endpoint_slices(svc, remaining, slices)
    assert a.verb == "delete" and a.obj["metadata"]["name"] == small["metadata"]["name"]


def test_all_pods_gone_keeps_one_placeholder() -> None:
    svc = service("web", SEL)
    s = created_slice(reconcile_endpoint_slices(svc, [pod("a")], []), "web-x")
    [a] = reconcile_endpoint_slices(svc, [], [s])
    assert a.verb == "update" and a.obj["endpoints"] == [] and a.obj["ports"] == []


def test_slices_of_other_services_or_managers_ignored() -> None:
    svc = service("web", SEL)
    foreign = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-manual", "namespace": "default",
                            "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: "someone-else"}},
               "addressType": "IPv4", "endpoints": [], "ports": []}
    actions = reconcile_endpoint_slices(svc, [pod("a")], [foreign])
    assert [a.verb for a in actions] == ["create"]
    assert cleanup_slices("default", "web", [foreign]) == []


def test_publish_not_ready_addresses_marks_ready() -> None:
    svc = service("web", SEL, publishNotReadyAddresses=True)
    [a] = reconcile_endpoint_slices(svc, [pod("a", ready=False)], [])
    assert a.obj["endpoints"][0]["conditions"] == {"ready": True, "serving": False, "terminating": False}


def test_hostname_when_subdomain_matches() -> None:
    svc = service("db", {"app": "db"}, clusterIP="None")
    p = pod("db-0", labels={"app": "db"})
    p["spec"].update({"hostname": "db-0", "subdomain": "db"})
    [a] = reconcile_endpoint_slices(svc, [p], [])
    assert a.obj["endpoints"][0]["hostname"] == "db-0"
