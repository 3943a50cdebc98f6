"""The resource types podnet serves: group/version/kind, plural names, scope.

One table drives discovery documents, URL routing, store keys and the client.
Objects themselves are plain dicts in their v1 wire shape (camelCase JSON):
that keeps unknown fields for free and matches what kubectl sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object in its JSON wire shape."""

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "log", "exec", "attach", "portforward"
    verbs: tuple[str, ...] = STANDARD_VERBS
    list_kind: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`services`, `deployments.apps`: how Kubernetes names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`Service`, `Deployment.apps`: how Kubernetes names a kind in 'is invalid' messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def key(self) -> str:
        """Store key prefix: `services`, `apps/deployments`."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"


@dataclass(frozen=True)
class APIGroup:
    name: str
    version: str
    resources: tuple[ResourceType, ...] = field(default_factory=tuple)


_CORE = "v1"

NAMESPACES = ResourceType("", _CORE, "Namespace", "namespaces", "namespace", False, ("ns",),
                          subresources=("status", "finalize"),
                          verbs=("create", "delete", "get", "list", "patch", "update", "watch"))
NODES = ResourceType("", _CORE, "Node", "nodes", "node", False, ("no",), subresources=("status",))
PODS = ResourceType("", _CORE, "Pod", "pods", "pod", True, ("po",), ("all",),
                    subresources=("status", "log", "exec", "attach", "portforward"))
SERVICES = ResourceType("", _CORE, "Service", "services", "service", True, ("svc",), ("all",),
                        subresources=("status",))
ENDPOINTS = ResourceType("", _CORE, "Endpoints", "endpoints", "endpoints", True, ("ep",))
EVENTS = ResourceType("", _CORE, "Event", "events", "event", True, ("ev",))
CONFIGMAPS = ResourceType("", _CORE, "ConfigMap", "configmaps", "configmap", True, ("cm",))
ENDPOINTSLICES = ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                              "endpointslice", True)
DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",),
                           ("all",), subresources=("status", "scale"))
REPLICASETS = ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",),
                           ("all",), subresources=("status", "scale"))
NETWORKPOLICIES = ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy",
                               True, ("netpol",))
_ANP_GROUP = "policy.networking.k8s.io"
ADMINNETWORKPOLICIES = ResourceType(_ANP_GROUP, "v1alpha1", "AdminNetworkPolicy", "adminnetworkpolicies",
                                    "adminnetworkpolicy", False, ("anp",), subresources=("status",))
BASELINEADMINNETWORKPOLICIES = ResourceType(_ANP_GROUP, "v1alpha1", "BaselineAdminNetworkPolicy",
                                            "baselineadminnetworkpolicies", "baselineadminnetworkpolicy",
                                            False,
                                            ("banp",), subresources=("status",))

SECRETS = ResourceType("", _CORE, "Secret", "secrets", "secret", True)
SERVICEACCOUNTS = ResourceType("", _CORE, "ServiceAccount", "serviceaccounts", "serviceaccount", True,
                               ("sa",), subresources=("token",))
REPLICATIONCONTROLLERS = ResourceType("", _CORE, "ReplicationController", "replicationcontrollers",
                                      "replicationcontroller", True, ("rc",), ("all",),
                                      subresources=("status", "scale"))
DAEMONSETS = ResourceType("apps", "v1", "DaemonSet", "daemonsets", "daemonset", True, ("ds",), ("all",),
                          subresources=("status",))
STATEFULSETS = ResourceType("apps", "v1", "StatefulSet", "statefulsets", "statefulset", True, ("sts",),
                            ("all",), subresources=("status", "scale"))
CONTROLLERREVISIONS = ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions",
                                   "controllerrevision", True)
JOBS = ResourceType("batch", "v1", "Job", "jobs", "job", True, (), ("all",), subresources=("status",))
CRONJOBS = ResourceType("batch", "v1", "CronJob", "cronjobs", "cronjob", True, ("cj",), ("all",),
                        subresources=("status",))
_RBAC = "rbac.authorization.k8s.io"
ROLES = ResourceType(_RBAC, "v1", "Role", "roles", "role", True)
ROLEBINDINGS = ResourceType(_RBAC, "v1", "RoleBinding", "rolebindings", "rolebinding", True)
CLUSTERROLES = ResourceType(_RBAC, "v1", "ClusterRole", "clusterroles", "clusterrole", False)
CLUSTERROLEBINDINGS = ResourceType(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings",
                                   "clusterrolebinding", False)
PODDISRUPTIONBUDGETS = ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
                                    "poddisruptionbudget", True, ("pdb",), subresources=("status",))
HORIZONTALPODAUTOSCALERS = ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler",
                                        "horizontalpodautoscalers", "horizontalpodautoscaler", True,
                                        ("hpa",), ("all",), subresources=("status",))
APISERVICES = ResourceType("apiregistration.k8s.io", "v1", "APIService", "apiservices", "apiservice", False,
                           (), ("api-extensions",), subresources=("status",))
CUSTOMRESOURCEDEFINITIONS = ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                                         "customresourcedefinitions", "customresourcedefinition", False,
                                         ("crd", "crds"), ("api-extensions",), subresources=("status",))

# Reviews: created and answered at once, never stored (kube-apiserver's "create-only" resources).
_AUTHZ = "authorization.k8s.io"
_CREATE_ONLY = ("create",)
SELFSUBJECTACCESSREVIEWS = ResourceType(_AUTHZ, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                                        "selfsubjectaccessreview", False, verbs=_CREATE_ONLY)
SUBJECTACCESSREVIEWS = ResourceType(_AUTHZ, "v1", "SubjectAccessReview", "subjectaccessreviews",
                                    "subjectaccessreview", False, verbs=_CREATE_ONLY)
LOCALSUBJECTACCESSREVIEWS = ResourceType(_AUTHZ, "v1", "LocalSubjectAccessReview",
                                         "localsubjectaccessreviews",
                                         "localsubjectaccessreview", True, verbs=_CREATE_ONLY)
SELFSUBJECTRULESREVIEWS = ResourceType(_AUTHZ, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                                       "selfsubjectrulesreview", False, verbs=_CREATE_ONLY)
TOKENREVIEWS = ResourceType("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview",
                            False,
                            verbs=_CREATE_ONLY)
SELFSUBJECTREVIEWS = ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
                                  "selfsubjectreview", False, verbs=_CREATE_ONLY)
REVIEWS: tuple[ResourceType, ...] = (
    SELFSUBJECTACCESSREVIEWS, SUBJECTACCESSREVIEWS, LOCALSUBJECTACCESSREVIEWS, SELFSUBJECTRULESREVIEWS,
    TOKENREVIEWS, SELFSUBJECTREVIEWS,
)

ALL_RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES, NODES, PODS, SERVICES, ENDPOINTS, EVENTS, CONFIGMAPS, SECRETS, SERVICEACCOUNTS,
    REPLICATIONCONTROLLERS,
    ENDPOINTSLICES, DEPLOYMENTS, REPLICASETS, DAEMONSETS, STATEFULSETS, CONTROLLERREVISIONS,
    JOBS, CRONJOBS, ROLES, ROLEBINDINGS, CLUSTERROLES, CLUSTERROLEBINDINGS,
    PODDISRUPTIONBUDGETS, HORIZONTALPODAUTOSCALERS, APISERVICES, CUSTOMRESOURCEDEFINITIONS,
    NETWORKPOLICIES, ADMINNETWORKPOLICIES, BASELINEADMINNETWORKPOLICIES,
)
"""Every stored built-in resource (the review resources are served but never stored)."""
SERVED_REVIEWS: tuple[ResourceType, ...] = REVIEWS

_METRICS = "metrics.k8s.io"
NODEMETRICS = ResourceType(_METRICS, "v1beta1", "NodeMetrics", "nodes", "", False, verbs=("get", "list"))
PODMETRICS = ResourceType(_METRICS, "v1beta1", "PodMetrics", "pods", "", True, verbs=("get", "list"))
METRICS: tuple[ResourceType, ...] = (NODEMETRICS, PODMETRICS)
"""metrics.k8s.io, as metrics-server serves it: computed from the node agents per request, never stored."""


def _group(name: str, version: str) -> APIGroup:
    members = tuple(r for r in (*ALL_RESOURCES, *SERVED_REVIEWS, *METRICS)
                    if r.group == name and r.version == version)
    return APIGroup(name, version, members)


GROUPS: tuple[APIGroup, ...] = (
    _group("", "v1"),
    _group("apps", "v1"),
    _group("discovery.k8s.io", "v1"),
    _group("networking.k8s.io", "v1"),
    _group(_ANP_GROUP, "v1alpha1"),
    _group("batch", "v1"),
    _group(_RBAC, "v1"),
    _group("policy", "v1"),
    _group("autoscaling", "v2"),
    _group("apiregistration.k8s.io", "v1"),
    _group("apiextensions.k8s.io", "v1"),
    *((_group(_AUTHZ, "v1"), _group("authentication.k8s.io", "v1")) if SERVED_REVIEWS else ()),
    _group(_METRICS, "v1beta1"),
)

_BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r
                                                 for r in (*ALL_RESOURCES, *SERVED_REVIEWS)}
_BY_PLURAL: dict[tuple[str, str], ResourceType] = {(r.group, r.plural): r
                                                   for r in (*ALL_RESOURCES, *SERVED_REVIEWS, *METRICS)}
_CUSTOM: dict[tuple[str, str], ResourceType] = {}  # (group, plural) -> served custom resource


def register_custom(rt: ResourceType) -> None:
    """Serve a resource defined by a CustomResourceDefinition (replaces one of the same group/plural)."""
    unregister_custom(rt.group, rt.plural)
    _CUSTOM[(rt.group, rt.plural)] = rt
    _BY_KIND[(rt.api_version, rt.kind)] = rt
    _BY_PLURAL[(rt.group, rt.plural)] = rt


def unregister_custom(group: str, plural: str) -> None:
    old = _CUSTOM.pop((group, plural), None)
    if old is not None:
        _BY_KIND.pop((old.api_version, old.kind), None)
        _BY_PLURAL.pop((group, plural), None)


def custom_resources() -> list[ResourceType]:
    return sorted(_CUSTOM.values(), key=lambda r: (r.group, r.plural))


def is_custom(rt: ResourceType) -> bool:
    return _CUSTOM.get((rt.group, rt.plural)) is rt


def all_groups() -> list[APIGroup]:
    """The built-in groups, then one per custom (group, version) being served."""
    out = list(GROUPS)
    seen: dict[tuple[str, str], list[ResourceType]] = {}
    for rt in custom_resources():
        seen.setdefault((rt.group, rt.version), []).append(rt)
    for (g, v), rts in sorted(seen.items()):
        out.append(APIGroup(g, v, tuple(rts)))
    return out


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def by_plural(group: str, plural: str) -> ResourceType | None:
    return _BY_PLURAL.get((group, plural))


def for_object(obj: Obj) -> ResourceType | None:
    return by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))


def by_key(key: str) -> ResourceType | None:
    group, _, plural = key.rpartition("/")
    return by_plural(group, plural)
