"""Bearer-token authentication."""

from __future__ import annotations

from api_support import make_api


async def test_requests_without_the_token_get_401_status() -> None:
    api = await make_api(tokens=("s3cret",))
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            code, body = await api.call("GET", "/api/v1/namespaces", headers=headers)
            assert code == 401
            assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
        code, body = await api.call("GET", "/api/v1/namespaces", headers={"Authorization": "Bearer s3cret"})
        assert code == 200 and body["kind"] == "NamespaceList"
    finally:
        await api.client.close()


async def test_health_and_version_are_open() -> None:
    api = await make_api(tokens=("s3cret",))
    try:
        for path in ("/healthz", "/livez", "/readyz", "/version"):
            resp = await api.client.get(path)
            assert resp.status == 200, path
        code, _ = await api.call("GET", "/api")
        assert code == 401
    finally:
        await api.client.close()
