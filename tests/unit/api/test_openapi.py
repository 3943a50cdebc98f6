"""api/openapi.py: the OpenAPI v3 index and documents kubectl explain and kubectl apply read."""

from __future__ import annotations

import json
from typing import Any

from podnet.api import openapi
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
                   if op.get("x-kubernetes-group-version-kind") == gvk]
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
