"""`kubectl explain` against podnet's OpenAPI v3 and v2 documents, for every served kind and for CRDs."""

from __future__ import annotations

import json

import pytest
from kube_support import ApiServerProc
from openapi_spec_validator import OpenAPIV2SpecValidator

from podnet.model import kinds

pytestmark = pytest.mark.e2e


def test_explain_service_spec_ports(apiserver: ApiServerProc) -> None:
    out = apiserver.kubectl("explain", "service.spec.ports").stdout
    assert out.startswith("KIND:       Service\nVERSION:    v1\n\nFIELD: ports <[]ServicePort>\n")
    assert "The ports the Service exposes" in out
    for line in ("  nodePort\t<integer>", "  port\t<integer>", "  protocol\t<string>",
                 "  targetPort\t<IntOrString>", "  name\t<string>"):
        assert line in out, out
    assert "allocated\n    from 30000-32767" in out


def test_explain_a_deep_field_and_a_group_kind(apiserver: ApiServerProc) -> None:
    out = apiserver.kubectl("explain", "deployment.spec.template.spec.containers.ports.containerPort").stdout
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
                          "FIELD: containerPort <integer>\n"), out


def test_explain_a_missing_field_is_kubectls_error(apiserver: ApiServerProc) -> None:
    res = apiserver.kubectl("explain", "service.spec.nosuch", check=False)
    assert res.returncode != 0
    assert 'error: field "nosuch" does not exist' in res.stderr


def test_every_served_kind_explains(apiserver: ApiServerProc) -> None:
    names = apiserver.kubectl("api-resources", "--no-headers", "-o", "name").stdout.split()
    assert len(names) >= 30
    served = {(rt.plural, rt.group): rt for g in kinds.all_groups() for rt in g.resources}
    failed = {}
    for name in names:
        plural, _, group = name.partition(".")
        rt = served[(plural, group)]
        res = apiserver.kubectl("explain", plural, f"--api-version={rt.api_version}", check=False)
        if res.returncode != 0 or f"KIND:       {rt.kind}\n" not in res.stdout:
            failed[name] = res.stderr.strip() or res.stdout[:200]
    assert not failed, failed


def test_kubectl_still_asks_the_server_to_validate_fields(apiserver: ApiServerProc) -> None:
    # the OpenAPI document declares fieldValidation on every PATCH: kubectl leaves validation to the server
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: explain-strict\n"
                "data:\n  a: b\nbogus: 1\n")
    res = apiserver.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert res.returncode != 0
    assert 'strict decoding error: unknown field "bogus"' in res.stderr


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.explain.example.com
spec:
  group: explain.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A Gadget is a kind made for this test.
        properties:
          spec:
            type: object
            description: What the gadget does.
            properties:
              speed: {type: integer, description: "How fast the gadget spins, in turns per second."}
"""
NEW_FIELD = """              colour:
                type: string
                description: The gadget's colour, added in a later revision.
"""


def test_explain_a_crd_kind_and_field_and_again_after_the_crd_changes(apiserver: ApiServerProc) -> None:
    apiserver.kubectl("apply", "-f", "-", input=CRD)
    try:
        out = apiserver.kubectl("explain", "gadgets").stdout
        assert out.startswith("GROUP:      explain.example.com\nKIND:       Gadget\nVERSION:    v1\n"), out
        assert "A Gadget is a kind made for this test." in out
        assert "  metadata\t<ObjectMeta>" in out and "  spec\t<Object>" in out
        out = apiserver.kubectl("explain", "gadgets.spec.speed").stdout
        assert "FIELD: speed <integer>" in out and "How fast the gadget spins" in out
        assert "colour" not in apiserver.kubectl("explain", "gadgets.spec").stdout
        # the CRD gains a field: the v3 index names a new hash, so kubectl's cache does not answer
        apiserver.kubectl("apply", "-f", "-", input=CRD + NEW_FIELD)
        out = apiserver.kubectl("explain", "gadgets.spec").stdout
        assert "  colour\t<string>" in out and "added in a later revision" in out, out
        out = apiserver.kubectl("explain", "--output=plaintext-openapiv2", "gadgets.spec").stdout
        assert "colour\t<string>" in out and "How fast the gadget spins" in out, out
    finally:
        apiserver.kubectl("delete", "crd", "gadgets.explain.example.com", check=False)
    res = apiserver.kubectl("explain", "gadgets", check=False)
    assert res.returncode != 0 and 'couldn\'t find resource for "explain.example.com/v1, Resource=gadgets"' \
        in res.stderr, res.stderr


def test_openapi_v2_is_swagger_and_kubectl_reads_its_protobuf(apiserver: ApiServerProc) -> None:
    doc = json.loads(apiserver.kubectl("get", "--raw", "/openapi/v2").stdout)
    assert not list(OpenAPIV2SpecValidator(doc).iter_errors())
    service = doc["definitions"]["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Service", "version": "v1"}]
    assert service["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.ServiceSpec"
    # plaintext-openapiv2 is the explain that reads /openapi/v2, in the protobuf kubectl asks for
    out = apiserver.kubectl("explain", "--output=plaintext-openapiv2", "service.spec.ports").stdout
    assert out.startswith("KIND:     Service\nVERSION:  v1\n\nRESOURCE: ports <[]Object>\n"), out
    assert "The ports the Service exposes" in out and "   targetPort\t<string>" in out
