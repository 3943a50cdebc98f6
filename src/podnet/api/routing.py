"""URL paths of the Kubernetes REST API -> (resource type, namespace, name, subresource)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from podnet.model import kinds
from podnet.model.kinds import ResourceType

EXTRA_SUBRESOURCES: dict[str, tuple[str, ...]] = {"pods": ("binding",)}
"""Subresources served beyond model/kinds.py's table (pods/binding: how schedulers assign nodes)."""


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: cluster-scoped, or all namespaces
    name: str = ""
    subresource: str = ""


@dataclass(frozen=True)
class Discovery:
    """A discovery document: /api, /apis, /apis/<g>, /api/v1, /apis/<g>/<v>."""

    kind: str  # "versions", "groups", "group", "resources"
    group: str = ""
    version: str = ""


def parse_path(path: str) -> Target | Discovery | None:
    """None when the path names nothing the server serves (-> 404)."""
    parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    if not parts or parts[0] not in ("api", "apis"):
        return None
    if parts[0] == "api":
        if len(parts) == 1:
            return Discovery("versions")
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) == 1:
            return Discovery("groups")
        if len(parts) == 2:
            return Discovery("group", parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return Discovery("resources", group, version)
    target = _resource_target(group, rest)
    if target is None or target.rt.version != version:
        return None
    sub = target.subresource
    if sub and sub not in target.rt.subresources and sub not in EXTRA_SUBRESOURCES.get(target.rt.key, ()):
        return None
    return target


def _resource_target(group: str, rest: list[str]) -> Target | None:
    if rest[0] == "namespaces" and len(rest) >= 3:
        rt = kinds.by_plural(group, rest[2])
        if rt is not None and rt.namespaced:
            if len(rest) > 5 or any(p == "" for p in rest):
                return None
            name = rest[3] if len(rest) > 3 else ""
            sub = rest[4] if len(rest) > 4 else ""
            return Target(rt, rest[1], name, sub)
    rt = kinds.by_plural(group, rest[0])
    if rt is None or len(rest) > 3 or any(p == "" for p in rest):
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if rt.namespaced and name:
        return None  # a namespaced object needs /namespaces/<ns>/ in its path
    return Target(rt, None, name, sub)
