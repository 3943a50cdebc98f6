"""Defaulting, as the API server applies it before validation (pkg/apis/core/v1/defaults.go,
pkg/apis/apps/v1/defaults.go, pkg/apis/discovery/v1/defaults.go).

`apply_defaults(obj)` fills missing fields in place and returns `obj`. It is idempotent and
never overwrites a value the user set. Allocated fields (clusterIP, clusterIPs, ipFamilies,
ipFamilyPolicy, nodePort) are the allocators' job, and server-set fields (uid,
creationTimestamp, status.phase Pending for pods, namespace finalizers) the API server's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podnet.model.kinds import Obj
from podnet.model.validation_anp import default_admin_policy
from podnet.model.validation_netpol import default_network_policy

TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_TERMINATION_GRACE = 30
DEFAULT_CLIENT_IP_TIMEOUT = 10800
DEFAULT_VOLUME_MODE = 420  # 0644


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """parent[key] as a dict, created if missing/null."""
    v = parent.get(key)
    if not isinstance(v, dict):
        v = {}
        parent[key] = v
    return v


def _dicts(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


# --------------------------------------------------------------------------- Service


def externally_accessible(spec: dict[str, Any]) -> bool:
    """`ExternallyAccessible`: LoadBalancer, NodePort, or ClusterIP with externalIPs."""
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def default_service(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        if (
            not isinstance(cfg, dict)
            or not isinstance(cfg.get("clientIP"), dict)
            or cfg["clientIP"].get("timeoutSeconds") is None
        ):
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_TIMEOUT}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        tp = port.get("targetPort")
        if (tp is None or tp == 0 or tp == "") and "port" in port:
            port["targetPort"] = port["port"]
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer") and not spec.get("internalTrafficPolicy"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec["type"] == "LoadBalancer":
        lb = (obj.get("status") or {}).get("loadBalancer") if isinstance(obj.get("status"), dict) else None
        if isinstance(lb, dict):
            for ing in _dicts(lb.get("ingress")):
                if ing.get("ip") and not ing.get("ipMode"):
                    ing["ipMode"] = "VIP"


# --------------------------------------------------------------------------- Pod


def image_tag_is_latest(image: str) -> bool:
    """`parsers.ParseImageName` tag check: no tag and no digest, or tag `latest`."""
    if not image:
        return False  # unparsable → no tag → IfNotPresent
    if "@" in image:
        name = image.split("@", 1)[0]
        last = name.rsplit("/", 1)[-1]
        return last.partition(":")[2] == "latest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return True
    return last.partition(":")[2] == "latest"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not probe.get(key):  # Go: `if obj.TimeoutSeconds == 0` (unset and 0 alike)
            probe[key] = value
    _default_handler(probe)


def _default_handler(handler: Any) -> None:
    if not isinstance(handler, dict):
        return
    http = handler.get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"


def _default_container(c: dict[str, Any]) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if image_tag_is_latest(str(c.get("image") or "")) else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = TERMINATION_MESSAGE_PATH
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    if c.get("resources") is None:
        c["resources"] = {}
    for port in _dicts(c.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))
    for env in _dicts(c.get("env")):
        vf = env.get("valueFrom")
        if (
            isinstance(vf, dict)
            and isinstance(vf.get("fieldRef"), dict)
            and not vf["fieldRef"].get("apiVersion")
        ):
            vf["fieldRef"]["apiVersion"] = "v1"


def _default_volume(v: dict[str, Any]) -> None:
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        src = v.get(key)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = DEFAULT_VOLUME_MODE
    host_path = v.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""


def default_pod_spec(spec: dict[str, Any]) -> None:
    """`SetDefaults_PodSpec` plus container, probe and volume defaults."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE
    if not spec.get("schedulerName"):
        spec["schedulerName"] = DEFAULT_SCHEDULER
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _default_container(c)
    for v in _dicts(spec.get("volumes")):
        _default_volume(v)
    if spec.get("hostNetwork") is True:
        for key in ("initContainers", "containers"):
            for c in _dicts(spec.get(key)):
                for port in _dicts(c.get("ports")):
                    if not port.get("hostPort") and port.get("containerPort"):
                        port["hostPort"] = port["containerPort"]


def default_pod(obj: Obj) -> None:
    """`SetDefaults_Pod` + the pod-spec defaults. Only Pods (not templates) copy limits to requests."""
    spec = _dict(obj, "spec")
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in _dicts(spec.get(key)):
            res = c.get("resources")
            if isinstance(res, dict) and isinstance(res.get("limits"), dict):
                reqs = _dict(res, "requests")
                for name, value in res["limits"].items():
                    reqs.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True


def _default_template(spec: dict[str, Any]) -> None:
    tmpl = _dict(spec, "template")
    default_pod_spec(_dict(tmpl, "spec"))


# --------------------------------------------------------------------------- apps


def default_deployment(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _dict(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def default_replicaset(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


# --------------------------------------------------------------------------- others


def default_namespace(obj: Obj) -> None:
    meta = _dict(obj, "metadata")
    name = meta.get("name")
    if name:
        labels = _dict(meta, "labels")
        labels["kubernetes.io/metadata.name"] = name
    status = _dict(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def default_endpoints(obj: Obj) -> None:
    for subset in _dicts(obj.get("subsets")):
        for port in _dicts(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def default_endpointslice(obj: Obj) -> None:
    for port in _dicts(obj.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        if not port.get("protocol"):
            port["protocol"] = "TCP"


def default_configmap(obj: Obj) -> None:
    if obj.get("data") is None:
        obj["data"] = {}


def default_node(obj: Obj) -> None:
    status = obj.get("status")
    if (
        isinstance(status, dict)
        and status.get("allocatable") is None
        and isinstance(status.get("capacity"), dict)
    ):
        status["allocatable"] = dict(status["capacity"])


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("v1", "Service"): default_service,
    ("v1", "Pod"): default_pod,
    ("v1", "Namespace"): default_namespace,
    ("v1", "Endpoints"): default_endpoints,
    ("v1", "Node"): default_node,
    ("v1", "ConfigMap"): default_configmap,
    ("apps/v1", "Deployment"): default_deployment,
    ("apps/v1", "ReplicaSet"): default_replicaset,
    ("discovery.k8s.io/v1", "EndpointSlice"): default_endpointslice,
    ("networking.k8s.io/v1", "NetworkPolicy"): default_network_policy,
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"): default_admin_policy,
    ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"): default_admin_policy,
}


def apply_defaults(obj: Obj) -> Obj:
    """Default `obj` in place by apiVersion/kind (unknown kinds are left alone); returns `obj`."""
    from podnet.model.defaults_kinds import DEFAULTERS  # imports this module's pod-spec defaults

    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    fn = _DEFAULTERS.get(key) or DEFAULTERS.get(key)
    if fn is not None:
        fn(obj)
    return obj
