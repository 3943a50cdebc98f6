"""POST / GET / LIST: server-set metadata, namespaces, selectors, paging, decode errors."""

from __future__ import annotations

import json

from api_support import POD_PATH, SVC_PATH, Api, pod, service


async def test_create_sets_server_metadata_and_get_returns_it(api: Api) -> None:
    code, created = await api.call("POST", SVC_PATH, service("web"))
    assert code == 201
    meta = created["metadata"]
    assert meta["namespace"] == "default" and len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z") and meta["resourceVersion"].isdigit()
    assert created["kind"] == "Service" and created["apiVersion"] == "v1"
    code, got = await api.call("GET", SVC_PATH + "/web")
    assert code == 200 and got == created
    stored = await api.store.get("services", "default", "web")
    assert stored["metadata"]["uid"] == meta["uid"]


async def test_create_ignores_client_uid_and_status(api: Api) -> None:
    body = pod("p1", status={"phase": "Running", "podIP": "10.244.0.9"})
    body["metadata"]["uid"] = "client-chosen"
    code, created = await api.call("POST", POD_PATH, body)
    assert code == 201
    assert created["metadata"]["uid"] != "client-chosen"
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


async def test_generate_name_appends_five_characters(api: Api) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "web-"}
    code, created = await api.call("POST", POD_PATH, body)
    assert code == 201
    name = created["metadata"]["name"]
    assert name.startswith("web-") and len(name) == 9


async def test_deployment_generation_starts_at_one_and_counts_spec_changes(api: Api) -> None:
    from api_support import DEPLOY_PATH, deployment

    _, d = await api.call("POST", DEPLOY_PATH, deployment("gen"))
    assert d["metadata"]["generation"] == 1
    _, d = await api.call("PATCH", DEPLOY_PATH + "/gen", {"metadata": {"labels": {"x": "y"}}},
                          ctype="application/merge-patch+json")
    assert d["metadata"]["generation"] == 1
    _, d = await api.call("PATCH", DEPLOY_PATH + "/gen", {"spec": {"replicas": 4}},
                          ctype="application/merge-patch+json")
    assert d["metadata"]["generation"] == 2
    _, d = await api.call("PUT", DEPLOY_PATH + "/gen/status", {**d, "status": {"replicas": 4}})
    assert d["metadata"]["generation"] == 2 and d["status"] == {"replicas": 4}


async def test_already_exists_is_409_with_kubernetes_text(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("dup"))
    code, body = await api.call("POST", SVC_PATH, service("dup"))
    assert code == 409
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'services "dup" already exists', "reason": "AlreadyExists",
                    "details": {"name": "dup", "kind": "services"}, "code": 409}


async def test_missing_namespace_is_404_namespaces_not_found(api: Api) -> None:
    code, body = await api.call("POST", "/api/v1/namespaces/ghost/services", service("a"))
    assert code == 404
    assert body["message"] == 'namespaces "ghost" not found'
    assert body["details"] == {"name": "ghost", "kind": "namespaces"}


async def test_namespace_mismatch_and_kind_mismatch_are_400(api: Api) -> None:
    body = service("a")
    body["metadata"]["namespace"] = "kube-system"
    code, st = await api.call("POST", SVC_PATH, body)
    assert (code, st["reason"]) == (400, "BadRequest")
    assert st["message"] == ("the namespace of the provided object does not match the namespace sent on "
                             "the request")
    code, st = await api.call("POST", SVC_PATH, {**service("a"), "apiVersion": "apps/v1"})
    assert code == 400
    assert st["message"] == ("the API version in the data (apps/v1) does not match the expected API "
                             "version (v1)")
    code, st = await api.call("POST", SVC_PATH, {**service("a"), "kind": "Pod"})
    assert code == 400 and "cannot be handled as a Service" in st["message"]


async def test_malformed_json_is_400_with_a_message(api: Api) -> None:
    code, st = await api.call("POST", SVC_PATH, b'{"metadata": {"name": ')
    assert code == 400 and st["reason"] == "BadRequest"
    assert st["message"].startswith("couldn't get version/kind; json parse error: ")
    code, st = await api.call("POST", SVC_PATH, b"[1, 2]")
    assert code == 400 and "cannot unmarshal array into Go value" in st["message"]


async def test_yaml_body_is_accepted(api: Api) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: b\n"
    code, body = await api.call("POST", "/api/v1/namespaces/default/configmaps", text,
                                ctype="application/yaml")
    assert code == 201 and body["data"] == {"a": "b"}


async def test_body_over_3_mib_is_413(api: Api) -> None:
    big = json.dumps({**service("huge"), "pad": "x" * (3 * 1024 * 1024 + 10)})
    code, st = await api.call("POST", SVC_PATH, big)
    assert code == 413
    assert st["reason"] == "RequestEntityTooLarge"
    assert st["message"] == "Request entity too large: limit is 3145728"


async def test_get_missing_is_404_status(api: Api) -> None:
    code, st = await api.call("GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    assert code == 404
    assert st["message"] == 'deployments.apps "nope" not found'
    assert st["details"] == {"name": "nope", "kind": "deployments", "group": "apps"}


async def test_list_shape_and_label_and_field_selectors(api: Api) -> None:
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        body = pod(name, labels={"tier": tier})
        if name == "b":
            body["spec"]["nodeName"] = "node-1"
        await api.call("POST", POD_PATH, body)
    code, lst = await api.call("GET", POD_PATH)
    assert code == 200 and lst["kind"] == "PodList" and lst["apiVersion"] == "v1"
    assert lst["metadata"]["resourceVersion"] == str(await api.store.current_rv())
    assert [p["metadata"]["name"] for p in lst["items"]] == ["a", "b", "c"]
    _, lst = await api.call("GET", POD_PATH, params={"labelSelector": "tier=web"})
    assert [p["metadata"]["name"] for p in lst["items"]] == ["a", "b"]
    _, lst = await api.call("GET", POD_PATH, params={"labelSelector": "tier in (db),tier!=web"})
    assert [p["metadata"]["name"] for p in lst["items"]] == ["c"]
    _, lst = await api.call("GET", POD_PATH, params={"fieldSelector": "spec.nodeName=node-1"})
    assert [p["metadata"]["name"] for p in lst["items"]] == ["b"]
    _, lst = await api.call("GET", POD_PATH, params={"fieldSelector": "metadata.name=c,status.phase=Pending"})
    assert [p["metadata"]["name"] for p in lst["items"]] == ["c"]
    _, lst = await api.call("GET", POD_PATH, params={"fieldSelector": "metadata.name=zzz"})
    assert lst["items"] == []


async def test_unsupported_field_label_is_400(api: Api) -> None:
    code, st = await api.call("GET", SVC_PATH, params={"fieldSelector": "spec.foo=bar"})
    assert code == 400
    assert st["message"] == ('Unable to find "/v1, Resource=services" that match label selector "", '
                             'field selector "spec.foo=bar": field label not supported: spec.foo')


async def test_events_field_selectors_for_kubectl_describe(api: Api) -> None:
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
          "involvedObject": {"kind": "Service", "name": "web", "namespace": "default", "uid": "u1"},
          "reason": "Created", "message": "hi", "type": "Normal"}
    code, _ = await api.call("POST", "/api/v1/namespaces/default/events", ev)
    assert code == 201
    sel = ("involvedObject.kind=Service,involvedObject.name=web,involvedObject.namespace=default,"
           "involvedObject.uid=u1")
    _, lst = await api.call("GET", "/api/v1/namespaces/default/events", params={"fieldSelector": sel})
    assert [e["metadata"]["name"] for e in lst["items"]] == ["web.1"]
    _, lst = await api.call("GET", "/api/v1/namespaces/default/events",
                            params={"fieldSelector": "involvedObject.name=other"})
    assert lst["items"] == []


async def test_all_namespaces_list(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("one"))
    await api.call("POST", "/api/v1/namespaces/kube-system/services", service("two"))
    _, lst = await api.call("GET", "/api/v1/services")
    assert [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in lst["items"]] == [
        ("default", "one"), ("kube-system", "two")]


async def test_limit_and_continue_page_through_everything(api: Api) -> None:
    for i in range(5):
        await api.call("POST", SVC_PATH, service(f"s{i}"))
    seen: list[str] = []
    cont = ""
    pages = 0
    while True:
        params = {"limit": "2"}
        if cont:
            params["continue"] = cont
        _, lst = await api.call("GET", SVC_PATH, params=params)
        pages += 1
        seen += [s["metadata"]["name"] for s in lst["items"]]
        cont = lst["metadata"].get("continue", "")
        if not cont:
            break
        assert lst["metadata"]["remainingItemCount"] == 5 - len(seen)
    assert seen == ["s0", "s1", "s2", "s3", "s4"] and pages == 3
    code, st = await api.call("GET", SVC_PATH, params={"continue": "!!!"})
    assert code == 400 and st["message"].startswith("continue key is not valid")


async def test_bootstrap_namespaces_exist(api: Api) -> None:
    _, lst = await api.call("GET", "/api/v1/namespaces")
    names = [n["metadata"]["name"] for n in lst["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert all(n["status"]["phase"] == "Active" for n in lst["items"])
    await api.server.bootstrap()  # idempotent
    _, lst = await api.call("GET", "/api/v1/namespaces")
    assert len(lst["items"]) == 4


async def test_dry_run_create_does_not_store(api: Api) -> None:
    code, body = await api.call("POST", SVC_PATH, service("dry"), params={"dryRun": "All"})
    assert code == 201 and body["metadata"]["name"] == "dry"
    code, _ = await api.call("GET", SVC_PATH + "/dry")
    assert code == 404


async def test_a_continue_token_older_than_the_history_is_410_with_a_token_to_go_on() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from podnet.api.server import APIServer
    from podnet.store.memory import MemoryStore

    store = MemoryStore(history=5)
    server = APIServer(store)
    await server.bootstrap()
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    try:
        for i in range(6):
            await client.post(SVC_PATH, json=service(f"s{i:02d}"))
        first = await (await client.get(SVC_PATH, params={"limit": "2"})).json()
        assert [o["metadata"]["name"] for o in first["items"]] == ["s00", "s01"]
        token = first["metadata"]["continue"]
        fresh = await (await client.get(SVC_PATH, params={"limit": "2", "continue": token})).json()
        assert [o["metadata"]["name"] for o in fresh["items"]] == ["s02", "s03"]  # still in the history
        for i in range(6, 12):  # the history window (5 events) moves past the first page's version
            await client.post(SVC_PATH, json=service(f"s{i:02d}"))
        resp = await client.get(SVC_PATH, params={"limit": "2", "continue": token})
        assert resp.status == 410
        st = await resp.json()
        # apiserver pkg/storage/etcd3/errors.go: inconsistentContinue, with a token for the latest version
        assert (st["reason"], st["code"]) == ("Expired", 410)
        assert st["message"] == (
            "The provided continue parameter is too old to display a consistent list result. You can start "
            "a new list without the continue parameter, or use the continue token in this response to "
            "retrieve the remainder of the results. Continuing with the provided token results in an "
            "inconsistent list - objects that were created, modified, or deleted between the time the first "
            "chunk was returned and now may show up in the list.")
        rest = await (await client.get(SVC_PATH, params={"continue": st["metadata"]["continue"]})).json()
        assert [o["metadata"]["name"] for o in rest["items"]] == [f"s{i:02d}" for i in range(2, 12)]
    finally:
        await client.close()
