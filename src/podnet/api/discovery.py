"""Discovery documents (legacy, non-aggregated), driven by the resource table in model/kinds.py."""

from __future__ import annotations

from typing import Any

from podnet.model import kinds
from podnet.model.kinds import APIGroup, ResourceType

SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
                     "log": ["get"], "exec": ["create", "get"], "attach": ["create", "get"],
                     "portforward": ["create", "get"], "finalize": ["update"], "token": ["create"]}


def version_info(version: str) -> dict[str, str]:
    core = version.lstrip("v").split("-")[0].split(".")
    major, minor = [*core, "0", "0"][:2]
    return {"major": major, "minor": minor, "gitVersion": version,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc",
            "platform": "linux/amd64"}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def named_groups() -> list[APIGroup]:
    return [g for g in kinds.all_groups() if g.name]


def api_group_list() -> dict[str, Any]:
    groups = []
    for g in named_groups():
        gv = {"groupVersion": f"{g.name}/{g.version}", "version": g.version}
        groups.append({"name": g.name, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict[str, Any] | None:
    for g in named_groups():
        if g.name == name:
            gv = {"groupVersion": f"{g.name}/{g.version}", "version": g.version}
            return {"kind": "APIGroup", "apiVersion": "v1", "name": g.name, "versions": [gv],
                    "preferredVersion": gv}
    return None


def _resource(rt: ResourceType) -> dict[str, Any]:
    r: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                         "kind": rt.kind, "verbs": sorted(rt.verbs)}
    if rt.short_names:
        r["shortNames"] = list(rt.short_names)
    if rt.categories:
        r["categories"] = list(rt.categories)
    return r


def _subresource(rt: ResourceType, sub: str) -> dict[str, Any]:
    r: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                         "kind": rt.kind, "verbs": SUBRESOURCE_VERBS.get(sub, ["get"])}
    if sub == "scale":
        r.update(group="autoscaling", version="v1", kind="Scale")
    elif sub == "exec":
        r["kind"] = "PodExecOptions"
    elif sub == "attach":
        r["kind"] = "PodAttachOptions"
    elif sub == "portforward":
        r["kind"] = "PodPortForwardOptions"
    elif sub == "token":
        r.update(group="authentication.k8s.io", version="v1", kind="TokenRequest")
    return r


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    for g in kinds.all_groups():
        if g.name == group and g.version == version:
            resources: list[dict[str, Any]] = []
            for rt in g.resources:
                resources.append(_resource(rt))
                resources.extend(_subresource(rt, s) for s in rt.subresources)
                if rt is kinds.PODS:
                    resources.append({"name": "pods/binding", "singularName": "", "namespaced": True,
                                      "kind": "Binding", "verbs": ["create"]})
            gv = f"{group}/{version}" if group else version
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
    return None
