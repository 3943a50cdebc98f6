"""Object factories for controller tests (plain dicts in wire shape)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from podnet.model.kinds import Obj

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
_uid = itertools.count(1)


def ts(seconds_ago: float = 0) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def service(name: str, selector: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None,
            ns: str = "default", **spec: Any) -> Obj:
    s: Obj = {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": name, "namespace": ns, "uid": f"svc-{name}", "resourceVersion": "1"},
              "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.50"],
                       "ipFamilies": ["IPv4"],
                       "ports": ports if ports is not None else
                       [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}], **spec}}
    if selector is not None:
        s["spec"]["selector"] = selector
    return s


def pod(name: str, ip: str | None = "10.244.1.5", labels: dict[str, str] | None = None, ready: bool = True,
        node: str = "node-1", ns: str = "default", phase: str = "Running", deleting: bool = False,
        ports: list[dict[str, Any]] | None = None, owner: Obj | None = None, created_ago: float = 100,
        ready_ago: float = 50, restarts: int = 0) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}",
                            "labels": labels if labels is not None else {"app": "web"},
                            "resourceVersion": str(next(_uid)), "creationTimestamp": ts(created_ago)}
    if deleting:
        meta["deletionTimestamp"] = ts(0)
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True, "blockOwnerDeletion": True}]
    status: dict[str, Any] = {"phase": phase,
                              "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                              "lastTransitionTime": ts(ready_ago)}],
                              "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x", "ports": ports or []}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(name: str, ready: str | None = "True", labels: dict[str, str] | None = None,
         unschedulable: bool = False, taints: list[dict[str, Any]] | None = None,
         heartbeat_ago: float = 1, pod_cidr: str | None = None, created_ago: float = 100) -> Obj:
    n: Obj = {"apiVersion": "v1", "kind": "Node",
              "metadata": {"name": name, "uid": f"node-{name}", "labels": labels or {},
                           "resourceVersion": "1", "creationTimestamp": ts(created_ago)},
              "spec": {}, "status": {"conditions": []}}
    if ready is not None:
        n["status"]["conditions"].append({"type": "Ready", "status": ready, "reason": "KubeletReady",
                                          "lastHeartbeatTime": ts(heartbeat_ago),
                                          "lastTransitionTime": ts(300)})
    if unschedulable:
        n["spec"]["unschedulable"] = True
    if taints:
        n["spec"]["taints"] = taints
    if pod_cidr:
        n["spec"]["podCIDR"] = pod_cidr
        n["spec"]["podCIDRs"] = [pod_cidr]
    return n
