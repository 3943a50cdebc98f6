"""RBAC authorization as kube-apiserver's RBAC authorizer does it (plugin/pkg/auth/authorizer/rbac).

Deny by default; a request is allowed when a rule of a role bound to the user (by a
ClusterRoleBinding anywhere, or a RoleBinding in the request's namespace) covers its verb, API
group, resource (`pods`, `pods/log`, `*`, `*/scale`), and name (`resourceNames`), or, for
non-resource paths, its verb and URL (`/healthz`, `/apis/*`). Subjects are users, groups and
ServiceAccounts. `BOOTSTRAP` holds the default cluster roles and bindings kube-apiserver creates
(cluster-admin, admin, edit, view, system:discovery, system:basic-user,
system:public-info-viewer), made once by `ensure_bootstrap`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from podnet.api.sa_tokens import UserInfo
from podnet.model import kinds
from podnet.model.kinds import Obj

Lister = Callable[[Any, str | None], Awaitable[list[Obj]]]
"""(resource type, namespace or None) -> stored objects."""
Getter = Callable[[Any, str, str], Awaitable[Obj | None]]


@dataclass(frozen=True)
class Request:
    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # non-resource requests (resource == "")

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def rule_allows(rule: dict[str, Any], r: Request) -> bool:
    verbs = [str(v) for v in _l(rule.get("verbs"))]
    if "*" not in verbs and r.verb not in verbs:
        return False
    if not r.is_resource:
        for url in (str(u) for u in _l(rule.get("nonResourceURLs"))):
            if url == "*" or url == r.path or (url.endswith("*") and r.path.startswith(url[:-1])):
                return True
        return False
    groups = [str(g) for g in _l(rule.get("apiGroups"))]
    if "*" not in groups and r.group not in groups:
        return False
    combined = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
    resources = [str(x) for x in _l(rule.get("resources"))]
    if not any(x == "*" or x == combined or (r.subresource and x == f"*/{r.subresource}") for x in resources):
        return False
    names = [str(n) for n in _l(rule.get("resourceNames"))]
    return not names or (bool(r.name) and r.name in names)


def subject_matches(subject: dict[str, Any], user: UserInfo, binding_ns: str) -> bool:
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = str(subject.get("namespace") or binding_ns)
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


class RBACAuthorizer:
    def __init__(self, list_objects: Lister, get_object: Getter):
        self.list_objects = list_objects
        self.get_object = get_object

    async def _role_rules(self, ref: dict[str, Any], ns: str) -> list[dict[str, Any]]:
        kind, name = ref.get("kind"), str(ref.get("name") or "")
        if kind == "ClusterRole":
            role = await self.get_object(kinds.CLUSTERROLES, "", name)
        elif kind == "Role" and ns:
            role = await self.get_object(kinds.ROLES, ns, name)
        else:
            return []
        return [_d(x) for x in _l((role or {}).get("rules"))]

    async def rules_for(self, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
        """Every rule that applies to user in namespace ("" = cluster-wide rules only)."""
        if "system:masters" in user.groups:
            return [
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]},
            ]
        rules: list[dict[str, Any]] = []
        for crb in await self.list_objects(kinds.CLUSTERROLEBINDINGS, None):
            if any(subject_matches(_d(s), user, "") for s in _l(crb.get("subjects"))):
                rules.extend(await self._role_rules(_d(crb.get("roleRef")), ""))
        if namespace:
            for rb in await self.list_objects(kinds.ROLEBINDINGS, namespace):
                if any(subject_matches(_d(s), user, namespace) for s in _l(rb.get("subjects"))):
                    rules.extend(await self._role_rules(_d(rb.get("roleRef")), namespace))
        return rules

    async def allowed(self, user: UserInfo, r: Request) -> bool:
        return any(rule_allows(rule, r) for rule in await self.rules_for(user, r.namespace))


# --------------------------------------------------------------------------- bootstrap policy

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_VIEW_RESOURCES = [
    (
        {
            "": [
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
                "namespaces",
            ]
        }
    ),
    (
        {
            "apps": [
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ]
        }
    ),
    ({"autoscaling": ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]}),
    ({"batch": ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]}),
    ({"policy": ["poddisruptionbudgets", "poddisruptionbudgets/status"]}),
    ({"discovery.k8s.io": ["endpointslices"]}),
    ({"networking.k8s.io": ["ingresses", "ingresses/status", "networkpolicies"]}),
]


def _rules(groups: list[dict[str, list[str]]], verbs: list[str]) -> list[dict[str, Any]]:
    return [{"apiGroups": [g], "resources": res, "verbs": verbs} for d in groups for g, res in d.items()]


_EDIT_EXTRA = [
    {
        "apiGroups": [""],
        "resources": [
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "secrets",
            "services/proxy",
        ],
        "verbs": _READ,
    },
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {
        "apiGroups": [""],
        "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
        "verbs": _WRITE,
    },
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": [
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        "verbs": _WRITE,
    },
    *_rules(
        [
            {
                "apps": [
                    "daemonsets",
                    "deployments",
                    "deployments/rollback",
                    "deployments/scale",
                    "replicasets",
                    "replicasets/scale",
                    "statefulsets",
                    "statefulsets/scale",
                ]
            },
            {"autoscaling": ["horizontalpodautoscalers"]},
            {"batch": ["cronjobs", "jobs"]},
            {"policy": ["poddisruptionbudgets"]},
            {"networking.k8s.io": ["ingresses", "networkpolicies"]},
        ],
        _WRITE,
    ),
]
_ADMIN_EXTRA = [
    {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["rolebindings", "roles"],
        "verbs": [*_READ, *_WRITE],
    },
]
_VIEW = _rules(_VIEW_RESOURCES, _READ)


def _cluster_role(name: str, rules: list[dict[str, Any]], aggregate_to: tuple[str, ...] = ()) -> Obj:
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    for target in aggregate_to:
        labels[f"rbac.authorization.k8s.io/aggregate-to-{target}"] = "true"
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
    }


def _cluster_binding(name: str, role: str, group: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


BOOTSTRAP: tuple[tuple[kinds.ResourceType, Obj], ...] = (
    (
        kinds.CLUSTERROLES,
        _cluster_role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
    ),
    (kinds.CLUSTERROLES, _cluster_role("admin", [*_VIEW, *_EDIT_EXTRA, *_ADMIN_EXTRA])),
    (kinds.CLUSTERROLES, _cluster_role("edit", [*_VIEW, *_EDIT_EXTRA], ("admin",))),
    (kinds.CLUSTERROLES, _cluster_role("view", _VIEW, ("edit",))),
    (
        kinds.CLUSTERROLES,
        _cluster_role(
            "system:discovery",
            [
                {
                    "nonResourceURLs": [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                    "verbs": ["get"],
                }
            ],
        ),
    ),
    (
        kinds.CLUSTERROLES,
        _cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
    ),
    (
        kinds.CLUSTERROLES,
        _cluster_role(
            "system:public-info-viewer",
            [
                {
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"],
                }
            ],
        ),
    ),
    (kinds.CLUSTERROLEBINDINGS, _cluster_binding("cluster-admin", "cluster-admin", "system:masters")),
    (
        kinds.CLUSTERROLEBINDINGS,
        _cluster_binding("system:discovery", "system:discovery", "system:authenticated"),
    ),
    (
        kinds.CLUSTERROLEBINDINGS,
        _cluster_binding("system:basic-user", "system:basic-user", "system:authenticated"),
    ),
    (
        kinds.CLUSTERROLEBINDINGS,
        _cluster_binding("system:public-info-viewer", "system:public-info-viewer", "system:authenticated"),
    ),
)
