"""NetworkPolicy through the API: discovery, defaulting on create, Kubernetes' 422 text, the table."""

from __future__ import annotations

from typing import Any

from api_support import Api

NP_PATH = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"


def netpol(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name}, "spec": spec}


async def test_discovery_names_networkpolicies_with_short_name(api: Api) -> None:
    code, body = await api.call("GET", "/apis/networking.k8s.io/v1")
    assert code == 200 and body["groupVersion"] == "networking.k8s.io/v1"
    res = {r["name"]: r for r in body["resources"]}
    assert res["networkpolicies"]["shortNames"] == ["netpol"]
    assert res["networkpolicies"]["kind"] == "NetworkPolicy" and res["networkpolicies"]["namespaced"] is True


async def test_create_defaults_policy_types_and_protocol(api: Api) -> None:
    body = netpol("web", podSelector={"matchLabels": {"app": "web"}},
                  ingress=[{"ports": [{"port": 80}]}], egress=[{"to": [{"podSelector": {}}]}])
    code, created = await api.call("POST", NP_PATH, body)
    assert code == 201, created
    assert created["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert created["spec"]["ingress"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    code, got = await api.call("GET", f"{NP_PATH}/web")
    assert code == 200 and got["spec"] == created["spec"]


async def test_invalid_policy_is_422_with_kubernetes_message(api: Api) -> None:
    body = netpol("bad", podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/24",
                                                                          "except": ["10.1.0.0/24"]}}]}])
    code, status = await api.call("POST", NP_PATH, body)
    assert code == 422
    assert status["message"] == (
        'NetworkPolicy.networking.k8s.io "bad" is invalid: spec.ingress[0].from[0].ipBlock.except[0]: '
        'Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`')
    code, _ = await api.call("GET", f"{NP_PATH}/bad")
    assert code == 404


async def test_table_has_name_pod_selector_age(api: Api) -> None:
    await api.call("POST", NP_PATH, netpol("all", podSelector={}))
    await api.call("POST", NP_PATH, netpol("web", podSelector={"matchLabels": {"app": "web"}}))
    code, table = await api.call("GET", NP_PATH, headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert code == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Pod-Selector", "Age"]
    rows = {r["cells"][0]: r["cells"][1] for r in table["rows"]}
    assert rows == {"all": "<none>", "web": "app=web"}


async def test_unknown_field_is_a_strict_decoding_error(api: Api) -> None:
    body = netpol("typo", podSelector={}, ingres=[{}])
    code, status = await api.call("POST", NP_PATH, body, params={"fieldValidation": "Strict"})
    assert code == 400
    assert 'unknown field "spec.ingres"' in status["message"]
