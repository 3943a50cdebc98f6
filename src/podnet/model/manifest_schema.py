"""Where common fields belong, per kind: enough to tell a user that a field is misplaced.

Used by manifests.py to turn "YAML is valid but `selector` sits inside a port" (or a YAML
indentation error) into `"selector" is indented under "ports" (line 12); it belongs under "spec"`.
Paths use `[]` for "an item of this list": `spec.ports[]`.
"""

from __future__ import annotations

TOP = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
METADATA = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "labels",
        "annotations",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "selfLink",
    }
)
SERVICE_SPEC = frozenset(
    {
        "ports",
        "selector",
        "clusterIP",
        "clusterIPs",
        "type",
        "externalIPs",
        "sessionAffinity",
        "loadBalancerIP",
        "loadBalancerSourceRanges",
        "externalName",
        "externalTrafficPolicy",
        "healthCheckNodePort",
        "publishNotReadyAddresses",
        "sessionAffinityConfig",
        "ipFamilies",
        "ipFamilyPolicy",
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
        "internalTrafficPolicy",
        "trafficDistribution",
    }
)
SERVICE_PORT = frozenset({"name", "protocol", "appProtocol", "port", "targetPort", "nodePort"})
POD_SPEC = frozenset(
    {
        "volumes",
        "initContainers",
        "containers",
        "ephemeralContainers",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "dnsPolicy",
        "nodeSelector",
        "serviceAccountName",
        "serviceAccount",
        "automountServiceAccountToken",
        "nodeName",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "shareProcessNamespace",
        "securityContext",
        "imagePullSecrets",
        "hostname",
        "subdomain",
        "affinity",
        "schedulerName",
        "tolerations",
        "hostAliases",
        "priorityClassName",
        "priority",
        "dnsConfig",
        "readinessGates",
        "runtimeClassName",
        "enableServiceLinks",
        "preemptionPolicy",
        "overhead",
        "topologySpreadConstraints",
        "setHostnameAsFQDN",
        "os",
        "hostUsers",
        "schedulingGates",
        "resourceClaims",
        "resources",
    }
)
CONTAINER = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "envFrom",
        "env",
        "resources",
        "resizePolicy",
        "restartPolicy",
        "volumeMounts",
        "volumeDevices",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
    }
)
CONTAINER_PORT = frozenset({"name", "hostPort", "containerPort", "protocol", "hostIP"})
WORKLOAD_SPEC = frozenset(
    {
        "replicas",
        "selector",
        "template",
        "strategy",
        "minReadySeconds",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
        "paused",
    }
)
TEMPLATE = frozenset({"metadata", "spec"})
LABEL_SELECTOR = frozenset({"matchLabels", "matchExpressions"})

_POD_TREE: dict[str, frozenset[str]] = {
    "spec": POD_SPEC,
    "spec.containers[]": CONTAINER,
    "spec.initContainers[]": CONTAINER,
    "spec.containers[].ports[]": CONTAINER_PORT,
    "spec.initContainers[].ports[]": CONTAINER_PORT,
}


def _under(prefix: str, tree: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    return {f"{prefix}.{k}": v for k, v in tree.items()}


SCHEMAS: dict[str, dict[str, frozenset[str]]] = {
    "Service": {"": TOP, "metadata": METADATA, "spec": SERVICE_SPEC, "spec.ports[]": SERVICE_PORT},
    "Pod": {"": TOP, "metadata": METADATA, **_POD_TREE},
}
for _kind in ("Deployment", "ReplicaSet"):
    SCHEMAS[_kind] = {
        "": TOP,
        "metadata": METADATA,
        "spec": WORKLOAD_SPEC,
        "spec.selector": LABEL_SELECTOR,
        "spec.template": TEMPLATE,
        "spec.template.metadata": METADATA,
        **_under("spec.template", _POD_TREE),
    }


def known_at(kind: str, path: str) -> frozenset[str] | None:
    """Fields known at `path` for `kind`, or None when podnet has no schema for that place."""
    return SCHEMAS.get(kind, {}).get(path)


def ancestors(path: str) -> list[str]:
    """Proper ancestors of a path, deepest first: `spec.ports[]` → [`spec`, ``]."""
    out: list[str] = []
    p = path
    while p:
        if p.endswith("[]"):
            p = p[:-2]
            continue
        cut = max(p.rfind("."), -1)
        p = p[:cut] if cut >= 0 else ""
        out.append(p)
    return out


def belongs(kind: str, path: str, key: str) -> str | None:
    """If `key` is unknown at `path` but known at an ancestor of it, that ancestor ('' = top level)."""
    here = known_at(kind, path)
    if here is None or key in here:
        return None
    for anc in ancestors(path):
        fields = known_at(kind, anc)
        if fields is not None and key in fields:
            return anc
    return None


def too_shallow(kind: str, path: str, key: str) -> str | None:
    """If `key` is unknown at `path` but known somewhere below it, the nearest such place."""
    here = known_at(kind, path)
    if here is None or key in here:
        return None
    prefix = f"{path}." if path else ""
    deeper = [
        p
        for p, fields in SCHEMAS.get(kind, {}).items()
        if p.startswith(prefix) and p != path and key in fields
    ]
    return min(deeper, key=lambda p: (p.count("."), len(p))) if deeper else None


def display(path: str) -> str:
    """`spec.template.spec` → `spec.template.spec`; `` → `the top level`."""
    return path.replace("[]", "[*]") if path else "the top level"
