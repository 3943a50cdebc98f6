"""Request bodies: depth and alias limits, YAML as JSON values, large bodies off the event loop,
kube-apiserver's 415 for media types it does not decode (issue 19 items 5, 6, 7)."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml
from api_support import SVC_PATH, Api, service

from podnet.api import bodies

CM_PATH = "/api/v1/namespaces/default/configmaps"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

# yaml.v2's own test document for the limit (apimachinery pkg/runtime/serializer/yaml/yaml_test.go)
LAUGHS = b"\n".join([b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] +
                    [f"{c}: &{c} [{','.join(['*' + p] * 9)}]".encode()
                     for p, c in zip("abcdefgh", "bcdefghi", strict=True)])


def test_yaml_becomes_json_values() -> None:
    doc = bodies.load_yaml(b"a: 1\nb: [yes, no, 1.5, ~, '3', 0x10, 2001-12-14]\n1: x\ntrue: y\n"
                           b"base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nbin: !!binary aGVsbG8=\n")
    assert doc == {"a": 1, "b": [True, False, 1.5, None, "3", 16, "2001-12-14"], "1": "x", "true": "y",
                   "base": {"x": 1, "y": 2}, "d": {"x": 1, "y": 3}, "bin": "aGVsbG8="}
    json.dumps(doc)  # every value is JSON


@pytest.mark.parametrize("text, error", [
    (b"a: .inf", "json: unsupported value: .inf"),
    (b"{[1]: 2}", "yaml: invalid map key"),
    (b"a: *nowhere", "yaml: unknown anchor 'nowhere' referenced"),
    (b"a: b\x00c", "control characters are not allowed"),
    (LAUGHS, "yaml: document contains excessive aliasing"),
    (b"a: " + b"[" * 101 + b"]" * 101, "exceeded max depth of 100"),
    (b"a: " + b"[" * 3_000_000, "exceeded max depth of 100"),
    (b"a: &a " + b"[" * 60 + b"]" * 60 + b"\nb: " + b"[" * 50 + b"*a" + b"]" * 50,
     "exceeded max depth of 100"),
])
def test_yaml_limits_and_errors(text: bytes, error: str) -> None:
    with pytest.raises(bodies.DecodeError) as e:
        bodies.load_yaml(text)
    assert error in str(e.value)


@pytest.mark.parametrize("text, error", [
    (b"[" * 10_000 + b"]" * 10_000, "exceeded max depth of 100"),
    (b"[" * 101 + b"]" * 101, "exceeded max depth of 100"),
    (b"[1, NaN]", "invalid character 'N' looking for beginning of value"),
    (b"1e999", "json: cannot unmarshal number 1e999 into Go value of type float64"),
])
def test_json_limits(text: bytes, error: str) -> None:
    with pytest.raises(bodies.DecodeError) as e:
        bodies.load_json(text)
    assert str(e.value) == error
    assert bodies.load_json(b"[" * 100 + b"]" * 100) is not None


async def test_deep_and_aliased_bodies_are_400_on_every_decoding_path(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    deep_json = b'{"metadata":' * 10_000 + b"{}" + b"}" * 10_000
    deep_yaml = b"metadata: " + b"[" * 10_000 + b"]" * 10_000
    cases = [("POST", SVC_PATH, deep_json, "application/json"),
             ("POST", SVC_PATH, deep_yaml, "application/yaml"),
             ("PUT", SVC_PATH + "/web", deep_json, "application/json"),
             ("PATCH", SVC_PATH + "/web", deep_json, MERGE),
             ("PATCH", SVC_PATH + "/web", deep_json, STRATEGIC),
             ("PATCH", SVC_PATH + "/web", b"[" * 10_000 + b"]" * 10_000, JSON_PATCH),
             ("PATCH", SVC_PATH + "/web", deep_yaml, APPLY),
             ("DELETE", SVC_PATH + "/web", deep_json, "application/json"),
             ("POST", CM_PATH, LAUGHS, "application/yaml"),
             ("PATCH", SVC_PATH + "/web", LAUGHS, APPLY)]
    for method, path, body, ctype in cases:
        code, st = await api.call(method, path, body, ctype=ctype, params={"fieldManager": "t"})
        assert code == 400 and st["reason"] == "BadRequest", (method, ctype, st)
        assert "exceeded max depth of 100" in st["message"] or "excessive aliasing" in st["message"], st
    code, _ = await api.call("GET", SVC_PATH + "/web")
    assert code == 200  # the DELETE with the deep body did nothing


async def test_a_large_yaml_body_does_not_hold_up_other_requests(api: Api) -> None:
    data = {f"key-{i:06d}": f"value-{i:06d}-{'x' * 16}" for i in range(70_000)}
    big = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                          "data": data}).encode()
    assert 3_000_000 < len(big) < 3 * 1024 * 1024
    order: list[str] = []

    async def post() -> None:
        code, st = await api.call("POST", CM_PATH, big, ctype="application/yaml")
        assert code == 422 and "must have at most 1048576 bytes" in st["message"]  # parsed, then validated
        order.append("big POST")

    task = asyncio.create_task(post())
    await asyncio.sleep(0.05)  # the body is sent and being decoded
    for _ in range(3):
        code, _ = await api.call("GET", "/api/v1/namespaces/default")
        assert code == 200
    order.append("small GETs")
    await task
    # before: the whole body was parsed on the event loop by the pure-Python parser (seconds), so
    # the GETs were answered only after it
    assert order == ["small GETs", "big POST"]


async def test_text_plain_is_415_as_kube_apiserver(api: Api) -> None:
    # apiserver pkg/endpoints/handlers/negotiation/errors.go errUnsupportedMediaType, listing the
    # serializers of the core API (json, yaml, protobuf)
    code, st = await api.call("POST", SVC_PATH, json.dumps(service("t")), ctype="text/plain")
    assert code == 415 and st["reason"] == "UnsupportedMediaType"
    assert st["message"] == ("the body of the request was in an unknown format - accepted media types "
                             "include: application/json, application/yaml, "
                             "application/vnd.kubernetes.protobuf")
    code, _ = await api.call("GET", SVC_PATH + "/t")
    assert code == 404
    resp = await api.client.post(SVC_PATH, data=json.dumps(service("t")).encode(),
                                 skip_auto_headers=["Content-Type"])  # no Content-Type: JSON
    assert resp.status == 201
