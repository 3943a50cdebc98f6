"""Server-side printing: `meta.k8s.io/v1 Table` documents, as kube-apiserver renders them.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
cells it gets back as they are (hiding `priority >= 1` columns unless `-o wide`), so the
column sets and cell formats here follow Kubernetes' own printers
(pkg/printers/internalversion/printers.go) and `duration.HumanDuration`.

Entry point: `table_for(rt, objs, now=..., include_object=...)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from podnet.model.kinds import (
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    NAMESPACES,
    NETWORKPOLICIES,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
    Obj,
    ResourceType,
)

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object", "")  # "" means Metadata, as in Kubernetes

# -- human durations (k8s.io/apimachinery/pkg/util/duration) ----------------------------------

_NS = 1_000_000_000
_MINUTE = 60 * _NS
_HOUR = 60 * _MINUTE


def _trunc_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration_ns(d: int) -> str:
    """`duration.HumanDuration` for a duration in nanoseconds: `45s`, `3m2s`, `4h`, `2d3h`, `3y12d`."""
    seconds = _trunc_div(d, _NS)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = d // _MINUTE
    if minutes < 10:
        s = (d // _NS) % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = d // _HOUR
    if hours < 8:
        m = (d // _MINUTE) % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def human_duration(seconds: float) -> str:
    """`duration.HumanDuration` for a duration in seconds."""
    return human_duration_ns(round(seconds * _NS))


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`2025-01-01T00:00:00Z`, with or without fractions); None if unset/bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """`translateTimestampSince`: `<unknown>` for a missing timestamp, else the human age."""
    then = parse_time(value)
    if then is None:
        return "<unknown>"
    delta = now - then
    return human_duration_ns((delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000)


# -- small formatters -------------------------------------------------------------------------


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _i(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v,k2=v2`, or `<none>`."""
    items = sorted(_d(labels).items())
    return ",".join(f"{k}={v}" for k, v in items) if items else "<none>"


def format_label_selector(selector: Any, *, empty: str = "<none>") -> str:
    """`metav1.FormatLabelSelector`: `app=web,tier in (a,b),!legacy`; `<none>` when nil or empty."""
    if not isinstance(selector, dict):
        return "<none>"
    reqs: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in _d(selector.get("matchLabels")).items()]
    for expr in _l(selector.get("matchExpressions")):
        expr = _d(expr)
        key, op = _s(expr.get("key")), _s(expr.get("operator"))
        values = ",".join(sorted(_s(v) for v in _l(expr.get("values"))))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(op)
        if text is None:
            return "<error>"
        reqs.append((key, text))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs) or empty


def _list_with_more(items: list[str], count: int, maximum: int = 3, unset: str = "<unset>") -> str:
    ret = ",".join(items[:maximum])
    if count > maximum:
        return f"{ret} + {count - maximum} more..."
    return ret or unset


def _container_cells(template: Any) -> tuple[str, str]:
    containers = [_d(c) for c in _l(_d(_d(template).get("spec")).get("containers"))]
    return ",".join(_s(c.get("name")) for c in containers), ",".join(_s(c.get("image")) for c in containers)


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# -- columns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


_NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some "
             "resources may allow a client to request the generation of an appropriate name automatically. "
             "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
             "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_AGE_DOC = ("CreationTimestamp is a timestamp representing the server time when this object was created. "
            "It is not guaranteed to be set in happens-before order across separate operations. Clients may "
            "not set this value. It is represented in RFC3339 form and is in UTC.\n\n"
            "Populated by the system. Read-only. Null for lists. More info: "
            "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
NAME = Column("Name", format="name", description=_NAME_DOC)
AGE = Column("Age", description=_AGE_DOC)
_CONTAINERS = Column("Containers", priority=1, description="Names of each container in the template.")
_IMAGES = Column("Images", priority=1, description="Images referenced by each container in the template.")

Printer = Callable[[Obj, datetime], list[Any]]


@dataclass(frozen=True)
class TablePrinter:
    columns: tuple[Column, ...]
    cells: Printer
    conditions: Callable[[Obj], list[dict[str, str]]] | None = None


# -- services ---------------------------------------------------------------------------------


def _lb_ingress(status: Any) -> list[str]:
    out: list[str] = []
    for ing in _l(_d(_d(status).get("loadBalancer")).get("ingress")):
        ing = _d(ing)
        value = _s(ing.get("ip")) or _s(ing.get("hostname"))
        if value and value not in out:
            out.append(value)
    return out


def service_external_ip(svc: Obj) -> str:
    spec = _d(svc.get("spec"))
    external = [_s(ip) for ip in _l(spec.get("externalIPs"))]
    svc_type = _s(spec.get("type"))
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        results = _lb_ingress(svc.get("status")) + external
        return ",".join(results) if results else "<pending>"
    if svc_type == "ExternalName":
        return _s(spec.get("externalName"))
    return "<unknown>"


def service_ports(ports: Any) -> str:
    pieces = []
    for port in _l(ports):
        port = _d(port)
        protocol = _s(port.get("protocol"))
        node_port = _i(port.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{port.get('port')}:{node_port}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service(svc: Obj, now: datetime) -> list[Any]:
    spec = _d(svc.get("spec"))
    cluster_ips = _l(spec.get("clusterIPs"))
    cluster_ip = _s(cluster_ips[0]) if cluster_ips else _s(spec.get("clusterIP"))
    meta = _d(svc.get("metadata"))
    return [_s(meta.get("name")), _s(spec.get("type")), cluster_ip or "<none>", service_external_ip(svc),
            service_ports(spec.get("ports")), since(meta.get("creationTimestamp"), now),
            format_labels(spec.get("selector"))]


# -- pods -------------------------------------------------------------------------------------


def _terminated_at(status: Obj) -> datetime | None:
    return parse_time(_d(_d(status.get("lastState")).get("terminated")).get("finishedAt"))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if b > a else a


def _has_condition(pod_status: Obj, type_: str) -> bool:
    return any(_d(c).get("type") == type_ and _d(c).get("status") == "True"
               for c in _l(pod_status.get("conditions")))


def pod_summary(pod: Obj) -> tuple[int, int, str, int, datetime | None]:
    """(ready containers, total containers, STATUS reason, restarts, last restart time) as printPod."""
    spec, status, meta = _d(pod.get("spec")), _d(pod.get("status")), _d(pod.get("metadata"))
    init_specs = {_s(_d(c).get("name")): _d(c) for c in _l(spec.get("initContainers"))}

    def sidecar(name: str) -> bool:
        return init_specs.get(name, {}).get("restartPolicy") == "Always"

    total = len(_l(spec.get("containers"))) + sum(1 for n in init_specs if sidecar(n))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    phase = _s(status.get("phase"))
    reason = _s(status.get("reason")) or phase
    for cond in _l(status.get("conditions")):
        if _d(cond).get("type") == "PodScheduled" and _d(cond).get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_statuses = [_d(c) for c in _l(status.get("initContainerStatuses"))]
    initializing = False
    for i, cs in enumerate(init_statuses):
        restarts += _i(cs.get("restartCount"))
        last_restart = _later(last_restart, _terminated_at(cs))
        name = _s(cs.get("name"))
        if sidecar(name):
            sidecar_restarts += _i(cs.get("restartCount"))
            last_sidecar_restart = _later(last_sidecar_restart, _terminated_at(cs))
        state = _d(cs.get("state"))
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, dict) and _i(terminated.get("exitCode")) == 0:
            continue
        if sidecar(name) and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            if not _s(terminated.get("reason")):
                signal = _i(terminated.get("signal"))
                reason = (f"Init:Signal:{signal}" if signal
                          else f"Init:ExitCode:{_i(terminated.get('exitCode'))}")
            else:
                reason = "Init:" + _s(terminated.get("reason"))
        elif (isinstance(waiting, dict) and _s(waiting.get("reason"))
              and waiting.get("reason") != "PodInitializing"):
            reason = "Init:" + _s(waiting.get("reason"))
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(status, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed([_d(c) for c in _l(status.get("containerStatuses"))]):
            restarts += _i(cs.get("restartCount"))
            last_restart = _later(last_restart, _terminated_at(cs))
            state = _d(cs.get("state"))
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if isinstance(waiting, dict) and _s(waiting.get("reason")):
                reason = _s(waiting.get("reason"))
            elif isinstance(terminated, dict) and _s(terminated.get("reason")):
                reason = _s(terminated.get("reason"))
            elif isinstance(terminated, dict):
                signal = _i(terminated.get("signal"))
                reason = f"Signal:{signal}" if signal else f"ExitCode:{_i(terminated.get('exitCode'))}"
            elif cs.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(status, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def _pod(pod: Obj, now: datetime) -> list[Any]:
    spec, status, meta = _d(pod.get("spec")), _d(pod.get("status")), _d(pod.get("metadata"))
    ready, total, reason, restarts, last_restart = pod_summary(pod)
    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({since(last_restart.isoformat(), now)} ago)"
    pod_ips = _l(status.get("podIPs"))
    pod_ip = _s(_d(pod_ips[0]).get("ip")) if pod_ips else _s(status.get("podIP"))
    gates = _l(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        conditions = {_s(_d(c).get("type")): _d(c) for c in reversed(_l(status.get("conditions")))}
        true_count = sum(1 for g in gates
                         if conditions.get(_s(_d(g).get("conditionType")), {}).get("status") == "True")
        gates_cell = f"{true_count}/{len(gates)}"
    return [_s(meta.get("name")), f"{ready}/{total}", reason, restarts_cell,
            since(meta.get("creationTimestamp"), now), pod_ip or "<none>",
            _s(spec.get("nodeName")) or "<none>", _s(status.get("nominatedNodeName")) or "<none>", gates_cell]


def _pod_conditions(pod: Obj) -> list[dict[str, str]]:
    phase = _d(pod.get("status")).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


# -- nodes, namespaces ------------------------------------------------------------------------


def _node(node: Obj, now: datetime) -> list[Any]:
    spec, status, meta = _d(node.get("spec")), _d(node.get("status")), _d(node.get("metadata"))
    states = []
    ready = next((_d(c) for c in _l(status.get("conditions")) if _d(c).get("type") == "Ready"), None)
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    else:
        states.append("Unknown")
    if spec.get("unschedulable") is True:
        states.append("SchedulingDisabled")
    roles: list[str] = []
    for key, value in sorted(_d(meta.get("labels")).items()):
        role = ""
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/"):]
        elif key == "kubernetes.io/role":
            role = _s(value)
        if role and role not in roles:
            roles.append(role)
    info = _d(status.get("nodeInfo"))
    addresses = [_d(a) for a in _l(status.get("addresses"))]

    def address(kind: str) -> str:
        return next((_s(a.get("address")) for a in addresses if a.get("type") == kind), "<none>")

    return [_s(meta.get("name")), ",".join(states), ",".join(sorted(roles)) or "<none>",
            since(meta.get("creationTimestamp"), now), _s(info.get("kubeletVersion")),
            address("InternalIP"), address("ExternalIP"), _s(info.get("osImage")) or "<unknown>",
            _s(info.get("kernelVersion")) or "<unknown>",
            _s(info.get("containerRuntimeVersion")) or "<unknown>"]


def _namespace(ns: Obj, now: datetime) -> list[Any]:
    meta = _d(ns.get("metadata"))
    return [_s(meta.get("name")), _s(_d(ns.get("status")).get("phase")),
            since(meta.get("creationTimestamp"), now)]


# -- endpoints, endpointslices ----------------------------------------------------------------


def format_endpoints(endpoints: Obj) -> str:
    """`formatEndpoints`: `10.244.1.2:80,10.244.2.3:80 + 1 more...`, `<none>` without subsets."""
    subsets = [_d(s) for s in _l(endpoints.get("subsets"))]
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [_s(_d(a).get("ip")) for a in _l(subset.get("addresses"))]
        ports = [_d(p) for p in _l(subset.get("ports"))]
        if not ports:
            count += len(addresses)
            shown.extend(addresses[: max(0, 3 - len(shown))])
            continue
        for port in ports:
            count += len(addresses)
            room = max(0, 3 - len(shown))
            shown.extend(_join_host_port(ip, port.get("port")) for ip in addresses[:room])
    return _list_with_more(shown, count, 3, unset="")


def _endpoints(ep: Obj, now: datetime) -> list[Any]:
    meta = _d(ep.get("metadata"))
    return [_s(meta.get("name")), format_endpoints(ep), since(meta.get("creationTimestamp"), now)]


def _slice_ports(ports: Any) -> str:
    shown: list[str] = []
    count = 0
    for port in _l(ports):
        port = _d(port)
        if port.get("port") is not None:
            shown.append(str(port.get("port")))
        elif port.get("name") is not None:
            shown.append(_s(port.get("name")))
        else:
            shown.append("*")
        count += 1
    return _list_with_more(shown, count)


def _slice_endpoints(endpoints: Any) -> str:
    addresses = [_s(a) for e in _l(endpoints) for a in _l(_d(e).get("addresses"))]
    return _list_with_more(addresses, len(addresses))


def _endpointslice(es: Obj, now: datetime) -> list[Any]:
    meta = _d(es.get("metadata"))
    return [_s(meta.get("name")), _s(es.get("addressType")), _slice_ports(es.get("ports")),
            _slice_endpoints(es.get("endpoints")), since(meta.get("creationTimestamp"), now)]


# -- workloads --------------------------------------------------------------------------------


def _deployment(dep: Obj, now: datetime) -> list[Any]:
    spec, status, meta = _d(dep.get("spec")), _d(dep.get("status")), _d(dep.get("metadata"))
    names, images = _container_cells(spec.get("template"))
    return [_s(meta.get("name")), f"{_i(status.get('readyReplicas'))}/{_i(spec.get('replicas'))}",
            _i(status.get("updatedReplicas")), _i(status.get("availableReplicas")),
            since(meta.get("creationTimestamp"), now), names, images,
            format_label_selector(spec.get("selector"), empty="")]


def _replicaset(rs: Obj, now: datetime) -> list[Any]:
    spec, status, meta = _d(rs.get("spec")), _d(rs.get("status")), _d(rs.get("metadata"))
    names, images = _container_cells(spec.get("template"))
    return [_s(meta.get("name")), _i(spec.get("replicas")), _i(status.get("replicas")),
            _i(status.get("readyReplicas")), since(meta.get("creationTimestamp"), now), names, images,
            format_label_selector(spec.get("selector"))]


def _configmap(cm: Obj, now: datetime) -> list[Any]:
    meta = _d(cm.get("metadata"))
    return [_s(meta.get("name")), len(_d(cm.get("data"))) + len(_d(cm.get("binaryData"))),
            since(meta.get("creationTimestamp"), now)]


def _network_policy(np: Obj, now: datetime) -> list[Any]:
    meta = _d(np.get("metadata"))
    return [_s(meta.get("name")), format_label_selector(_d(np.get("spec")).get("podSelector")),
            since(meta.get("creationTimestamp"), now)]


# -- events -----------------------------------------------------------------------------------


def _event(ev: Obj, now: datetime) -> list[Any]:
    meta = _d(ev.get("metadata"))
    first = since(ev.get("firstTimestamp"), now)
    if parse_time(ev.get("firstTimestamp")) is None:
        first = since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if parse_time(ev.get("lastTimestamp")) else first
    count = _i(ev.get("count"))
    series = ev.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = _i(series.get("count"))
    elif count == 0:
        count = 1
    involved = _d(ev.get("involvedObject"))
    kind = _s(involved.get("kind")).lower()
    target = f"{kind}/{_s(involved.get('name'))}" if involved.get("name") else kind
    source = _d(ev.get("source"))
    component = _s(source.get("component")) or _s(ev.get("reportingComponent"))
    instance = _s(source.get("host")) or _s(ev.get("reportingInstance"))
    return [last, _s(ev.get("type")), _s(ev.get("reason")), target, _s(involved.get("fieldPath")),
            f"{component}, {instance}" if instance else component, _s(ev.get("message")).strip(),
            first, count, _s(meta.get("name"))]


# -- the table --------------------------------------------------------------------------------

PRINTERS: dict[str, TablePrinter] = {
    SERVICES.key: TablePrinter((
        NAME,
        Column("Type", description="type determines how the Service is exposed."),
        Column("Cluster-IP", description="clusterIP is the IP address of the service."),
        Column("External-IP", description="externalIPs is a list of IP addresses for which nodes in the "
                                          "cluster will also accept traffic for this service."),
        Column("Port(s)", description="The list of ports that are exposed by this service."),
        AGE,
        Column("Selector", priority=1, description="Route service traffic to pods with label keys and "
                                                   "values matching this selector."),
    ), _service),
    PODS.key: TablePrinter((
        NAME,
        Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", description="The aggregate status of the containers in this pod."),
        Column("Restarts", description="The number of times the containers in this pod have been restarted "
                                       "and when the last container in this pod has restarted."),
        AGE,
        Column("IP", priority=1, description="podIP address allocated to the pod."),
        Column("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
        Column("Nominated Node", priority=1, description="nominatedNodeName is set only when this pod "
                                                         "preempts other pods on the node."),
        Column("Readiness Gates", priority=1, description="If specified, all readiness gates will be "
                                                          "evaluated for pod readiness."),
    ), _pod, _pod_conditions),
    NODES.key: TablePrinter((
        NAME,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE,
        Column("Version", description="Kubelet Version reported by the node."),
        Column("Internal-IP", priority=1, description="List of addresses reachable to the node."),
        Column("External-IP", priority=1, description="List of addresses reachable to the node."),
        Column("OS-Image", priority=1, description="OS Image reported by the node."),
        Column("Kernel-Version", priority=1, description="Kernel Version reported by the node."),
        Column("Container-Runtime", priority=1, description="ContainerRuntime Version reported by the node."),
    ), _node),
    NAMESPACES.key: TablePrinter((
        NAME, Column("Status", description="The status of the namespace"), AGE,
    ), _namespace),
    ENDPOINTS.key: TablePrinter((
        NAME, Column("Endpoints", description="The set of all endpoints is the union of all subsets."), AGE,
    ), _endpoints),
    ENDPOINTSLICES.key: TablePrinter((
        NAME,
        Column("AddressType", description="addressType specifies the type of address carried by this "
                                          "EndpointSlice."),
        Column("Ports", description="ports specifies the list of network ports exposed by each endpoint "
                                    "in this slice."),
        Column("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
        AGE,
    ), _endpointslice),
    DEPLOYMENTS.key: TablePrinter((
        NAME,
        Column("Ready", description="Number of the pod with ready state"),
        Column("Up-to-date", description="Total number of non-terminating pods targeted by this deployment "
                                         "that have the desired template spec."),
        Column("Available", description="Total number of available non-terminating pods targeted by this "
                                        "deployment."),
        AGE, _CONTAINERS, _IMAGES,
        Column("Selector", priority=1, description="Label selector for pods."),
    ), _deployment),
    REPLICASETS.key: TablePrinter((
        NAME,
        Column("Desired", type="integer", description="Replicas is the number of desired pods."),
        Column("Current", type="integer", description="Replicas is the most recently observed number of "
                                                      "non-terminating pods."),
        Column("Ready", type="integer", description="The number of non-terminating pods targeted by this "
                                                    "ReplicaSet with a Ready Condition."),
        AGE, _CONTAINERS, _IMAGES,
        Column("Selector", priority=1, description="Selector is a label query over pods that should match "
                                                   "the replica count."),
    ), _replicaset),
    NETWORKPOLICIES.key: TablePrinter((
        NAME,
        Column("Pod-Selector", description=(
            "podSelector selects the pods to which this NetworkPolicy object applies. The array of rules "
            "is applied to any pods selected by this field. An empty selector matches all pods in this "
            "namespace.")),
        AGE,
    ), _network_policy),
    CONFIGMAPS.key: TablePrinter((
        NAME, Column("Data", description="Data contains the configuration data."), AGE,
    ), _configmap),
    EVENTS.key: TablePrinter((
        Column("Last Seen", description="The time at which the most recent occurrence of this event was "
                                        "recorded."),
        Column("Type", description="Type of this event (Normal, Warning), new types could be added in the "
                                   "future"),
        Column("Reason", description="This should be a short, machine understandable string that gives the "
                                     "reason for the transition into the object's current status."),
        Column("Object", description="The object that this event is about."),
        Column("Subobject", priority=1, description="The path of the field of the involved object."),
        Column("Source", priority=1, description="The component reporting this event."),
        Column("Message", description="A human-readable description of the status of this operation."),
        Column("First Seen", priority=1, description="The time at which the event was first recorded."),
        Column("Count", priority=1, description="The number of times this event has occurred."),
        Column("Name", priority=1, format="name", description=_NAME_DOC),
    ), _event),
}

_DEFAULT = TablePrinter((
    NAME,
    Column("Created At", type="date", description=_AGE_DOC),
), lambda obj, _now: [_s(_d(obj.get("metadata")).get("name")),
                      _d(obj.get("metadata")).get("creationTimestamp")])


_CUSTOM_PRINTERS: dict[str, TablePrinter] = {}


def set_custom_printer(rt: ResourceType, printer: TablePrinter | None) -> None:
    """The table of a custom resource (from its CRD's additionalPrinterColumns); None removes it."""
    if printer is None:
        _CUSTOM_PRINTERS.pop(rt.key, None)
    else:
        _CUSTOM_PRINTERS[rt.key] = printer


def printer_for(rt: ResourceType) -> TablePrinter:
    """The printer for a resource; others get Kubernetes' default Name / Created At table."""
    from podnet.api.tables_kinds import KIND_PRINTERS  # builds on this module's columns and cells

    return PRINTERS.get(rt.key) or KIND_PRINTERS.get(rt.key) or _CUSTOM_PRINTERS.get(rt.key) or _DEFAULT


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "Object":
        return obj
    if include_object in ("Metadata", ""):
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": _d(obj.get("metadata"))}
    return None


def table_for(rt: ResourceType, objs: Iterable[Obj], *, now: datetime | None = None,
              include_object: str = "Metadata", resource_version: str | None = None) -> dict[str, Any]:
    """A `meta.k8s.io/v1 Table` for objs of resource rt, as kube-apiserver prints it.

    include_object is the request's `includeObject`: `Metadata` (the default; each row's object
    is a PartialObjectMetadata, which `kubectl get -A` reads the namespace from), `Object` (the
    full object, for `--sort-by`) or `None`. Any other value raises ValueError with kube-apiserver's
    message for it (`unrecognized includeObject value: "X"`, sent as a 400 BadRequest).
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise ValueError(f"unrecognized includeObject value: {json.dumps(include_object)}")
    when = now if now is not None else datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    printer = printer_for(rt)
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": printer.cells(obj, when)}
        if printer.conditions is not None:
            conditions = printer.conditions(obj)
            if conditions:
                row["conditions"] = conditions
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version} if resource_version else {}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": [c.definition() for c in printer.columns], "rows": rows}
