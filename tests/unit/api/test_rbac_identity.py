"""ServiceAccount tokens (TokenRequest), RBAC as kube-apiserver applies it, access reviews and
impersonation, through the API with authentication on."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from api_support import Api, make_api

ADMIN = {"Authorization": "Bearer admin-token"}
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture
async def secured() -> AsyncIterator[Api]:
    a = await make_api(tokens=("admin-token",))
    try:
        yield a
    finally:
        await a.client.close()


async def sa_token(api: Api, name: str = "bot", ns: str = "default", **spec: object) -> str:
    code, _ = await api.call(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": name}}, headers=ADMIN
    )
    assert code in (201, 409)
    code, tr = await api.call(
        "POST",
        f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        headers=ADMIN,
    )
    assert code == 201, tr
    assert tr["kind"] == "TokenRequest" and tr["status"]["expirationTimestamp"]
    return str(tr["status"]["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def grant_pod_reader(api: Api, ns: str = "default", sa: str = "bot") -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    }
    assert (await api.call("POST", f"{RBAC}/namespaces/{ns}/roles", role, headers=ADMIN))[0] == 201
    rb = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "read-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    }
    assert (await api.call("POST", f"{RBAC}/namespaces/{ns}/rolebindings", rb, headers=ADMIN))[0] == 201


async def test_deny_by_default_then_rolebinding_allows(secured: Api) -> None:
    token = await sa_token(secured)
    code, status = await secured.call("GET", "/api/v1/namespaces/default/pods", headers=bearer(token))
    assert code == 403
    assert status["message"] == (
        'pods is forbidden: User "system:serviceaccount:default:bot" cannot list '
        'resource "pods" in API group "" in the namespace "default"'
    )
    assert status["reason"] == "Forbidden"
    await grant_pod_reader(secured)
    code, body = await secured.call("GET", "/api/v1/namespaces/default/pods", headers=bearer(token))
    assert code == 200 and body["kind"] == "PodList"
    # the binding is namespaced: other namespaces and other verbs stay forbidden
    code, status = await secured.call("GET", "/api/v1/namespaces/kube-system/pods", headers=bearer(token))
    assert code == 403
    code, status = await secured.call("DELETE", "/api/v1/namespaces/default/pods/x", headers=bearer(token))
    assert status["message"] == (
        'pods "x" is forbidden: User "system:serviceaccount:default:bot" cannot delete '
        'resource "pods" in API group "" in the namespace "default"'
    )


async def test_discovery_is_open_to_authenticated_tokens(secured: Api) -> None:
    token = await sa_token(secured)
    code, body = await secured.call("GET", "/api/v1", headers=bearer(token))
    assert code == 200 and body["kind"] == "APIResourceList"
    code, _ = await secured.call("GET", "/apis", headers=bearer(token))
    assert code == 200


async def test_deleted_service_account_token_refused_at_once(secured: Api) -> None:
    token = await sa_token(secured)
    assert (await secured.call("GET", "/api", headers=bearer(token)))[0] == 200
    code, _ = await secured.call("DELETE", "/api/v1/namespaces/default/serviceaccounts/bot", headers=ADMIN)
    assert code == 200
    assert (await secured.call("GET", "/api", headers=bearer(token)))[0] == 401
    # a new ServiceAccount of the same name does not revive the old token
    await secured.call(
        "POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "bot"}}, headers=ADMIN
    )
    assert (await secured.call("GET", "/api", headers=bearer(token)))[0] == 401


async def test_tampered_token_is_401(secured: Api) -> None:
    token = await sa_token(secured)
    head, body, sig = token.split(".")
    assert (await secured.call("GET", "/api", headers=bearer(f"{head}.{body}.{sig[::-1]}")))[0] == 401


async def test_token_request_rules(secured: Api) -> None:
    await secured.call(
        "POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "bot"}}, headers=ADMIN
    )
    code, status = await secured.call(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/bot/token",
        {"spec": {"expirationSeconds": 60}},
        headers=ADMIN,
    )
    assert code == 422
    assert status["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
        "Invalid value: 60: may not specify a duration less than 10 minutes"
    )
    code, status = await secured.call(
        "POST", "/api/v1/namespaces/default/serviceaccounts/ghost/token", {"spec": {}}, headers=ADMIN
    )
    assert code == 404
    assert status["message"] == 'serviceaccounts "ghost" not found'


async def test_self_subject_access_review_answers_truthfully(secured: Api) -> None:
    token = await sa_token(secured)
    await grant_pod_reader(secured)
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

    async def can(verb: str, resource: str, ns: str = "default") -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource}},
        }
        code, out = await secured.call("POST", path, review, headers=bearer(token))
        assert code == 201, out
        return bool(out["status"]["allowed"])

    assert await can("list", "pods") is True
    assert await can("delete", "pods") is False
    assert await can("list", "secrets") is False
    assert await can("list", "pods", "kube-system") is False


async def test_impersonation_answers_for_a_service_account(secured: Api) -> None:
    await sa_token(secured)
    await grant_pod_reader(secured)
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}},
    }
    as_bot = {**ADMIN, "Impersonate-User": "system:serviceaccount:default:bot"}
    code, out = await secured.call(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, headers=as_bot
    )
    assert code == 201 and out["status"]["allowed"] is True
    code, status = await secured.call("GET", "/api/v1/namespaces/default/secrets", headers=as_bot)
    assert code == 403
    assert status["message"].startswith(
        'secrets is forbidden: User "system:serviceaccount:default:bot" cannot list resource "secrets"'
    )
    # the admin itself stays cluster-admin
    code, out = await secured.call(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {"spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}},
        headers=ADMIN,
    )
    assert out["status"]["allowed"] is True
    code, out = await secured.call(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, headers=as_bot
    )
    assert out["status"]["userInfo"]["username"] == "system:serviceaccount:default:bot"
    assert "system:serviceaccounts:default" in out["status"]["userInfo"]["groups"]


async def test_cluster_role_binding_and_subject_access_review(secured: Api) -> None:
    await sa_token(secured)
    crb = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "bot-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
    }
    assert (await secured.call("POST", f"{RBAC}/clusterrolebindings", crb, headers=ADMIN))[0] == 201
    sar = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "system:serviceaccount:default:bot",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": {
                "namespace": "kube-system",
                "verb": "watch",
                "group": "apps",
                "resource": "deployments",
            },
        },
    }
    code, out = await secured.call(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar, headers=ADMIN
    )
    assert code == 201 and out["status"]["allowed"] is True
    sar["spec"]["resourceAttributes"]["verb"] = "delete"  # type: ignore[index]
    code, out = await secured.call(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar, headers=ADMIN
    )
    assert out["status"]["allowed"] is False
    # view does not read Secrets
    sar["spec"]["resourceAttributes"] = {"verb": "get", "resource": "secrets", "namespace": "default"}  # type: ignore[index]
    code, out = await secured.call(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar, headers=ADMIN
    )
    assert out["status"]["allowed"] is False


async def test_bootstrap_cluster_roles_exist(secured: Api) -> None:
    _, body = await secured.call("GET", f"{RBAC}/clusterroles", headers=ADMIN)
    names = {i["metadata"]["name"] for i in body["items"]}
    assert {"cluster-admin", "admin", "edit", "view", "system:discovery"} <= names


async def test_service_account_token_secret_is_filled_and_revoked_with_it(secured: Api) -> None:
    await sa_token(secured)  # makes ServiceAccount bot
    annotations = {"kubernetes.io/service-account.name": "bot"}
    body = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "bot-token", "annotations": annotations}}
    code, secret = await secured.call("POST", "/api/v1/namespaces/default/secrets", body, headers=ADMIN)
    assert code == 201
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"]
    assert base64.b64decode(secret["data"]["namespace"]).decode() == "default"
    token = base64.b64decode(secret["data"]["token"]).decode()
    await grant_pod_reader(secured)
    assert (await secured.call("GET", "/api/v1/namespaces/default/pods", headers=bearer(token)))[0] == 200
    code, _ = await secured.call("DELETE", "/api/v1/namespaces/default/secrets/bot-token", headers=ADMIN)
    assert code == 200
    assert (await secured.call("GET", "/api/v1/namespaces/default/pods", headers=bearer(token)))[0] == 401
    ghost = {"kubernetes.io/service-account.name": "ghost"}
    body["metadata"] = {"name": "nobody-token", "annotations": ghost}
    code, secret = await secured.call("POST", "/api/v1/namespaces/default/secrets", body, headers=ADMIN)
    assert code == 201 and "token" not in (secret.get("data") or {})
