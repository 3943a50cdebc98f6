"""Error bodies byte for byte as kube-apiserver sends them (issue 14).

kube-apiserver encodes a metav1.Status with Go's json.Encoder (apimachinery
pkg/runtime/serializer/json/json.go: `json.NewEncoder(w).Encode(obj)`), so:
- keys in the struct's field order (apimachinery pkg/apis/meta/v1/types.go `type Status struct`):
  kind, apiVersion (TypeMeta), metadata, status, message, reason, details, code; StatusDetails:
  name, group, kind, uid, causes, retryAfterSeconds; StatusCause: reason, message, field; empty
  ones left out (`omitempty`), metadata always present as {};
- compact, non-ASCII as UTF-8, <, > and & as \\u003c \\u003e \\u0026;
- a trailing newline (Encoder.Encode);
- Content-Type application/json, Cache-Control "no-cache, private" (apiserver filters/cachecontrol.go).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from api_support import SVC_PATH, Api, service
from kubernetes import client as kclient
from kubernetes import utils as kutils


async def _raw(api: Api, method: str, path: str, body: bytes | None = None,
               ctype: str = "application/json") -> tuple[int, bytes, dict[str, str]]:
    resp = await api.client.request(method, path, data=body, headers={"Content-Type": ctype})
    return resp.status, await resp.read(), dict(resp.headers)


async def test_already_exists_bytes(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("mock-2"))
    code, body, headers = await _raw(api, "POST", SVC_PATH, json.dumps(service("mock-2")).encode())
    assert code == 409
    # the body kubernetes-client/python's e2e test (e2e_test/test_utils.py, yaml-conflict-multi.yaml)
    # expects from kube-apiserver for the same conflict
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                    b'"message":"services \\"mock-2\\" already exists","reason":"AlreadyExists",'
                    b'"details":{"name":"mock-2","kind":"services"},"code":409}\n')
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-cache, private"


async def test_not_found_group_and_invalid_causes_bytes(api: Api) -> None:
    code, body, _ = await _raw(api, "GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    assert code == 404
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                    b'"message":"deployments.apps \\"nope\\" not found","reason":"NotFound",'
                    b'"details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}\n')
    bad = b'{"apiVersion":"v1","kind":"Service","metadata":{"name":"x<y"},"spec":{"ports":[{"port":80}]}}'
    code, body, _ = await _raw(api, "POST", SVC_PATH, bad)
    assert code == 422
    assert body.startswith(b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                           b'"message":"Service \\"x\\u003cy\\" is invalid: metadata.name: Invalid value: '
                           b'\\"x\\u003cy\\": ')
    assert b'"reason":"Invalid","details":{"name":"x\\u003cy","kind":"Service","causes":[{"reason":' \
           b'"FieldValueInvalid","message":"Invalid value: ' in body
    assert body.endswith(b'"field":"metadata.name"}]},"code":422}\n')


async def test_python_client_create_from_yaml_conflict_body(api: Api, tmp_path: Path) -> None:
    manifest = tmp_path / "conflict.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: mock-2\nspec:\n  ports:\n"
                        "  - port: 80\n")
    await api.call("POST", SVC_PATH, service("mock-2"))
    cfg = kclient.Configuration()
    cfg.host = str(api.client.make_url("")).rstrip("/")
    with kclient.ApiClient(cfg) as k8s, pytest.raises(kutils.FailToCreateError) as e:
        await asyncio.to_thread(kutils.create_from_yaml, k8s, str(manifest), namespace="default")
    # the string kubernetes-client/python's e2e_test/test_utils.py compares for this conflict
    assert str(e.value) == ('Error from server (Conflict): {"kind":"Status","apiVersion":"v1",'
                            '"metadata":{},"status":"Failure","message":"services \\"mock-2\\" already '
                            'exists","reason":"AlreadyExists","details":{"name":"mock-2","kind":"services"},'
                            '"code":409}\n')
