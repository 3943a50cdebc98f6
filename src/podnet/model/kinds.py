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
    subresources: tuple[str, ...] = ()  # "status", "scale", "log", "exec"
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
                    subresources=("status", "log", "exec"))
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

ALL_RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES, NODES, PODS, SERVICES, ENDPOINTS, EVENTS, CONFIGMAPS,
    ENDPOINTSLICES, DEPLOYMENTS, REPLICASETS,
)

GROUPS: tuple[APIGroup, ...] = (
    APIGroup("", "v1", tuple(r for r in ALL_RESOURCES if r.group == "")),
    APIGroup("apps", "v1", (DEPLOYMENTS, REPLICASETS)),
    APIGroup("discovery.k8s.io", "v1", (ENDPOINTSLICES,)),
)

_BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in ALL_RESOURCES}
_BY_PLURAL: dict[tuple[str, str], ResourceType] = {(r.group, r.plural): r for r in ALL_RESOURCES}


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def by_plural(group: str, plural: str) -> ResourceType | None:
    return _BY_PLURAL.get((group, plural))


def for_object(obj: Obj) -> ResourceType | None:
    return by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))


def by_key(key: str) -> ResourceType | None:
    group, _, plural = key.rpartition("/")
    return by_plural(group, plural)
