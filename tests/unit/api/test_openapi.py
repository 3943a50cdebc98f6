"""api/openapi.py: the OpenAPI v3 index and documents and the v2 document (JSON and gnostic protobuf)
that kubectl explain and kubectl apply read, for built-in kinds and CRDs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV30SpecValidator

from podnet.api import crds, openapi
from podnet.api.openapi_pb import encode_document
from podnet.model import kinds


def _doc(path: str) -> dict[str, Any]:
    raw = openapi.document(path)
    assert raw is not None, path
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_index_lists_every_served_group_version_with_a_content_hash() -> None:
    index = openapi.index()["paths"]
    for g in kinds.all_groups():
        path = f"api/{g.version}" if not g.name else f"apis/{g.name}/{g.version}"
        url = index[path]["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=")
    assert openapi.index() == openapi.index()


def test_every_kind_has_its_gvk_on_its_paths_and_one_schema_and_every_ref_resolves() -> None:
    for g in kinds.all_groups():
        doc = _doc(f"api/{g.version}" if not g.name else f"apis/{g.name}/{g.version}")
        schemas = doc["components"]["schemas"]
        for rt in g.resources:
            gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
            with_gvk = [n for n, s in schemas.items() if gvk in s.get("x-kubernetes-group-version-kind", [])]
            assert len(with_gvk) == 1, (rt.kind, with_gvk)
            ops = [op for p in doc["paths"].values() for op in p.values()
                   if isinstance(op, dict) and op.get("x-kubernetes-group-version-kind") == gvk]
            assert ops, rt.kind
            if "patch" in rt.verbs:
                patch = [op for p in doc["paths"].values() for m, op in p.items()
                         if m == "patch" and op["x-kubernetes-group-version-kind"] == gvk]
                assert [p["name"] for p in patch[0]["parameters"]] == ["fieldValidation"]
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas, ref


def test_service_port_fields_types_and_merge_keys() -> None:
    schemas = _doc("api/v1")["components"]["schemas"]
    spec = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]
    assert spec["ports"]["type"] == "array"
    assert spec["ports"]["x-kubernetes-patch-merge-key"] == "port"
    port = schemas["io.k8s.api.core.v1.ServicePort"]["properties"]
    assert port["nodePort"]["type"] == "integer"
    assert port["targetPort"]["allOf"][0]["$ref"].endswith("intstr.IntOrString")
    assert "30000-32767" in port["nodePort"]["description"]


def test_an_unknown_group_version_has_no_document() -> None:
    assert openapi.document("apis/nosuch.example.com/v1") is None


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.openapi-test.example.com"},
    "spec": {"group": "openapi-test.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "description": "A Widget is a test kind.",
                 "properties": {"spec": {
                     "type": "object", "description": "What the widget is.", "required": ["size"],
                     "properties": {
                         "size": {"type": "integer", "description": "How big it is.", "minimum": 1},
                         "port": {"x-kubernetes-int-or-string": True},
                         "extra": {"type": "object", "nullable": True,
                                   "x-kubernetes-preserve-unknown-fields": True,
                                   "properties": {"a": {"type": "string"}}},
                         "choice": {"type": "string", "anyOf": [{"enum": ["a"]}, {"enum": ["b"]}]}}}}}}}]},
}
GV = "apis/openapi-test.example.com/v1"
NAME = "com.example.openapi-test.v1.Widget"


@pytest.fixture
def widget_crd() -> Iterator[dict[str, Any]]:
    crd = copy.deepcopy(CRD)
    assert crds.serve(crd) is not None
    try:
        yield crd
    finally:
        crds.stop_serving(crd)


def test_a_crd_schema_is_its_kind_in_the_v3_document_with_the_envelope_and_a_list(
        widget_crd: dict[str, Any]) -> None:
    schemas = _doc(GV)["components"]["schemas"]
    widget = schemas[NAME]
    assert widget["x-kubernetes-group-version-kind"] == [
        {"group": "openapi-test.example.com", "kind": "Widget", "version": "v1"}]
    assert widget["description"] == "A Widget is a test kind."
    props = widget["properties"]
    assert props["metadata"]["allOf"] == [{"$ref": "#/components/schemas/" + openapi.OBJECT_META}]
    assert props["apiVersion"]["type"] == props["kind"]["type"] == "string"
    spec = props["spec"]
    assert spec["properties"]["size"] == {"type": "integer", "description": "How big it is.", "minimum": 1}
    assert spec["required"] == ["size"]
    assert spec["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    listed = schemas["com.example.openapi-test.v1.WidgetList"]
    assert listed["x-kubernetes-group-version-kind"][0]["kind"] == "WidgetList"
    assert listed["properties"]["items"]["items"]["allOf"] == [{"$ref": "#/components/schemas/" + NAME}]
    assert listed["required"] == ["items"]
    assert openapi.OBJECT_META in schemas and openapi.LIST_META in schemas
    assert not list(OpenAPIV30SpecValidator(_doc(GV)).iter_errors())


def test_a_changed_crd_changes_the_document_and_its_hash_and_a_deleted_one_leaves(
        widget_crd: dict[str, Any]) -> None:
    before = openapi.index()["paths"][GV]["serverRelativeURL"]
    core_before = openapi.index()["paths"]["api/v1"]["serverRelativeURL"]
    assert openapi.index()["paths"][GV]["serverRelativeURL"] == before  # stable while nothing changes
    changed = copy.deepcopy(widget_crd)
    spec = changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["colour"] = {"type": "string", "description": "The new field."}
    crds.serve(changed)
    after = openapi.index()["paths"][GV]["serverRelativeURL"]
    assert after != before and after.startswith(f"/openapi/v3/{GV}?hash=")
    assert openapi.index()["paths"]["api/v1"]["serverRelativeURL"] == core_before
    fields = _doc(GV)["components"]["schemas"][NAME]["properties"]["spec"]["properties"]
    assert fields["colour"]["description"] == "The new field."
    v2 = json.loads(openapi.v2_document("json").data)["definitions"]
    assert v2[NAME]["properties"]["spec"]["properties"]["colour"]["description"] == "The new field."
    crds.stop_serving(changed)
    assert GV not in openapi.index()["paths"]
    assert openapi.document(GV) is None
    assert NAME not in json.loads(openapi.v2_document("json").data)["definitions"]


def test_v2_is_valid_swagger_with_kube_names_gvks_and_patch_keys(widget_crd: dict[str, Any]) -> None:
    doc = json.loads(openapi.v2_document("json").data)
    assert not list(OpenAPIV2SpecValidator(doc).iter_errors())
    assert doc["swagger"] == "2.0"
    defs = doc["definitions"]
    service = defs["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Service", "version": "v1"}]
    ports = defs["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "port" and ports["x-kubernetes-patch-strategy"] == "merge"
    assert ports["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.ServicePort"}
    assert defs[openapi.INT_OR_STRING_SCHEMA]["format"] == "int-or-string"
    # core types keep their core names wherever they are used (apps/v1 Deployment's pod template)
    template = defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["template"]
    assert template["$ref"] == "#/definitions/io.k8s.api.core.v1.PodTemplateSpec"
    assert not any(n.startswith("io.k8s.api.apps.v1.Container") for n in defs)
    for ref in _refs(doc):
        assert ref.startswith("#/definitions/") and ref.split("/")[-1] in defs, ref
    assert doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"][
        "x-kubernetes-group-version-kind"] == {"group": "", "kind": "Service", "version": "v1"}
    # a CRD's schema, stripped for v2 as apiextensions-apiserver does: no anyOf, nullable or typed
    # preserve-unknown-fields object
    spec = defs[NAME]["properties"]["spec"]
    assert "anyOf" not in spec["properties"]["choice"] and spec["properties"]["choice"]["type"] == "string"
    assert spec["properties"]["extra"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert spec["properties"]["port"] == {"x-kubernetes-int-or-string": True}
    assert defs[NAME]["properties"]["metadata"]["$ref"] == "#/definitions/" + openapi.OBJECT_META


def test_v2_with_a_crd_preserving_unknown_fields_at_its_root_is_a_plain_object() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"] = True
    crds.serve(crd)
    try:
        defs = json.loads(openapi.v2_document("json").data)["definitions"]
        assert defs[NAME] == {"type": "object", "x-kubernetes-group-version-kind": [
            {"group": "openapi-test.example.com", "kind": "Widget", "version": "v1"}]}
        assert "spec" in _doc(GV)["components"]["schemas"][NAME]["properties"]  # v3 keeps the schema
    finally:
        crds.stop_serving(crd)


def test_v2_documents_are_built_once_until_a_crd_changes(widget_crd: dict[str, Any]) -> None:
    first = openapi.v2_document("proto")
    assert openapi.v2_document("proto") is first
    assert openapi.v2_document("json").etag == first.etag
    crds.serve(copy.deepcopy(widget_crd))  # written again: a new revision of the schema
    assert openapi.v2_document("proto") is not first


# -- a reader of protobuf's wire format, to check the encoding against gnostic's field numbers ----


def _fields(data: bytes) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        n = shift = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, varint()))
        elif wire == 2:
            n = varint()
            out.append((field, data[i:i + n]))
            i += n
        elif wire == 1:
            out.append((field, data[i:i + 8]))
            i += 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _one(data: bytes, field: int) -> bytes:
    found = [v for f, v in _fields(data) if f == field]
    assert len(found) == 1, (field, found)
    value = found[0]
    assert isinstance(value, bytes)
    return value


def test_the_protobuf_document_is_gnostics_message() -> None:
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {},
           "definitions": {"io.k8s.api.core.v1.Service": {
               "type": "object", "description": "d", "required": ["spec"],
               "properties": {"spec": {"$ref": "#/definitions/S", "description": "the spec"},
                              "n": {"type": "integer", "minimum": 1}},
               "x-kubernetes-group-version-kind": [{"group": "", "kind": "Service", "version": "v1"}]}}}
    data = encode_document(doc)
    assert _one(data, 1) == b"2.0"  # Document.swagger
    info = _one(data, 2)
    assert (_one(info, 1), _one(info, 2)) == (b"Kubernetes", b"v1.32.0")
    named = _one(_one(data, 9), 1)  # Document.definitions -> Definitions.additional_properties
    assert _one(named, 1) == b"io.k8s.api.core.v1.Service"
    schema = _one(named, 2)
    assert _one(schema, 4) == b"d" and _one(schema, 19) == b"spec"  # description, required
    assert _one(_one(schema, 22), 1) == b"object"  # TypeItem.value
    ext = _one(schema, 31)  # vendor_extension: NamedAny {name, value: Any {yaml = 2}}
    assert _one(ext, 1) == b"x-kubernetes-group-version-kind"
    yaml_text = _one(_one(ext, 2), 2).decode()
    assert json.loads(yaml_text) == [{"group": "", "kind": "Service", "version": "v1"}]
    props = {_one(p, 1): _one(p, 2) for f, p in _fields(_one(schema, 25)) if f == 1}
    assert _one(props[b"spec"], 1) == b"#/definitions/S" and _one(props[b"spec"], 4) == b"the spec"
    minimum = [v for f, v in _fields(props[b"n"]) if f == 9]
    assert minimum == [b"\x00\x00\x00\x00\x00\x00\xf0?"]  # double 1.0, little-endian
