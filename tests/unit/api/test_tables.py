"""Server-side Table printing: the cells kubectl shows, as Kubernetes' printers produce them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from podnet.api.tables import human_duration, table_for
from podnet.model.kinds import (
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
    ResourceType,
)

Obj = dict[str, Any]
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ts(**ago: float) -> str:
    return (NOW - timedelta(**ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: timedelta = timedelta(minutes=5), **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "7",
            "creationTimestamp": (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ"), **extra}


def columns(rt: ResourceType) -> list[tuple[str, int]]:
    return [(c["name"], c["priority"]) for c in table_for(rt, [], now=NOW)["columnDefinitions"]]


def cells(rt: ResourceType, obj: Obj) -> list[Any]:
    table = table_for(rt, [obj], now=NOW)
    assert len(table["rows"]) == 1
    return table["rows"][0]["cells"]  # type: ignore[no-any-return]


# -- AGE: duration.HumanDuration ---------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (1, "1s"), (59, "59s"), (70, "70s"), (119, "119s"), (120, "2m"), (121, "2m1s"),
    (182, "3m2s"), (190, "3m10s"), (599, "9m59s"), (600, "10m"), (70 * 60, "70m"), (179 * 60 + 59, "179m"),
    (3 * 3600, "3h"), (3 * 3600 + 5 * 60, "3h5m"), (4 * 3600, "4h"), (8 * 3600 + 59 * 60, "8h"),
    (47 * 3600, "47h"), (48 * 3600, "2d"), (51 * 3600, "2d3h"), (49 * 3600, "2d1h"),
    ((8 * 24 + 2) * 3600, "8d"), (367 * 86400, "367d"), ((365 * 2 * 24 + 25) * 3600, "2y1d"),
    (365 * 3 * 86400, "3y"), ((365 * 8 * 24 + 2) * 3600, "8y"),
    (-0.5, "0s"), (-1.5, "0s"), (-2, "<invalid>"),
])
def test_human_duration_matches_kubernetes(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_age_cell_uses_creation_timestamp_and_unknown_when_missing() -> None:
    ns = {"metadata": meta("a", timedelta(hours=4)), "status": {"phase": "Active"}}
    assert cells(NAMESPACES, ns) == ["a", "Active", "4h"]
    ns = {"metadata": {"name": "b"}, "status": {"phase": "Terminating"}}
    assert cells(NAMESPACES, ns) == ["b", "Terminating", "<unknown>"]
    ns = {"metadata": meta("c", timedelta(days=2, hours=3, minutes=10)), "status": {}}
    assert cells(NAMESPACES, ns) == ["c", "", "2d3h"]


# -- services ---------------------------------------------------------------------------------


def svc(name: str, type_: str = "ClusterIP", ports: list[Obj] | None = None, **spec: Any) -> Obj:
    body = {"type": type_, "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
            "ports": ports if ports is not None else [{"port": 80, "protocol": "TCP"}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name), "spec": body, "status": {}}


def test_service_columns() -> None:
    assert columns(SERVICES) == [("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0),
                                 ("Port(s)", 0), ("Age", 0), ("Selector", 1)]
    name = table_for(SERVICES, [], now=NOW)["columnDefinitions"][0]
    assert name["type"] == "string" and name["format"] == "name"
    assert name["description"].startswith("Name must")


def test_service_cells() -> None:
    assert cells(SERVICES, svc("web", selector={"tier": "fe", "app": "web"})) == [
        "web", "ClusterIP", "10.96.0.20", "<none>", "80/TCP", "5m", "app=web,tier=fe"]
    node_port = svc("myapp-service", "NodePort", [{"port": 80, "nodePort": 30008, "protocol": "TCP"},
                                                 {"port": 443, "protocol": "TCP"}])
    assert cells(SERVICES, node_port)[1:5] == ["NodePort", "10.96.0.20", "<none>", "80:30008/TCP,443/TCP"]
    assert cells(SERVICES, node_port)[6] == "<none>"
    with_external = svc("ext", externalIPs=["192.0.2.10", "192.0.2.11"])
    assert cells(SERVICES, with_external)[3] == "192.0.2.10,192.0.2.11"
    headless = svc("db", clusterIP="None", clusterIPs=["None"], ports=[])
    assert cells(SERVICES, headless)[2:5] == ["None", "<none>", "<none>"]
    name_only = svc("alias", "ExternalName", externalName="example.com", ports=[])
    del name_only["spec"]["clusterIP"], name_only["spec"]["clusterIPs"]
    assert cells(SERVICES, name_only)[1:4] == ["ExternalName", "<none>", "example.com"]


def test_loadbalancer_external_ip() -> None:
    lb = svc("lb", "LoadBalancer", [{"port": 80, "nodePort": 31000, "protocol": "TCP"}])
    assert cells(SERVICES, lb)[3:5] == ["<pending>", "80:31000/TCP"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "172.30.0.200"}, {"hostname": "lb.example"},
                                                 {"ip": "172.30.0.200"}]}}
    assert cells(SERVICES, lb)[3] == "172.30.0.200,lb.example"
    lb["spec"]["externalIPs"] = ["192.0.2.5"]
    assert cells(SERVICES, lb)[3] == "172.30.0.200,lb.example,192.0.2.5"
    lb["status"] = {"loadBalancer": {}}
    assert cells(SERVICES, lb)[3] == "192.0.2.5"


# -- pods -------------------------------------------------------------------------------------


def pod(name: str, phase: str = "Running", statuses: list[Obj] | None = None, containers: int = 1,
        **status: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name),
            "spec": {"nodeName": "node-1", "containers": [{"name": f"c{i}", "image": "busybox"}
                                                         for i in range(containers)]},
            "status": {"phase": phase, "containerStatuses": statuses or [], **status}}


def running(name: str = "c0", ready: bool = True, restarts: int = 0, **extra: Any) -> Obj:
    return {"name": name, "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ts(minutes=1)}}, **extra}


def waiting(reason: str, name: str = "c0", restarts: int = 0, **extra: Any) -> Obj:
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}},
            **extra}


def test_pod_columns() -> None:
    assert columns(PODS) == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0),
                             ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]


def test_running_pod_with_wide_cells() -> None:
    p = pod("web-1", statuses=[running()], podIP="10.244.1.5", podIPs=[{"ip": "10.244.1.5"}])
    assert cells(PODS, p) == ["web-1", "1/1", "Running", "0", "5m",
                              "10.244.1.5", "node-1", "<none>", "<none>"]


def test_pod_ready_counts_only_ready_running_containers() -> None:
    p = pod("two", statuses=[running("c0"), running("c1", ready=False)], containers=2)
    assert cells(PODS, p)[1:4] == ["1/2", "Running", "0"]


def test_pending_and_container_creating() -> None:
    unscheduled = pod("p", "Pending")
    unscheduled["spec"].pop("nodeName")
    assert cells(PODS, unscheduled)[1:4] == ["0/1", "Pending", "0"]
    assert cells(PODS, unscheduled)[5:7] == ["<none>", "<none>"]
    creating = pod("p", "Pending", [waiting("ContainerCreating")])
    assert cells(PODS, creating)[1:3] == ["0/1", "ContainerCreating"]
    assert cells(PODS, pod("p", "Pending", [waiting("ErrImagePull")]))[2] == "ErrImagePull"


def test_crash_loop_shows_restarts_and_when() -> None:
    last = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ts(seconds=5)}}
    p = pod("crash", statuses=[waiting("CrashLoopBackOff", restarts=5, lastState=last)])
    assert cells(PODS, p)[1:4] == ["0/1", "CrashLoopBackOff", "5 (5s ago)"]
    last["terminated"]["finishedAt"] = ts(minutes=3, seconds=2)
    assert cells(PODS, p)[3] == "5 (3m2s ago)"
    # Restarts without a recorded termination time: just the count.
    assert cells(PODS, pod("r", statuses=[running(restarts=2)]))[3] == "2"


def test_terminating_pod() -> None:
    p = pod("bye", statuses=[running()])
    p["metadata"]["deletionTimestamp"] = ts(seconds=3)
    assert cells(PODS, p)[2] == "Terminating"
    done = pod("done", "Succeeded", [{"name": "c0", "ready": False, "restartCount": 0,
                                      "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    done["metadata"]["deletionTimestamp"] = ts(seconds=3)
    assert cells(PODS, done)[2] == "Completed"


def test_completed_and_failed_pods_have_row_conditions() -> None:
    done = pod("job", "Succeeded", [{"name": "c0", "ready": False, "restartCount": 0,
                                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    row = table_for(PODS, [done], now=NOW)["rows"][0]
    assert row["cells"][1:3] == ["0/1", "Completed"]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    failed = pod("f", "Failed", [{"name": "c0", "ready": False, "restartCount": 0,
                                  "state": {"terminated": {"exitCode": 137}}}])
    row = table_for(PODS, [failed], now=NOW)["rows"][0]
    assert row["cells"][2] == "ExitCode:137"
    assert row["conditions"][0]["reason"] == "Failed"
    signal = pod("s", "Failed", [{"name": "c0", "state": {"terminated": {"exitCode": 0, "signal": 9}}}])
    assert cells(PODS, signal)[2] == "Signal:9"
    assert "conditions" not in table_for(PODS, [pod("r", statuses=[running()])], now=NOW)["rows"][0]


def test_status_reason_and_init_containers() -> None:
    evicted = pod("e", "Failed", reason="Evicted")
    assert cells(PODS, evicted)[2] == "Evicted"
    init = pod("i", "Pending", [waiting("PodInitializing")])
    init["spec"]["initContainers"] = [{"name": "setup", "image": "busybox"}]
    init["status"]["initContainerStatuses"] = [waiting("PodInitializing", name="setup")]
    assert cells(PODS, init)[1:3] == ["0/1", "Init:0/1"]
    init["status"]["initContainerStatuses"] = [waiting("CrashLoopBackOff", name="setup")]
    assert cells(PODS, init)[2] == "Init:CrashLoopBackOff"
    init["status"]["initContainerStatuses"] = [
        {"name": "setup", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
    assert cells(PODS, init)[2] == "PodInitializing"


def test_completed_container_next_to_running_one() -> None:
    finished = {"name": "c1", "ready": False, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    p = pod("mix", statuses=[running("c0"), finished], containers=2)
    assert cells(PODS, p)[1:3] == ["1/2", "NotReady"]
    p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert cells(PODS, p)[2] == "Running"


def test_readiness_gates_and_nominated_node() -> None:
    p = pod("g", statuses=[running()], nominatedNodeName="node-2",
            conditions=[{"type": "example.com/lb", "status": "True"}, {"type": "other", "status": "False"}])
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "other"},
                                   {"conditionType": "missing"}]
    assert cells(PODS, p)[7:9] == ["node-2", "1/3"]


# -- nodes, namespaces ------------------------------------------------------------------------


def test_node_columns_and_cells() -> None:
    assert columns(NODES) == [("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0),
                              ("Internal-IP", 1), ("External-IP", 1), ("OS-Image", 1), ("Kernel-Version", 1),
                              ("Container-Runtime", 1)]
    node = {"metadata": meta("node-1", timedelta(days=3), labels={"node-role.kubernetes.io/control-plane": "",
                                                                  "kubernetes.io/role": "worker"}),
            "spec": {},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "node-1"},
                                     {"type": "InternalIP", "address": "172.30.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-podnet", "osImage": "podnet",
                                    "kernelVersion": "6.8.0", "containerRuntimeVersion": "podnet://0.1.0"}}}
    assert cells(NODES, node) == ["node-1", "Ready", "control-plane,worker", "3d", "v1.32.0-podnet",
                                  "172.30.0.2", "<none>", "podnet", "6.8.0", "podnet://0.1.0"]
    node["spec"]["unschedulable"] = True
    node["status"]["conditions"][1]["status"] = "Unknown"
    assert cells(NODES, node)[1] == "NotReady,SchedulingDisabled"
    bare = {"metadata": {"name": "n2"}}
    assert cells(NODES, bare) == ["n2", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>",
                                  "<unknown>", "<unknown>", "<unknown>"]


def test_namespace_columns() -> None:
    assert columns(NAMESPACES) == [("Name", 0), ("Status", 0), ("Age", 0)]


# -- endpoints, endpointslices ----------------------------------------------------------------


def test_endpoints_cells() -> None:
    assert columns(ENDPOINTS) == [("Name", 0), ("Endpoints", 0), ("Age", 0)]
    ep: Obj = {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.244.1.2"}, {"ip": "10.244.2.3"}],
         "ports": [{"port": 80, "protocol": "TCP"}]}]}
    assert cells(ENDPOINTS, ep) == ["web", "10.244.1.2:80,10.244.2.3:80", "5m"]
    ep["subsets"][0]["ports"].append({"name": "https", "port": 443})
    assert cells(ENDPOINTS, ep)[1] == "10.244.1.2:80,10.244.2.3:80,10.244.1.2:443 + 1 more..."
    ep["subsets"].append({"addresses": [{"ip": "10.244.3.4"}], "ports": [{"port": 8080}]})
    assert cells(ENDPOINTS, ep)[1] == "10.244.1.2:80,10.244.2.3:80,10.244.1.2:443 + 2 more..."
    assert cells(ENDPOINTS, {"metadata": meta("none")})[1] == "<none>"
    not_ready = {"metadata": meta("nr"), "subsets": [{"notReadyAddresses": [{"ip": "10.244.1.9"}],
                                                      "ports": [{"port": 80}]}]}
    assert cells(ENDPOINTS, not_ready)[1] == ""
    headless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "fd00::5"}, {"ip": "10.244.1.7"}]}]}
    assert cells(ENDPOINTS, headless)[1] == "fd00::5,10.244.1.7"
    v6 = {"metadata": meta("v6"), "subsets": [{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 53}]}]}
    assert cells(ENDPOINTS, v6)[1] == "[fd00::5]:53"


def test_endpointslice_cells() -> None:
    assert columns(ENDPOINTSLICES) == [("Name", 0), ("AddressType", 0), ("Ports", 0), ("Endpoints", 0),
                                       ("Age", 0)]
    es = {"metadata": meta("web-abc12"), "addressType": "IPv4",
          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 443}],
          "endpoints": [{"addresses": [f"10.244.{i}.2"]} for i in range(1, 6)]}
    assert cells(ENDPOINTSLICES, es) == ["web-abc12", "IPv4", "80,443",
                                         "10.244.1.2,10.244.2.2,10.244.3.2 + 2 more...", "5m"]
    es["ports"] = [{"port": p} for p in (1, 2, 3, 4)] + [{"name": "named"}, {}]
    assert cells(ENDPOINTSLICES, es)[2] == "1,2,3 + 3 more..."
    # A port with an empty name and no number prints as "", and an all-empty list as <unset>.
    empty = {"metadata": meta("e"), "addressType": "IPv4", "ports": [{"name": "", "port": None}],
             "endpoints": []}
    assert cells(ENDPOINTSLICES, empty)[2:4] == ["<unset>", "<unset>"]
    two = dict(empty, ports=[{"name": ""}, {"port": 53}])
    assert cells(ENDPOINTSLICES, two)[2] == ",53"
    bare = {"metadata": meta("n"), "addressType": "IPv6"}
    assert cells(ENDPOINTSLICES, bare)[2:4] == ["<unset>", "<unset>"]


# -- workloads --------------------------------------------------------------------------------


def template(*containers: tuple[str, str]) -> Obj:
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": n, "image": i} for n, i in containers]}}


def test_deployment_cells() -> None:
    assert columns(DEPLOYMENTS) == [("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0),
                                    ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)]
    dep = {"metadata": meta("web", timedelta(seconds=45)),
           "spec": {"replicas": 3,
                    "selector": {"matchLabels": {"app": "web"},
                                 "matchExpressions": [
                                     {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                     {"key": "legacy", "operator": "DoesNotExist"}]},
                    "template": template(("web", "nginx:1.27"), ("log", "busybox"))},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells(DEPLOYMENTS, dep) == ["web", "2/3", 3, 2, "45s", "web,log", "nginx:1.27,busybox",
                                       "app=web,env in (dev,prod),!legacy"]
    fresh = {"metadata": meta("new"), "spec": {"replicas": 1, "template": template()}, "status": {}}
    assert cells(DEPLOYMENTS, fresh)[1:4] == ["0/1", 0, 0]


def test_replicaset_cells() -> None:
    assert columns(REPLICASETS) == [("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0),
                                    ("Containers", 1), ("Images", 1), ("Selector", 1)]
    rs = {"metadata": meta("web-5d4f8", timedelta(minutes=12)),
          "spec": {"replicas": 3, "selector": {"matchLabels": {"pod-template-hash": "5d4f8", "app": "web"}},
                   "template": template(("web", "nginx"))},
          "status": {"replicas": 3, "readyReplicas": 1}}
    assert cells(REPLICASETS, rs) == ["web-5d4f8", 3, 3, 1, "12m", "web", "nginx",
                                      "app=web,pod-template-hash=5d4f8"]
    table = table_for(REPLICASETS, [rs], now=NOW)
    assert [c["type"] for c in table["columnDefinitions"][1:4]] == ["integer"] * 3


def test_configmap_cells() -> None:
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells(CONFIGMAPS, cm) == ["cfg", 3, "5m"]


# -- events -----------------------------------------------------------------------------------


def test_event_cells() -> None:
    assert columns(EVENTS) == [("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1),
                               ("Source", 1), ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]
    ev = {"metadata": meta("web-1.17a"), "involvedObject": {"kind": "Pod", "name": "web-1",
                                                            "fieldPath": "spec.containers{web}"},
          "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container\n",
          "source": {"component": "kubelet", "host": "node-1"}, "count": 4,
          "firstTimestamp": ts(minutes=10), "lastTimestamp": ts(seconds=30)}
    assert cells(EVENTS, ev) == ["30s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}",
                                 "kubelet, node-1", "Back-off restarting failed container", "10m", 4,
                                 "web-1.17a"]
    new_api = {"metadata": meta("svc.1"), "involvedObject": {"kind": "Service"}, "type": "Normal",
               "reason": "IPAllocated", "message": "ok", "eventTime": "2026-03-01T11:59:00.000000Z",
               "reportingComponent": "podnet-ipam"}
    assert cells(EVENTS, new_api) == ["60s", "Normal", "IPAllocated", "service", "", "podnet-ipam", "ok",
                                      "60s", 1, "svc.1"]
    series = dict(new_api, series={"count": 7, "lastObservedTime": "2026-03-01T11:59:50.000000Z"})
    assert cells(EVENTS, series)[0] == "10s" and cells(EVENTS, series)[8] == 7


# -- the Table document -----------------------------------------------------------------------


def test_rows_carry_partial_object_metadata_by_default() -> None:
    s = svc("web")
    table = table_for(SERVICES, [s, svc("db")], now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [r["cells"][0] for r in table["rows"]] == ["web", "db"]
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": s["metadata"]}
    json.dumps(table)  # the document goes on the wire as it is


def test_include_object_object_and_none() -> None:
    s = svc("web")
    assert table_for(SERVICES, [s], now=NOW, include_object="Object")["rows"][0]["object"] == s
    assert "object" not in table_for(SERVICES, [s], now=NOW, include_object="None")["rows"][0]
    assert table_for(SERVICES, [s], now=NOW, include_object="")["rows"][0]["object"]["kind"] == (
        "PartialObjectMetadata")
    with pytest.raises(ValueError) as err:
        table_for(SERVICES, [s], include_object="Everything")
    assert str(err.value) == 'unrecognized includeObject value: "Everything"'


def test_resource_version_and_default_now() -> None:
    just_now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    table = table_for(NAMESPACES, [{"metadata": {"name": "x", "creationTimestamp": just_now}}],
                      resource_version="42")
    assert table["metadata"] == {"resourceVersion": "42"}
    assert table["rows"][0]["cells"][2] in ("0s", "1s", "2s")  # now defaults to the current time


def test_unknown_resources_get_the_default_name_and_created_at_table() -> None:
    widgets = ResourceType("example.com", "v1", "Widget", "widgets", "widget", True)
    created = ts(hours=1)
    table = table_for(widgets, [{"metadata": {"name": "w1", "creationTimestamp": created}}], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"),
                                                                            ("Created At", "date")]
    assert table["rows"][0]["cells"] == ["w1", created]


def test_garbage_fields_do_not_raise() -> None:
    weird = {"metadata": {"name": "w", "creationTimestamp": "yesterday"},
             "spec": {"ports": "80", "selector": ["a"], "type": None, "containers": None},
             "status": {"containerStatuses": [None, {"state": "x"}], "loadBalancer": 5}}
    for rt in (SERVICES, PODS, NODES, ENDPOINTS, ENDPOINTSLICES, DEPLOYMENTS, REPLICASETS, EVENTS):
        row = table_for(rt, [weird], now=NOW)["rows"][0]
        assert len(row["cells"]) == len(table_for(rt, [], now=NOW)["columnDefinitions"])
