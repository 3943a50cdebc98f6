"""Discovery, version, health and OpenAPI endpoints, and the 404 for unknown paths."""

from __future__ import annotations

from api_support import Api


async def test_version_has_all_nine_string_fields(api: Api) -> None:
    code, body = await api.call("GET", "/version")
    assert code == 200
    assert body["gitVersion"] == "v1.32.0" and body["major"] == "1" and body["minor"] == "32"
    assert set(body) == {"major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate",
                         "goVersion", "compiler", "platform"}
    assert all(isinstance(v, str) for v in body.values())


async def test_health_endpoints_answer_ok_in_plain_text(api: Api) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/readyz/ping"):
        resp = await api.client.get(path)
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        assert await resp.text() == "ok"


async def test_api_and_apis_documents(api: Api) -> None:
    code, body = await api.call("GET", "/api")
    assert code == 200 and body["kind"] == "APIVersions" and body["versions"] == ["v1"]
    assert body["serverAddressByClientCIDRs"][0]["clientCIDR"] == "0.0.0.0/0"
    code, body = await api.call("GET", "/apis")
    assert body["kind"] == "APIGroupList"
    names = {g["name"]: g for g in body["groups"]}
    assert {"apps", "discovery.k8s.io", "batch", "rbac.authorization.k8s.io", "policy", "autoscaling",
            "apiregistration.k8s.io", "apiextensions.k8s.io", "networking.k8s.io"} <= set(names)
    assert names["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    code, body = await api.call("GET", "/apis/apps")
    assert code == 200 and body["kind"] == "APIGroup" and body["name"] == "apps"


async def test_core_resource_list_drives_kubectl_names(api: Api) -> None:
    code, body = await api.call("GET", "/api/v1")
    assert code == 200 and body["groupVersion"] == "v1"
    res = {r["name"]: r for r in body["resources"]}
    assert res["services"]["shortNames"] == ["svc"] and res["services"]["categories"] == ["all"]
    assert res["services"]["singularName"] == "service" and res["services"]["namespaced"] is True
    assert "watch" in res["pods"]["verbs"] and "deletecollection" in res["pods"]["verbs"]
    assert res["pods/log"]["verbs"] == ["get"]
    assert res["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert res["nodes"]["namespaced"] is False and res["namespaces"]["shortNames"] == ["ns"]
    assert "deletecollection" not in res["namespaces"]["verbs"]


async def test_scale_subresource_is_autoscaling_v1_scale(api: Api) -> None:
    _, body = await api.call("GET", "/apis/apps/v1")
    scale = next(r for r in body["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert scale["verbs"] == ["get", "patch", "update"]
    _, body = await api.call("GET", "/apis/discovery.k8s.io/v1")
    assert [r["name"] for r in body["resources"]] == ["endpointslices"]


async def test_openapi_v2_in_json_and_protobuf_with_etag_and_304(api: Api) -> None:
    resp = await api.client.get("/openapi/v2", headers={"Accept": "application/json"})
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    doc = await resp.json()
    assert doc["swagger"] == "2.0" and "io.k8s.api.core.v1.Service" in doc["definitions"]
    etag = resp.headers["Etag"]
    assert etag.startswith('"') and len(etag) == 130  # quoted SHA-512, as kube-openapi
    # what kubectl sends (client-go's OpenAPISchema)
    resp = await api.client.get(
        "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert resp.headers["Etag"] == etag and resp.headers["Vary"] == "Accept"
    body = await resp.read()
    assert body.startswith(b"\x0a\x032.0")  # field 1 (swagger), length 3, "2.0"
    resp = await api.client.get("/openapi/v2", headers={"Accept": "application/json", "If-None-Match": etag})
    assert resp.status == 304 and await resp.read() == b""
    resp = await api.client.get("/openapi/v2", headers={"Accept": "text/html"})
    assert resp.status == 406


async def test_openapi_v3_index_and_hash_urls(api: Api) -> None:
    code, body = await api.call("GET", "/openapi/v3")
    assert code == 200
    url = body["paths"]["api/v1"]["serverRelativeURL"]
    resp = await api.client.get(url)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "public, immutable"
    assert "Expires" in resp.headers
    doc = await resp.json()
    assert "io.k8s.api.core.v1.Service" in doc["components"]["schemas"]
    assert url.endswith("?hash=" + resp.headers["Etag"].strip('"'))
    resp = await api.client.get("/openapi/v3/api/v1?hash=0123", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"] == url
    resp = await api.client.get("/openapi/v3/api/v1")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache, private"
    code, _ = await api.call("GET", "/openapi/v3/apis/nosuch.example.com/v1")
    assert code == 404


async def test_unknown_resource_group_and_version_are_404_status(api: Api) -> None:
    expected = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound",
                "details": {}, "code": 404}
    for path in ("/api/v1/namespaces/default/widgets", "/apis/apps/v2/deployments", "/apis/nope/v1",
                 "/api/v2", "/apis/apps/v1/namespaces/default/pods", "/api/v1/namespaces/default/pods/x/y",
                 "/api/v1/services/x", "/foo"):
        code, body = await api.call("GET", path)
        assert (code, body) == (404, expected), path


async def test_wrong_method_is_405(api: Api) -> None:
    code, body = await api.call("PUT", "/api/v1/namespaces/default/services")
    assert code == 405 and body["reason"] == "MethodNotAllowed"
    code, body = await api.call("POST", "/api/v1/pods", {"metadata": {"name": "x"}})
    assert code == 405
