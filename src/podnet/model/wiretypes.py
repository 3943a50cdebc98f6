"""JSON type checks for the fields podnet reads, before validation.

Kubernetes decodes a request body into Go structs first; a wrong JSON type (a string where
an integer belongs) fails there with 400 BadRequest, e.g.::

    Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string
    into Go struct field ServicePort.spec.ports.port of type int32

`type_errors(obj)` finds such mismatches as `FieldError`s (type FieldValueTypeInvalid) and
`decode_error(obj)` renders the first one as Kubernetes' decode message (None if the types
are fine). Fields not listed here are not checked (unknown fields are kept, as everywhere).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from podnet.model.errors import ErrorType, FieldError
from podnet.model.kinds import Obj

# Go types: int32, int64, string, bool, []string, map[string]string, struct:<Name>, []struct:<Name>, intstr
_META = {
    "metadata": "struct:v1.ObjectMeta",
    "metadata.name": "string",
    "metadata.generateName": "string",
    "metadata.namespace": "string",
    "metadata.labels": "map[string]string",
    "metadata.annotations": "map[string]string",
    "metadata.finalizers": "[]string",
    "metadata.generation": "int64",
    "metadata.resourceVersion": "string",
    "metadata.uid": "types.UID",
    "metadata.ownerReferences": "[]struct:v1.OwnerReference",
}
_POD_SPEC = {
    "containers": "[]struct:v1.Container",
    "initContainers": "[]struct:v1.Container",
    "containers[].name": "string",
    "containers[].image": "string",
    "containers[].imagePullPolicy": "v1.PullPolicy",
    "containers[].command": "[]string",
    "containers[].args": "[]string",
    "containers[].workingDir": "string",
    "containers[].ports": "[]struct:v1.ContainerPort",
    "containers[].ports[].containerPort": "int32",
    "containers[].ports[].hostPort": "int32",
    "containers[].ports[].name": "string",
    "containers[].ports[].protocol": "v1.Protocol",
    "containers[].env": "[]struct:v1.EnvVar",
    "containers[].env[].name": "string",
    "containers[].env[].value": "string",
    "containers[].readinessProbe": "struct:v1.Probe",
    "containers[].livenessProbe": "struct:v1.Probe",
    "containers[].startupProbe": "struct:v1.Probe",
    "containers[].readinessProbe.periodSeconds": "int32",
    "containers[].readinessProbe.timeoutSeconds": "int32",
    "containers[].readinessProbe.initialDelaySeconds": "int32",
    "containers[].readinessProbe.failureThreshold": "int32",
    "containers[].readinessProbe.successThreshold": "int32",
    "containers[].readinessProbe.httpGet": "struct:v1.HTTPGetAction",
    "containers[].readinessProbe.httpGet.path": "string",
    "containers[].readinessProbe.httpGet.port": "intstr",
    "containers[].readinessProbe.tcpSocket.port": "intstr",
    "containers[].readinessProbe.exec.command": "[]string",
    "containers[].livenessProbe.periodSeconds": "int32",
    "containers[].livenessProbe.httpGet.port": "intstr",
    "containers[].livenessProbe.tcpSocket.port": "intstr",
    "containers[].volumeMounts": "[]struct:v1.VolumeMount",
    "containers[].volumeMounts[].name": "string",
    "containers[].volumeMounts[].mountPath": "string",
    "containers[].volumeMounts[].readOnly": "bool",
    "containers[].resources": "struct:v1.ResourceRequirements",
    "volumes": "[]struct:v1.Volume",
    "volumes[].name": "string",
    "restartPolicy": "v1.RestartPolicy",
    "dnsPolicy": "v1.DNSPolicy",
    "nodeName": "string",
    "nodeSelector": "map[string]string",
    "serviceAccountName": "string",
    "hostname": "string",
    "subdomain": "string",
    "schedulerName": "string",
    "hostNetwork": "bool",
    "enableServiceLinks": "bool",
    "terminationGracePeriodSeconds": "int64",
    "activeDeadlineSeconds": "int64",
    "tolerations": "[]struct:v1.Toleration",
    "dnsConfig": "struct:v1.PodDNSConfig",
    "dnsConfig.nameservers": "[]string",
    "dnsConfig.searches": "[]string",
}
_STRUCTS = {  # parent path → Go struct holding the field (for the message)
    "": "{kind}",
    "metadata": "ObjectMeta",
    "spec": "{kind}Spec",
    "spec.ports[]": "ServicePort",
    "spec.sessionAffinityConfig": "SessionAffinityConfig",
    "spec.sessionAffinityConfig.clientIP": "ClientIPConfig",
    "containers[]": "Container",
    "containers[].ports[]": "ContainerPort",
    "containers[].env[]": "EnvVar",
    "containers[].readinessProbe": "Probe",
    "containers[].livenessProbe": "Probe",
    "containers[].readinessProbe.httpGet": "HTTPGetAction",
    "containers[].livenessProbe.httpGet": "HTTPGetAction",
    "containers[].readinessProbe.tcpSocket": "TCPSocketAction",
    "containers[].livenessProbe.tcpSocket": "TCPSocketAction",
    "containers[].readinessProbe.exec": "ExecAction",
    "containers[].volumeMounts[]": "VolumeMount",
    "volumes[]": "Volume",
    "dnsConfig": "PodDNSConfig",
    "spec.selector": "LabelSelector",
    "spec.selector.matchExpressions[]": "LabelSelectorRequirement",
    "spec.template": "PodTemplateSpec",
    "spec.strategy": "DeploymentStrategy",
    "spec.strategy.rollingUpdate": "RollingUpdateDeployment",
    "subsets[]": "EndpointSubset",
    "subsets[].addresses[]": "EndpointAddress",
    "subsets[].ports[]": "EndpointPort",
    "endpoints[]": "Endpoint",
    "endpoints[].conditions": "EndpointConditions",
    "ports[]": "EndpointPort",
    "spec.ingress[]": "NetworkPolicyIngressRule",
    "spec.egress[]": "NetworkPolicyEgressRule",
    "spec.ingress[].ports[]": "NetworkPolicyPort",
    "spec.egress[].ports[]": "NetworkPolicyPort",
    "spec.ingress[].from[]": "NetworkPolicyPeer",
    "spec.egress[].to[]": "NetworkPolicyPeer",
    "spec.ingress[].from[].ipBlock": "IPBlock",
    "spec.egress[].to[].ipBlock": "IPBlock",
    "spec.taints[]": "Taint",
    "status": "{kind}Status",
}


def _prefixed(prefix: str, table: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}.{k}": v for k, v in table.items()}


_WORKLOAD = {
    "spec": "struct:v1.{kind}Spec",
    "spec.replicas": "int32",
    "spec.minReadySeconds": "int32",
    "spec.revisionHistoryLimit": "int32",
    "spec.progressDeadlineSeconds": "int32",
    "spec.paused": "bool",
    "spec.selector": "struct:v1.LabelSelector",
    "spec.selector.matchLabels": "map[string]string",
    "spec.selector.matchExpressions": "[]struct:v1.LabelSelectorRequirement",
    "spec.selector.matchExpressions[].key": "string",
    "spec.selector.matchExpressions[].operator": "string",
    "spec.selector.matchExpressions[].values": "[]string",
    "spec.template": "struct:v1.PodTemplateSpec",
    "spec.template.metadata": "struct:v1.ObjectMeta",
    "spec.template.metadata.labels": "map[string]string",
    "spec.template.spec": "struct:v1.PodSpec",
    **_prefixed("spec.template.spec", _POD_SPEC),
    "spec.strategy": "struct:v1.DeploymentStrategy",
    "spec.strategy.type": "v1.DeploymentStrategyType",
    "spec.strategy.rollingUpdate": "struct:v1.RollingUpdateDeployment",
    "spec.strategy.rollingUpdate.maxSurge": "intstr",
    "spec.strategy.rollingUpdate.maxUnavailable": "intstr",
}

def _netpol_rules() -> dict[str, str]:
    out: dict[str, str] = {"spec.podSelector": "struct:v1.LabelSelector",
                           "spec.policyTypes": "[]v1.PolicyType"}
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        r = f"spec.{direction}"
        out.update({
            r: f"[]struct:v1.NetworkPolicy{direction.title()}Rule",
            f"{r}[].ports": "[]struct:v1.NetworkPolicyPort",
            f"{r}[].ports[].protocol": "v1.Protocol",
            f"{r}[].ports[].port": "intstr",
            f"{r}[].ports[].endPort": "int32",
            f"{r}[].{peers}": "[]struct:v1.NetworkPolicyPeer",
            f"{r}[].{peers}[].podSelector": "struct:v1.LabelSelector",
            f"{r}[].{peers}[].namespaceSelector": "struct:v1.LabelSelector",
            f"{r}[].{peers}[].ipBlock": "struct:v1.IPBlock",
            f"{r}[].{peers}[].ipBlock.cidr": "string",
            f"{r}[].{peers}[].ipBlock.except": "[]string",
        })
    return out


SCHEMAS: dict[str, dict[str, str]] = {
    "Service": {
        **_META,
        "spec": "struct:v1.ServiceSpec",
        "spec.ports": "[]struct:v1.ServicePort",
        "spec.ports[].name": "string",
        "spec.ports[].protocol": "v1.Protocol",
        "spec.ports[].port": "int32",
        "spec.ports[].targetPort": "intstr",
        "spec.ports[].nodePort": "int32",
        "spec.ports[].appProtocol": "string",
        "spec.selector": "map[string]string",
        "spec.clusterIP": "string",
        "spec.clusterIPs": "[]string",
        "spec.type": "v1.ServiceType",
        "spec.externalIPs": "[]string",
        "spec.sessionAffinity": "v1.ServiceAffinity",
        "spec.loadBalancerIP": "string",
        "spec.loadBalancerSourceRanges": "[]string",
        "spec.externalName": "string",
        "spec.externalTrafficPolicy": "v1.ServiceExternalTrafficPolicy",
        "spec.healthCheckNodePort": "int32",
        "spec.publishNotReadyAddresses": "bool",
        "spec.sessionAffinityConfig": "struct:v1.SessionAffinityConfig",
        "spec.sessionAffinityConfig.clientIP": "struct:v1.ClientIPConfig",
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds": "int32",
        "spec.ipFamilies": "[]v1.IPFamily",
        "spec.ipFamilyPolicy": "v1.IPFamilyPolicy",
        "spec.allocateLoadBalancerNodePorts": "bool",
        "spec.loadBalancerClass": "string",
        "spec.internalTrafficPolicy": "v1.ServiceInternalTrafficPolicy",
        "spec.trafficDistribution": "string",
    },
    "Pod": {**_META, "spec": "struct:v1.PodSpec", **_prefixed("spec", _POD_SPEC)},
    "NetworkPolicy": {**_META, "spec": "struct:v1.NetworkPolicySpec", **_netpol_rules()},
    "Deployment": {**_META, **_WORKLOAD},
    "ReplicaSet": {**_META, **_WORKLOAD},
    "Namespace": {**_META, "spec.finalizers": "[]v1.FinalizerName", "status.phase": "v1.NamespacePhase"},
    "Node": {
        **_META,
        "spec.podCIDR": "string",
        "spec.podCIDRs": "[]string",
        "spec.unschedulable": "bool",
        "spec.taints": "[]struct:v1.Taint",
        "spec.taints[].key": "string",
        "spec.taints[].effect": "v1.TaintEffect",
    },
    "ConfigMap": {**_META, "data": "map[string]string", "immutable": "bool"},
    "Endpoints": {
        **_META,
        "subsets": "[]struct:v1.EndpointSubset",
        "subsets[].addresses": "[]struct:v1.EndpointAddress",
        "subsets[].notReadyAddresses": "[]struct:v1.EndpointAddress",
        "subsets[].addresses[].ip": "string",
        "subsets[].addresses[].nodeName": "string",
        "subsets[].ports": "[]struct:v1.EndpointPort",
        "subsets[].ports[].port": "int32",
        "subsets[].ports[].name": "string",
        "subsets[].ports[].protocol": "v1.Protocol",
    },
    "EndpointSlice": {
        **_META,
        "addressType": "v1.AddressType",
        "endpoints": "[]struct:v1.Endpoint",
        "endpoints[].addresses": "[]string",
        "endpoints[].conditions": "struct:v1.EndpointConditions",
        "endpoints[].conditions.ready": "bool",
        "endpoints[].conditions.serving": "bool",
        "endpoints[].conditions.terminating": "bool",
        "endpoints[].nodeName": "string",
        "endpoints[].hostname": "string",
        "ports": "[]struct:v1.EndpointPort",
        "ports[].name": "string",
        "ports[].protocol": "v1.Protocol",
        "ports[].port": "int32",
    },
}

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _mismatch(go_type: str, v: Any) -> str | None:
    """None if `v` decodes into `go_type`, else the JSON kind to name in the message."""
    if v is None:
        return None
    kind = _json_kind(v)
    if go_type in _INT_RANGES:
        if kind != "number":
            return kind
        lo, hi = _INT_RANGES[go_type]
        if (isinstance(v, float) and not v.is_integer()) or not lo <= v <= hi:
            return f"number {v}"
        return None
    if go_type == "bool":
        return None if kind == "bool" else kind
    if go_type == "intstr":
        if kind == "string":
            return None
        if kind == "number" and float(v).is_integer() and -(2**31) <= v < 2**31:
            return None
        return kind if kind != "number" else f"number {v}"
    if go_type.startswith("[]"):
        return None if kind == "array" else kind
    if go_type.startswith("map[") or go_type.startswith("struct:"):
        return None if kind == "object" else kind
    return None if kind == "string" else kind  # string-like named types


def _display_type(go_type: str, kind: str) -> str:
    if go_type == "intstr":
        return "intstr.IntOrString"
    return go_type.replace("struct:", "").replace("{kind}", kind)


def _struct_for(parent: str, kind: str, schema_parent: str) -> str:
    name = _STRUCTS.get(parent) or _STRUCTS.get(schema_parent)
    if name is None:
        tail = schema_parent
        for prefix in ("spec.template.spec.", "spec."):
            if tail.startswith(prefix) and tail[len(prefix) :] in _STRUCTS:
                name = _STRUCTS[tail[len(prefix) :]]
                break
        if tail in ("spec.template.spec",):
            name = "PodSpec"
    return (name or kind).replace("{kind}", kind)


def _walk(value: Any, parts: list[str], concrete: str) -> list[tuple[str, Any]]:
    """All (concrete path, value) pairs for a schema path split on '.' with `[]` list markers."""
    if not parts:
        return [(concrete, value)]
    head, rest = parts[0], parts[1:]
    each = head.endswith("[]")
    key = head[:-2] if each else head
    if not isinstance(value, dict) or key not in value:
        return []
    child = value[key]
    path = f"{concrete}.{key}" if concrete else key
    if not each:
        return _walk(child, rest, path)
    if not isinstance(child, list):
        return []
    out: list[tuple[str, Any]] = []
    for i, item in enumerate(child):
        out.extend(_walk(item, rest, f"{path}[{i}]"))
    return out


class _Node:
    """One step of a kind's schema as a tree: the Go type checked at this field (None: only a way
    to deeper fields), the schema path it came from, and the fields below it, per JSON key and
    whether they apply to each list item (`key[]`) or to the value itself."""

    __slots__ = ("by_key", "children", "go_type", "ok", "spath")

    def __init__(self) -> None:
        self.go_type: str | None = None
        self.spath = ""
        self.children: dict[tuple[str, bool], _Node] = {}
        self.ok: Callable[[Any], bool] | None = None  # `_accepts(go_type)`
        self.by_key: dict[str, tuple[tuple[bool, _Node], ...]] = {}  # JSON key -> (each, child)


def _no_str_items(values: Iterable[Any]) -> bool:
    return all(x is None or isinstance(x, str) for x in values)


def _accepts(go_type: str) -> Callable[[Any], bool]:
    """A test that is true exactly when `_check` finds nothing wrong with a value of this Go type
    itself (`_mismatch`, and the items of string maps and scalar lists)."""
    if go_type in _INT_RANGES:
        lo, hi = _INT_RANGES[go_type]
        return lambda v: v is None or (
            isinstance(v, int | float) and not isinstance(v, bool)
            and not (isinstance(v, float) and not v.is_integer()) and lo <= v <= hi)
    if go_type == "bool":
        return lambda v: v is None or isinstance(v, bool)
    if go_type == "intstr":
        return lambda v: v is None or _mismatch("intstr", v) is None
    if go_type.startswith("[]"):
        if go_type.startswith("[]struct"):
            return lambda v: v is None or isinstance(v, list)
        return lambda v: v is None or (isinstance(v, list) and _no_str_items(v))
    if go_type.startswith("map[string]string"):
        return lambda v: v is None or (isinstance(v, dict) and _no_str_items(v.values()))
    if go_type.startswith("map[") or go_type.startswith("struct:"):
        return lambda v: v is None or not isinstance(v, int | float | str | list)
    return lambda v: v is None or isinstance(v, str)


def _compile(schema: dict[str, str]) -> _Node:
    root = _Node()
    for spath, go_type in schema.items():
        node = root
        for head in spath.split("."):
            each = head.endswith("[]")
            node = node.children.setdefault((head[:-2] if each else head, each), _Node())
        node.go_type, node.spath = go_type, spath
        node.ok = _accepts(go_type)
    _index_keys(root)
    return root


def _index_keys(node: _Node) -> None:
    grouped: dict[str, list[tuple[bool, _Node]]] = {}
    for (key, each), child in node.children.items():
        grouped.setdefault(key, []).append((each, child))
        _index_keys(child)
    node.by_key = {k: tuple(v) for k, v in grouped.items()}


def _clean(value: Any, node: _Node) -> bool:
    """Whether `_typed` + `_check` would find nothing under `node`: the same walk without building
    paths, for the common case of a well-typed object."""
    if not isinstance(value, dict):
        return True
    by_key = node.by_key
    keys = value.keys() if len(value) <= len(by_key) else by_key.keys()
    for key in keys:
        steps = by_key.get(key)
        if steps is None or key not in value:
            continue
        v = value[key]
        for each, child in steps:
            ok, deeper = child.ok, child.children
            if not each:
                if ok is not None and not ok(v):
                    return False
                if deeper and not _clean(v, child):
                    return False
            elif isinstance(v, list):
                for item in v:
                    if ok is not None and not ok(item):
                        return False
                    if deeper and not _clean(item, child):
                        return False
    return True


_TREES: dict[str, _Node] = {}


def _tree(kind: str) -> _Node | None:
    tree = _TREES.get(kind)
    if tree is None:
        schema = SCHEMAS.get(kind)
        if not schema:
            return None
        tree = _TREES[kind] = _compile(schema)
    return tree


def _typed(value: Any, node: _Node, concrete: str, out: list[tuple[str, str, str, Any]]) -> None:
    """Every (schema path, Go type, concrete path, value) under `node` that the object has: one
    pass over the object for all of a kind's schema paths (`_walk` does one per path)."""
    if not isinstance(value, dict):
        return
    for (key, each), child in node.children.items():
        if key not in value:
            continue
        v = value[key]
        path = f"{concrete}.{key}" if concrete else key
        if not each:
            if child.go_type is not None:
                out.append((child.spath, child.go_type, path, v))
            if child.children:
                _typed(v, child, path, out)
        elif isinstance(v, list):
            for i, item in enumerate(v):
                ipath = f"{path}[{i}]"
                if child.go_type is not None:
                    out.append((child.spath, child.go_type, ipath, item))
                if child.children:
                    _typed(item, child, ipath, out)


def _check(obj: Obj) -> list[tuple[FieldError, str]]:
    kind = str(obj.get("kind") or "")
    tree = _tree(kind)
    if tree is None or _clean(obj, tree):
        return []
    return _findings(obj, kind, tree)


def _findings(obj: Obj, kind: str, tree: _Node) -> list[tuple[FieldError, str]]:
    """Every wrong-typed field with Kubernetes' decode message, sorted by field path."""
    pairs: list[tuple[str, str, str, Any]] = []
    _typed(obj, tree, "", pairs)
    found: list[tuple[FieldError, str]] = []
    for spath, go_type, path, value in pairs:
        got = _mismatch(go_type, value)
        elem = None
        if got is None and go_type.startswith("map[string]string") and isinstance(value, dict):
            elem = next(
                ((k, v) for k, v in value.items() if v is not None and not isinstance(v, str)), None
            )
            if elem is not None:
                got = _json_kind(elem[1])
        elif (
            got is None
            and go_type.startswith("[]")
            and not go_type.startswith("[]struct")
            and isinstance(value, list)
        ):
            elem = next(
                ((i, v) for i, v in enumerate(value) if v is not None and not isinstance(v, str)), None
            )
            if elem is not None:
                got = _json_kind(elem[1])
        if got is None:
            continue
        shown = "string" if elem is not None else _display_type(go_type, kind)
        friendly = "string" if elem is not None else _friendly(go_type)
        parent = spath.rsplit(".", 1)[0] if "." in spath else ""
        struct = _struct_for(parent, kind, parent)
        json_path = spath.replace("[]", "")
        msg = f"json: cannot unmarshal {got} into Go struct field {struct}.{json_path} of type {shown}"
        bad = value if elem is None else elem[1]
        err = FieldError(ErrorType.TYPE_INVALID, path, bad, f"must be of type {friendly}")
        found.append((err, msg))
    found.sort(key=lambda pair: pair[0].field)
    return found


def _friendly(go_type: str) -> str:
    """The JSON type a user should write for a Go type."""
    if go_type in _INT_RANGES:
        return "integer"
    if go_type == "intstr":
        return "integer or string"
    if go_type == "bool":
        return "boolean"
    if go_type.startswith("[]"):
        return "array"
    if go_type.startswith("map[") or go_type.startswith("struct:"):
        return "object"
    return "string"


def type_errors(obj: Obj) -> list[FieldError]:
    """Fields whose JSON type cannot decode into the Kubernetes type (FieldValueTypeInvalid)."""
    return [err for err, _ in _check(obj)]


def decode_error(obj: Obj) -> str | None:
    """Kubernetes' 400 message for the first wrong-typed field, or None when types are fine."""
    found = _check(obj)
    if not found:
        return None
    kind = str(obj.get("kind") or "")
    version = str(obj.get("apiVersion") or "")
    return f'{kind} in version "{version.rsplit("/", 1)[-1]}" cannot be handled as a {kind}: {found[0][1]}'
