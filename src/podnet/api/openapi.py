"""OpenAPI v3 documents for every served group version, built from podnet's schema table.

    GET /openapi/v3         {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=.."}}}
    GET /openapi/v3/api/v1  {"openapi": "3.0.0", "paths": {...}, "components": {"schemas": {...}}}

`kubectl explain` finds a resource's kind through the `x-kubernetes-group-version-kind` of the operations
on its paths, then the schema carrying the same extension, and follows `$ref`s field by field; kubectl's
apply and create look for the `fieldValidation` query parameter of each kind's PATCH operation to know
that the server validates fields itself. Field names and types come from model/openapi_types.py
(generated), descriptions from model/openapi_docs.py, patch merge keys as kube-apiserver publishes them.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from podnet.model import kinds
from podnet.model.openapi_docs import DESCRIPTIONS
from podnet.model.openapi_types import ROOTS, SCHEMAS

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
INT_OR_STRING_SCHEMA = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
INT_OR_STRING = {"targetPort", "port", "maxSurge", "maxUnavailable", "minAvailable", "partition"}
PATCH: dict[str, tuple[str, str]] = {  # "<Type>.<field>": (strategy, merge key)
    "PodSpec.containers": ("merge", "name"), "PodSpec.initContainers": ("merge", "name"),
    "PodSpec.ephemeralContainers": ("merge", "name"), "PodSpec.volumes": ("merge,retainKeys", "name"),
    "PodSpec.imagePullSecrets": ("merge", "name"), "PodSpec.hostAliases": ("merge", "ip"),
    "Container.ports": ("merge", "containerPort"), "Container.env": ("merge", "name"),
    "Container.volumeMounts": ("merge", "mountPath"), "Container.volumeDevices": ("merge", "devicePath"),
    "ServiceSpec.ports": ("merge", "port"), "ObjectMeta.ownerReferences": ("merge", "uid"),
    "ObjectMeta.finalizers": ("merge", ""), "PodStatus.conditions": ("merge", "type"),
    "NodeStatus.conditions": ("merge", "type"), "NodeStatus.addresses": ("merge", "type"),
    "DeploymentStatus.conditions": ("merge", "type"), "ReplicaSetStatus.conditions": ("merge", "type"),
}
FIELD_VALIDATION = {"name": "fieldValidation", "in": "query",
                    "schema": {"type": "string", "uniqueItems": True},
                    "description": "What the server does with unknown fields: Ignore, Warn, Strict."}


def _short(schema_name: str) -> str:
    return schema_name.rsplit(".", 1)[-1]


def _convert(t: str, field: str, refs: set[str]) -> dict[str, Any]:
    if t.startswith("[]"):
        return {"type": "array", "items": _convert(t[2:], field, refs)}
    if t.startswith("{}"):
        return {"type": "object", "additionalProperties": _convert(t[2:], field, refs)}
    if t.startswith("#"):
        refs.add(t[1:])
        return {"allOf": [{"$ref": f"#/components/schemas/{t[1:]}"}], "default": {}}
    if t == "any":
        if field in INT_OR_STRING:
            refs.add(INT_OR_STRING_SCHEMA)
            return {"allOf": [{"$ref": f"#/components/schemas/{INT_OR_STRING_SCHEMA}"}]}
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if t == "date-time":
        return {"type": "string", "format": "date-time"}
    if t == "byte":
        return {"type": "string", "format": "byte"}
    if t == "integer":
        return {"type": "integer", "format": "int32" if field.endswith(("Port", "port")) else "int64"}
    return {"type": t, "default": ""} if t == "string" else {"type": t}


def _schema(name: str, refs: set[str]) -> dict[str, Any]:
    short = _short(name)
    if name == INT_OR_STRING_SCHEMA:
        return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}],
                "description": DESCRIPTIONS["IntOrString"]}
    props: dict[str, Any] = {}
    for field, t in SCHEMAS.get(name, {}).items():
        prop = _convert(t, field, refs)
        text = DESCRIPTIONS.get(f"{short}.{field}")
        if text:
            prop["description"] = text
        strategy = PATCH.get(f"{short}.{field}")
        if strategy is not None:
            prop["x-kubernetes-patch-strategy"] = strategy[0]
            if strategy[1]:
                prop["x-kubernetes-patch-merge-key"] = strategy[1]
        props[field] = prop
    out: dict[str, Any] = {"type": "object", "properties": props}
    if short in DESCRIPTIONS:
        out["description"] = DESCRIPTIONS[short]
    return out


def _paths(rt: kinds.ResourceType, gvk: dict[str, str]) -> dict[str, Any]:
    base = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    coll = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    ext = {"x-kubernetes-group-version-kind": gvk}
    paths: dict[str, Any] = {}
    if "list" in rt.verbs or "create" in rt.verbs:
        ops: dict[str, Any] = {}
        if "list" in rt.verbs:
            ops["get"] = {"operationId": f"list{rt.kind}", "x-kubernetes-action": "list", **ext}
        if "create" in rt.verbs:
            ops["post"] = {"operationId": f"create{rt.kind}", "x-kubernetes-action": "post", **ext,
                           "parameters": [FIELD_VALIDATION]}
        paths[coll] = ops
    if "get" in rt.verbs:
        item: dict[str, Any] = {"get": {"operationId": f"read{rt.kind}", "x-kubernetes-action": "get", **ext}}
        if "patch" in rt.verbs:
            item["patch"] = {"operationId": f"patch{rt.kind}", "x-kubernetes-action": "patch", **ext,
                             "parameters": [FIELD_VALIDATION]}
        if "update" in rt.verbs:
            item["put"] = {"operationId": f"replace{rt.kind}", "x-kubernetes-action": "put", **ext,
                           "parameters": [FIELD_VALIDATION]}
        paths[f"{coll}/{{name}}"] = item
    return paths


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


@lru_cache(maxsize=64)
def _render(g: kinds.APIGroup) -> bytes:
    """One group version's document (cached per set of served resources: custom ones come and go)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    todo: set[str] = set()
    for rt in g.resources:
        root = ROOTS.get(f"{rt.api_version}/{rt.kind}")
        gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
        paths.update(_paths(rt, gvk))
        refs: set[str] = set()
        if root is not None:
            schema = _schema(root, refs)
        else:  # a kind the generated table does not know yet (a custom resource): its envelope
            root = f"{rt.group or 'core'}.{rt.version}.{rt.kind}"
            schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "metadata": _convert(f"#{OBJECT_META}", "metadata", refs)}}
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[root] = schema
        todo |= refs
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        refs = set()
        schemas[name] = _schema(name, refs)
        todo |= refs - schemas.keys()
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths,
           "components": {"schemas": schemas}}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def document(gv_path: str) -> bytes | None:
    """The OpenAPI v3 document of one group version (`api/v1`, `apis/apps/v1`), None if not served."""
    wanted = gv_path.strip("/")
    for g in kinds.all_groups():
        if _gv_path(g.name, g.version) == wanted:
            return _render(g)
    return None


def index() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for g in kinds.all_groups():
        path = _gv_path(g.name, g.version)
        doc = document(path)
        if doc is None:
            continue
        digest = hashlib.sha512(doc).hexdigest()[:64].upper()
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": out}
