"""OpenAPI documents of every served kind: v3 (one per group version) and v2 (one for all).

    GET /openapi/v3         {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=.."}}}
    GET /openapi/v3/api/v1  {"openapi": "3.0.0", "paths": {...}, "components": {"schemas": {...}}}
    GET /openapi/v2         {"swagger": "2.0", "paths": {...}, "definitions": {...}} (JSON or protobuf)

`kubectl explain` finds a resource's kind through the `x-kubernetes-group-version-kind` of the schemas
(and of the operations on its paths) and follows `$ref`s field by field; kubectl's apply and create look
for the `fieldValidation` query parameter of each kind's PATCH operation to know that the server
validates fields itself; client-side strategic merge (`kubectl apply` of built-in kinds) reads the
`x-kubernetes-patch-merge-key`/`-strategy` of v3 (v2 as a fallback). Built-in kinds: field names and
types from model/openapi_types.py (generated), descriptions from model/openapi_docs.py, patch merge keys
as kube-apiserver publishes them. Custom kinds: their CRD's `openAPIV3Schema` (as registered in
model/openapi_schema.py) with the apiVersion/kind/metadata envelope added, and a List kind, as
apiextensions-apiserver builds them (for v2 stripped the way it strips them for kubectl).

Schemas are named as kube-apiserver names them (`io.k8s.api.core.v1.Service`; a custom kind by its
reversed group: `com.example.stable.v1.CronTab`). Documents are built on first request and cached
with the revisions of the custom schemas they contain, so a changed or deleted CRD gives a new
document and a new hash in the v3 index (kubectl caches by that URL).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from podnet.api.openapi_pb import encode_document
from podnet.model import kinds, openapi_schema
from podnet.model.openapi_docs import DESCRIPTIONS
from podnet.model.openapi_types import ROOTS, SCHEMAS

REF3 = "#/components/schemas/"
REF2 = "#/definitions/"
GVK = "x-kubernetes-group-version-kind"
PRESERVE = "x-kubernetes-preserve-unknown-fields"
META_V1 = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META_V1}.ObjectMeta"
LIST_META = f"{META_V1}.ListMeta"
PATCH_BODY = f"{META_V1}.Patch"
STATUS = f"{META_V1}.Status"
INT_OR_STRING_SCHEMA = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
INT_OR_STRING = {"targetPort", "port", "maxSurge", "maxUnavailable", "minAvailable", "partition"}
EXTRA_SCHEMAS: dict[str, dict[str, str]] = {  # meta types the generated table has no root for
    LIST_META: {"continue": "string", "remainingItemCount": "integer", "resourceVersion": "string",
                "selfLink": "string"},
}
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
    # kubectl's client-side apply takes these from the published schema once it has the kind, so a
    # missing one changes the patch it sends (e.g. without retainKeys on DeploymentSpec.strategy,
    # switching to Recreate keeps the old rollingUpdate and the server refuses the result)
    "DeploymentSpec.strategy": ("retainKeys", ""),
    "PodSpec.topologySpreadConstraints": ("merge", "topologyKey"),
    "PodSpec.schedulingGates": ("merge", "name"), "PodSpec.resourceClaims": ("merge,retainKeys", "name"),
    "PodStatus.podIPs": ("merge", "ip"), "PodStatus.hostIPs": ("merge", "ip"),
    "NodeSpec.podCIDRs": ("merge", ""), "ServiceStatus.conditions": ("merge", "type"),
    "DaemonSetStatus.conditions": ("merge", "type"), "StatefulSetStatus.conditions": ("merge", "type"),
    "JobStatus.conditions": ("merge", "type"), "NamespaceStatus.conditions": ("merge", "type"),
}
FIELD_VALIDATION_TEXT = "What the server does with unknown fields: Ignore, Warn, Strict."
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


def _short(schema_name: str) -> str:
    return schema_name.rsplit(".", 1)[-1]


def _reversed_group(group: str) -> str:
    return ".".join(reversed(group.split("."))) if group else "core"


def definition_name(rt: kinds.ResourceType) -> str:
    """The schema name of a kind: `io.k8s.api.core.v1.Service`, `com.example.stable.v1.CronTab`."""
    root = ROOTS.get(f"{rt.api_version}/{rt.kind}")
    if root is not None:
        return root
    return f"{_reversed_group(rt.group)}.{rt.version}.{rt.kind}"


def list_definition_name(rt: kinds.ResourceType) -> str:
    return f"{definition_name(rt).rsplit('.', 1)[0]}.{rt.list_kind_name()}"


def _is_builtin(rt: kinds.ResourceType) -> bool:
    return f"{rt.api_version}/{rt.kind}" in ROOTS


# ---- custom resources: the CRD's schema, as apiextensions-apiserver publishes it ----------------


def _v2_strip(s: dict[str, Any]) -> None:
    """What OpenAPI v2 (and kubectl's v2 reader) cannot take, removed in place, recursively."""
    for junctor in ("allOf", "oneOf", "anyOf", "not"):
        s.pop(junctor, None)
    props = s.get("properties")
    if isinstance(props, dict) and isinstance(s.get("required"), list):
        nullable = {k for k, v in props.items() if isinstance(v, dict) and v.get("nullable") is True}
        s["required"] = [r for r in s["required"] if r not in nullable]
        if not s["required"]:
            del s["required"]
    addl = s.get("additionalProperties")
    if isinstance(addl, dict) and addl.get("nullable") is True:
        s.pop("required", None)
    if s.get("nullable") is True:
        for k in ("type", "nullable", "items", "properties"):
            s.pop(k, None)
    s.pop("nullable", None)
    if s.get(PRESERVE) is True:
        s.pop("items", None)
        s.pop("properties", None)
        if s.get("type") == "object":
            del s["type"]
    if s.get("type") == "array" and not isinstance(s.get("items"), dict):
        del s["type"]
    for child in _children(s):
        _v2_strip(child)


def _children(s: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    props = s.get("properties")
    if isinstance(props, dict):
        out += [v for v in props.values() if isinstance(v, dict)]
    for k in ("items", "additionalProperties"):
        if isinstance(s.get(k), dict):
            out.append(s[k])
    return out


def _unfold(s: dict[str, Any]) -> None:
    """v3: an int-or-string field spelled out as anyOf integer/string (structural schemas' Unfold)."""
    if s.get("x-kubernetes-int-or-string") is True and "anyOf" not in s:
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for child in _children(s):
        _unfold(child)


# ---- one document's worth of schemas and paths -------------------------------------------------


class _Builder:
    def __init__(self, v2: bool):
        self.v2 = v2
        self.prefix = REF2 if v2 else REF3
        self.schemas: dict[str, Any] = {}
        self.paths: dict[str, Any] = {}
        self.todo: set[str] = set()

    # -- schema pieces

    def ref(self, name: str, description: str | None = None, default: bool = True) -> dict[str, Any]:
        self.todo.add(name)
        out: dict[str, Any]
        if self.v2:
            out = {"$ref": self.prefix + name}
        else:
            out = {"allOf": [{"$ref": self.prefix + name}]}
            if default:
                out["default"] = {}
        if description:
            out["description"] = description
        return out

    def convert(self, t: str, field: str) -> dict[str, Any]:
        if t.startswith("[]"):
            return {"type": "array", "items": self.convert(t[2:], field)}
        if t.startswith("{}"):
            return {"type": "object", "additionalProperties": self.convert(t[2:], field)}
        if t.startswith("#"):
            return self.ref(t[1:])
        if t == "any":
            if field in INT_OR_STRING:
                return self.ref(INT_OR_STRING_SCHEMA, default=False)
            return {"type": "object"} if self.v2 else {"type": "object", PRESERVE: True}
        if t == "date-time":
            return {"type": "string", "format": "date-time"}
        if t == "byte":
            return {"type": "string", "format": "byte"}
        if t == "integer":
            return {"type": "integer", "format": "int32" if field.endswith(("Port", "port")) else "int64"}
        return {"type": t, "default": ""} if t == "string" else {"type": t}

    def table_schema(self, name: str) -> dict[str, Any]:
        short = _short(name)
        if name == INT_OR_STRING_SCHEMA:
            if self.v2:
                return {"type": "string", "format": "int-or-string",
                        "description": DESCRIPTIONS["IntOrString"]}
            return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}],
                    "description": DESCRIPTIONS["IntOrString"]}
        if name == PATCH_BODY:
            return {"type": "object", "description": DESCRIPTIONS["Patch"]}
        props: dict[str, Any] = {}
        fields = SCHEMAS.get(name) or EXTRA_SCHEMAS.get(name) or {}
        for field, t in fields.items():
            prop = self.convert(t, field)
            text = DESCRIPTIONS.get(f"{short}.{field}") or DESCRIPTIONS.get(f"TypeMeta.{field}")
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

    def type_meta(self, props: dict[str, Any]) -> None:
        props["apiVersion"] = {"type": "string", "description": DESCRIPTIONS["TypeMeta.apiVersion"]}
        props["kind"] = {"type": "string", "description": DESCRIPTIONS["TypeMeta.kind"]}

    def _embedded(self, s: dict[str, Any]) -> None:
        for child in _children(s):
            self._embedded(child)
        if self.v2 and s.get(PRESERVE) is True:
            return
        if s.get("x-kubernetes-embedded-resource") is True:
            props = s.setdefault("properties", {})
            self.type_meta(props)
            props["metadata"] = self.ref(OBJECT_META, DESCRIPTIONS["ObjectMeta"], default=False)
            required = s.setdefault("required", [])
            required += [k for k in ("kind", "apiVersion") if k not in required]

    def custom_schema(self, rt: kinds.ResourceType) -> dict[str, Any]:
        crd_schema = openapi_schema.schema_for(rt.api_version, rt.kind)
        if not crd_schema:  # a CRD without a schema: its envelope, anything else allowed
            if self.v2:
                return {"type": "object"}
            props: dict[str, Any] = {}
            self.type_meta(props)
            props["metadata"] = self.ref(OBJECT_META, DESCRIPTIONS["ObjectMeta"], default=False)
            return {"type": "object", PRESERVE: True, "properties": props}
        s = copy.deepcopy(crd_schema)
        if self.v2:
            if s.get(PRESERVE) is True:  # kubectl's v2 reader would refuse fields outside the envelope
                return {"type": "object"}
            _v2_strip(s)
        else:
            _unfold(s)
        s.setdefault("type", "object")
        props = s.setdefault("properties", {})
        props["metadata"] = self.ref(OBJECT_META, DESCRIPTIONS["ObjectMeta"], default=False)
        self.type_meta(props)
        self._embedded(s)
        return s

    def list_schema(self, rt: kinds.ResourceType, item: str) -> dict[str, Any]:
        props: dict[str, Any] = {
            "items": {"type": "array", "items": self.ref(item),
                      "description": f"The {rt.plural} in the list."},
            "metadata": self.ref(LIST_META, DESCRIPTIONS["ListMeta"], default=False),
        }
        self.type_meta(props)
        return {"type": "object", "description": f"{rt.list_kind_name()} is a list of {rt.kind}.",
                "required": ["items"], "properties": props,
                GVK: [{"group": rt.group, "kind": rt.list_kind_name(), "version": rt.version}]}

    # -- paths

    def _param(self, name: str, where: str, description: str, required: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "in": where, "description": description}
        if required:
            out["required"] = True
        if self.v2:
            out["type"] = "string"
            if name == "fieldValidation":
                out["uniqueItems"] = True
        else:
            out["schema"] = {"type": "string", "uniqueItems": True} if name == "fieldValidation" \
                else {"type": "string"}
        return out

    def _op(self, op_id: str, action: str, gvk: dict[str, str], response: str, *, body: str | None = None,
            description: str = "", field_validation: bool = False, patch: bool = False) -> dict[str, Any]:
        op: dict[str, Any] = {"operationId": op_id, "description": description,
                              "x-kubernetes-action": action, GVK: gvk}
        self.todo.add(response)
        params: list[dict[str, Any]] = []
        if self.v2:
            op["produces"] = ["application/json", "application/yaml"]
            op["responses"] = {"200": {"description": "OK", "schema": {"$ref": self.prefix + response}},
                               "401": {"description": "Unauthorized"}}
            if body is not None:
                self.todo.add(body)
                op["consumes"] = PATCH_TYPES if patch else ["application/json", "application/yaml"]
                params.append({"name": "body", "in": "body", "required": True,
                               "schema": {"$ref": self.prefix + body}})
        else:
            op["responses"] = {"200": {"description": "OK", "content": {
                "application/json": {"schema": {"$ref": self.prefix + response}}}},
                "401": {"description": "Unauthorized"}}
            if body is not None:
                self.todo.add(body)
                op["requestBody"] = {"required": True, "content": {
                    t: {"schema": {"$ref": self.prefix + body}}
                    for t in (PATCH_TYPES if patch else ["application/json", "application/yaml"])}}
        if field_validation:
            params.append(self._param("fieldValidation", "query", FIELD_VALIDATION_TEXT))
        if params:
            op["parameters"] = params
        return op

    def add_paths(self, rt: kinds.ResourceType, kind_name: str, list_name: str) -> None:
        gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
        base = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
        coll = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
        ns = "Namespaced" if rt.namespaced else ""
        scope = [self._param("namespace", "path", "object name and auth scope, such as for teams and "
                             "projects", True)] if rt.namespaced else []
        if "list" in rt.verbs or "create" in rt.verbs:
            ops: dict[str, Any] = {}
            if "list" in rt.verbs:
                ops["get"] = self._op(f"list{ns}{rt.kind}", "list", gvk, list_name,
                                      description=f"list or watch objects of kind {rt.kind}")
            if "create" in rt.verbs:
                ops["post"] = self._op(f"create{ns}{rt.kind}", "post", gvk, kind_name, body=kind_name,
                                       description=f"create a {rt.kind}", field_validation=True)
            if scope:
                ops["parameters"] = scope
            self.paths[coll] = ops
        if "get" in rt.verbs:
            item: dict[str, Any] = {"get": self._op(f"read{ns}{rt.kind}", "get", gvk, kind_name,
                                                    description=f"read the specified {rt.kind}")}
            if "patch" in rt.verbs:
                item["patch"] = self._op(f"patch{ns}{rt.kind}", "patch", gvk, kind_name, body=PATCH_BODY,
                                         description=f"partially update the specified {rt.kind}",
                                         field_validation=True, patch=True)
            if "update" in rt.verbs:
                item["put"] = self._op(f"replace{ns}{rt.kind}", "put", gvk, kind_name, body=kind_name,
                                       description=f"replace the specified {rt.kind}", field_validation=True)
            if "delete" in rt.verbs:
                item["delete"] = self._op(f"delete{ns}{rt.kind}", "delete", gvk, STATUS,
                                          description=f"delete a {rt.kind}")
            item["parameters"] = [self._param("name", "path", f"name of the {rt.kind}", True), *scope]
            self.paths[f"{coll}/{{name}}"] = item

    # -- kinds

    def add_group(self, g: kinds.APIGroup) -> None:
        for rt in g.resources:
            gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
            name = definition_name(rt)
            list_name = list_definition_name(rt)
            schema = self.table_schema(name) if _is_builtin(rt) else self.custom_schema(rt)
            schema[GVK] = [gvk]
            self.schemas[name] = schema
            if "list" in rt.verbs:
                self.schemas[list_name] = self.list_schema(rt, name)
            self.add_paths(rt, name, list_name)

    def finish(self) -> dict[str, Any]:
        while self.todo:
            name = self.todo.pop()
            if name not in self.schemas:
                self.schemas[name] = self.table_schema(name)
        if STATUS in self.schemas and not self.schemas[STATUS].get("properties"):
            self.schemas[STATUS] = {"type": "object", "description": DESCRIPTIONS["Status"]}
        info = {"title": "Kubernetes", "version": "v1.32.0"}
        if self.v2:
            return {"swagger": "2.0", "info": info, "paths": self.paths, "definitions": self.schemas}
        return {"openapi": "3.0.0", "info": info, "paths": self.paths,
                "components": {"schemas": self.schemas}}


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def etag_of(data: bytes) -> str:
    """kube-openapi's ETag (and v3 URL hash): the SHA-512 of the document, upper-case hex."""
    return hashlib.sha512(data).hexdigest().upper()


@dataclass(frozen=True)
class Built:
    data: bytes
    etag: str
    last_modified: float


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _group_key(g: kinds.APIGroup) -> tuple[Any, ...]:
    """What a group's document depends on: its resources and the revisions of the custom schemas."""
    return (g, tuple(openapi_schema.revision(rt.api_version, rt.kind) for rt in g.resources
                     if not _is_builtin(rt)))


_V3: dict[str, tuple[tuple[Any, ...], Built]] = {}
_V2: dict[str, tuple[tuple[Any, ...], Built]] = {}  # "json"/"proto" -> (key, document)


def _build_v3(g: kinds.APIGroup) -> Built:
    b = _Builder(v2=False)
    b.add_group(g)
    data = _encode(b.finish())
    return Built(data, etag_of(data), time.time())


def v3_document(gv_path: str) -> Built | None:
    """The OpenAPI v3 document of one group version (`api/v1`, `apis/apps/v1`), None if not served."""
    wanted = gv_path.strip("/")
    for g in kinds.all_groups():
        if _gv_path(g.name, g.version) == wanted:
            key = _group_key(g)
            cached = _V3.get(wanted)
            if cached is None or cached[0] != key:
                cached = (key, _build_v3(g))
                _V3[wanted] = cached
            return cached[1]
    return None


def document(gv_path: str) -> bytes | None:
    built = v3_document(gv_path)
    return built.data if built is not None else None


def index() -> dict[str, Any]:
    """`/openapi/v3`: each served group version with the URL of its current document."""
    out: dict[str, Any] = {}
    for g in kinds.all_groups():
        path = _gv_path(g.name, g.version)
        built = v3_document(path)
        if built is not None:
            out[path] = {"serverRelativeURL": v3_url(path, built.etag)}
    for gone in set(_V3) - set(out):  # group versions no longer served (a deleted CRD's)
        del _V3[gone]
    return {"paths": out}


def v3_url(path: str, etag: str) -> str:
    return f"/openapi/v3/{path}?hash={etag}"


def v2_document(fmt: str = "json") -> Built:
    """The OpenAPI v2 document of everything served: `json`, or `proto` (gnostic's protobuf)."""
    groups = kinds.all_groups()
    key = tuple(_group_key(g) for g in groups)
    cached = _V2.get(fmt)
    if cached is not None and cached[0] == key:
        return cached[1]
    b = _Builder(v2=True)
    for g in groups:
        b.add_group(g)
    doc = b.finish()
    json_data = _encode(doc)
    built_json = Built(json_data, etag_of(json_data), time.time())
    _V2["json"] = (key, built_json)
    if fmt == "json":
        _V2.pop("proto", None)
        return built_json
    # the same ETag for both encodings, as kube-openapi (responses vary by Accept)
    built = Built(encode_document(doc), built_json.etag, built_json.last_modified)
    _V2["proto"] = (key, built)
    return built
