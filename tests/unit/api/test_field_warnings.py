"""Server-side field validation: unknown fields warned about (default), ignored, or refused (Strict)."""

from __future__ import annotations

import json
from typing import Any

from api_support import DEPLOY_PATH, SVC_PATH, Api, deployment, service

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
APPLY = "application/apply-patch+yaml"
SELECTOR_WARNING = '299 - "unknown field \\"spec.ports[0].selector\\""'


def misplaced(name: str) -> dict[str, Any]:
    """examples/broken/misplaced-selector.yaml: `selector:` indented under the port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "ClusterIP",
            "ports": [{"port": 80, "targetPort": 8080, "selector": {"app": "myapp"}}],
        },
    }


async def send(
    api: Api,
    method: str,
    path: str,
    body: Any,
    ctype: str = "application/json",
    params: dict[str, str] | None = None,
) -> tuple[int, Any, list[str]]:
    data = body if isinstance(body, str) else json.dumps(body)
    resp = await api.client.request(method, path, data=data, headers={"Content-Type": ctype}, params=params)
    doc = json.loads(await resp.text())
    return resp.status, doc, resp.headers.getall("Warning", [])


async def stored(api: Api, name: str) -> dict[str, Any]:
    return await api.store.get("services", "default", name)


async def test_create_warns_by_default_and_stores_the_service_without_the_field(api: Api) -> None:
    code, svc, warnings = await send(api, "POST", SVC_PATH, misplaced("a"))
    assert code == 201
    assert warnings == [SELECTOR_WARNING]
    assert "selector" not in svc["spec"]["ports"][0]
    obj = await stored(api, "a")
    assert obj["spec"]["ports"][0] == {"port": 80, "targetPort": 8080, "protocol": "TCP"}
    assert "selector" not in obj["spec"]


async def test_explicit_warn_and_several_fields_give_one_header_each_in_order(api: Api) -> None:
    body = misplaced("b")
    body["spec"]["typo"] = 1
    body["bogus"] = True
    code, _, warnings = await send(api, "POST", SVC_PATH, body, params={"fieldValidation": "Warn"})
    assert code == 201
    assert warnings == [
        SELECTOR_WARNING,
        '299 - "unknown field \\"spec.typo\\""',
        '299 - "unknown field \\"bogus\\""',
    ]


async def test_ignore_stores_without_warning(api: Api) -> None:
    code, _, warnings = await send(
        api, "POST", SVC_PATH, misplaced("c"), params={"fieldValidation": "Ignore"}
    )
    assert code == 201 and warnings == []
    assert "selector" not in (await stored(api, "c"))["spec"]["ports"][0]


async def test_strict_create_is_refused_with_kubernetes_text_and_nothing_stored(api: Api) -> None:
    body = misplaced("d")
    body["spec"]["typo"] = 1
    code, st, _ = await send(api, "POST", SVC_PATH, body, params={"fieldValidation": "Strict"})
    assert code == 400 and st["reason"] == "BadRequest"
    assert st["message"] == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.ports[0].selector", unknown field "spec.typo"'
    )
    code, _ = await api.call("GET", SVC_PATH + "/d")
    assert code == 404


async def test_strict_create_of_a_clean_object_succeeds(api: Api) -> None:
    code, _, warnings = await send(api, "POST", SVC_PATH, service("e"), params={"fieldValidation": "Strict"})
    assert code == 201 and warnings == []


async def test_unsupported_field_validation_value(api: Api) -> None:
    code, st, _ = await send(api, "POST", SVC_PATH, service("f"), params={"fieldValidation": "strict"})
    assert code == 422 and st["reason"] == "Invalid"
    assert st["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
        '"strict": supported values: "", "Ignore", "Strict", "Warn"'
    )
    code, st, _ = await send(api, "PATCH", SVC_PATH + "/f", {}, ctype=MERGE, params={"fieldValidation": "x"})
    assert code == 422 and st["message"].startswith('PatchOptions.meta.k8s.io "" is invalid: fieldValidation')


async def test_deployment_paths_and_strict_message(api: Api) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    code, st, _ = await send(api, "POST", DEPLOY_PATH, body, params={"fieldValidation": "Strict"})
    assert code == 400
    assert st["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
        'error: unknown field "spec.template.spec.containers[0].imagePullPolice"'
    )
    code, dep, warnings = await send(api, "POST", DEPLOY_PATH, body)
    assert code == 201
    assert warnings == ['299 - "unknown field \\"spec.template.spec.containers[0].imagePullPolice\\""']
    assert "imagePullPolice" not in dep["spec"]["template"]["spec"]["containers"][0]


async def test_update_warns_or_refuses(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("g"))
    _, live = await api.call("GET", SVC_PATH + "/g")
    live["spec"]["ports"][0]["selector"] = {"app": "x"}
    code, st, _ = await send(api, "PUT", SVC_PATH + "/g", live, params={"fieldValidation": "Strict"})
    assert code == 400 and st["message"].endswith(
        'strict decoding error: unknown field "spec.ports[0].selector"'
    )
    code, svc, warnings = await send(api, "PUT", SVC_PATH + "/g", live)
    assert code == 200 and warnings == [SELECTOR_WARNING]
    assert "selector" not in svc["spec"]["ports"][0]
    assert svc["spec"]["selector"] == {"app": "g"}


async def test_strategic_merge_patch_as_kubectl_apply_sends_it(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("h"))
    patch = {
        "spec": {
            "$setElementOrder/ports": [{"port": 80}],
            "ports": [{"port": 80, "selector": {"app": "myapp"}}],
        }
    }
    code, svc, warnings = await send(api, "PATCH", SVC_PATH + "/h", patch, ctype=SMP)
    assert code == 200 and warnings == [SELECTOR_WARNING]
    assert "selector" not in svc["spec"]["ports"][0]
    assert "selector" not in (await stored(api, "h"))["spec"]["ports"][0]


async def test_strict_strategic_merge_patch_is_422_naming_the_patch(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("i"))
    patch = {"spec": {"ports": [{"port": 80, "selector": {"app": "myapp"}}]}}
    code, st, _ = await send(
        api, "PATCH", SVC_PATH + "/i", patch, ctype=SMP, params={"fieldValidation": "Strict"}
    )
    assert code == 422 and st["reason"] == "Invalid"
    assert st["message"] == (
        ' "" is invalid: patch: Invalid value: "map[spec:map[ports:[map[port:80 '
        'selector:map[app:myapp]]]]]": strict decoding error: unknown field '
        '"spec.ports[0].selector"'
    )
    assert st["details"]["causes"][0]["field"] == "patch"
    assert "selector" not in (await stored(api, "i"))["spec"]["ports"][0]


async def test_merge_patch_warns_and_strict_quotes_the_patched_json(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("j"))
    code, _, warnings = await send(api, "PATCH", SVC_PATH + "/j", {"spec": {"tpye": "NodePort"}}, ctype=MERGE)
    assert code == 200 and warnings == ['299 - "unknown field \\"spec.tpye\\""']
    code, st, _ = await send(
        api,
        "PATCH",
        SVC_PATH + "/j",
        {"spec": {"tpye": "NodePort"}},
        ctype=MERGE,
        params={"fieldValidation": "Strict"},
    )
    assert code == 422
    assert st["message"].startswith(' "" is invalid: patch: Invalid value: "{\\"apiVersion\\":\\"v1\\",')
    assert st["message"].endswith(': strict decoding error: unknown field "spec.tpye"')


async def test_server_side_apply_refuses_fields_outside_the_schema(api: Api) -> None:
    obj = misplaced("k")
    obj["metadata"]["namespace"] = "default"  # as kubectl apply --server-side sends it
    body = json.dumps(obj)  # JSON is YAML
    code, st, _ = await send(api, "PATCH", SVC_PATH + "/k", body, ctype=APPLY, params={"fieldManager": "t"})
    assert code == 400 and st["reason"] == "BadRequest"
    assert st["message"] == (
        "failed to create typed patch object (default/k; /v1, Kind=Service): "
        ".spec.ports[0].selector: field not declared in schema"
    )
    obj = misplaced("k")  # no namespace in the body: Kubernetes names the object's own (none)
    obj["spec"]["tpye"] = "NodePort"
    code, st, _ = await send(
        api, "PATCH", SVC_PATH + "/k", json.dumps(obj), ctype=APPLY, params={"fieldManager": "t"}
    )
    assert code == 400
    assert st["message"] == (
        "failed to create typed patch object (/k; /v1, Kind=Service): errors:\n"
        "  .spec.ports[0].selector: field not declared in schema\n"
        "  .spec.tpye: field not declared in schema"
    )
    code, _ = await api.call("GET", SVC_PATH + "/k")
    assert code == 404
    code, _, warnings = await send(
        api, "PATCH", SVC_PATH + "/k", json.dumps(service("k")), ctype=APPLY, params={"fieldManager": "t"}
    )
    assert code == 201 and warnings == []


async def test_objects_the_server_creates_have_no_unknown_fields(api: Api) -> None:
    from podnet.model.fieldcheck import unknown_fields

    await api.call("POST", SVC_PATH, service("l", type="NodePort"))
    await api.call("POST", DEPLOY_PATH, deployment("l"))
    _, svc = await api.call("GET", SVC_PATH + "/l")
    _, dep = await api.call("GET", DEPLOY_PATH + "/l")
    assert unknown_fields(svc) == [] and unknown_fields(dep) == []


async def test_a_field_stored_before_podnet_dropped_them_does_not_block_a_strict_patch(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("m"))
    live = await stored(api, "m")
    live["spec"]["ports"][0]["selector"] = {"app": "old"}  # as an older podnet stored it
    await api.store.update("services", live)
    patch = {"metadata": {"labels": {"tier": "fe"}}}
    code, svc, warnings = await send(
        api, "PATCH", SVC_PATH + "/m", patch, ctype=SMP, params={"fieldValidation": "Strict"}
    )
    assert code == 200 and warnings == []
    assert svc["metadata"]["labels"]["tier"] == "fe"
    assert "selector" not in (await stored(api, "m"))["spec"]["ports"][0]
