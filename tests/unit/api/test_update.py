"""PUT: optimistic concurrency, create-on-update, server-set fields, status subresource."""

from __future__ import annotations

from api_support import POD_PATH, SVC_PATH, Api, pod, service


async def test_put_with_stale_resource_version_is_409_conflict(api: Api) -> None:
    _, svc = await api.call("POST", SVC_PATH, service("web"))
    stale = dict(svc)
    svc["metadata"]["labels"] = {"v": "2"}
    code, fresh = await api.call("PUT", SVC_PATH + "/web", svc)
    assert code == 200 and fresh["metadata"]["labels"] == {"v": "2"}
    assert int(fresh["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    stale["metadata"] = {**svc["metadata"], "resourceVersion": stale["metadata"]["resourceVersion"]}
    code, st = await api.call("PUT", SVC_PATH + "/web", stale)
    assert code == 409
    assert st["reason"] == "Conflict"
    assert st["message"] == ('Operation cannot be fulfilled on services "web": the object has been modified; '
                             "please apply your changes to the latest version and try again")


async def test_put_without_resource_version_is_unconditional_and_keeps_server_fields(api: Api) -> None:
    _, svc = await api.call("POST", SVC_PATH, service("web"))
    body = service("web", port=8080)
    code, upd = await api.call("PUT", SVC_PATH + "/web", body)
    assert code == 200
    assert upd["spec"]["ports"][0]["port"] == 8080
    assert upd["metadata"]["uid"] == svc["metadata"]["uid"]
    assert upd["metadata"]["creationTimestamp"] == svc["metadata"]["creationTimestamp"]


async def test_put_creates_a_missing_service_but_not_a_missing_pod(api: Api) -> None:
    code, svc = await api.call("PUT", SVC_PATH + "/new", service("new"))
    assert code == 201 and svc["metadata"]["uid"]
    code, st = await api.call("PUT", POD_PATH + "/ghost", pod("ghost"))
    assert code == 404 and st["message"] == 'pods "ghost" not found'


async def test_put_name_must_match_url(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    code, st = await api.call("PUT", SVC_PATH + "/web", service("other"))
    assert code == 400
    assert st["message"] == "the name of the object (other) does not match the name on the URL (web)"


async def test_main_update_ignores_status_and_status_update_ignores_spec(api: Api) -> None:
    _, p = await api.call("POST", POD_PATH, pod("p", node="n1"))
    p["status"] = {"phase": "Running"}
    p["metadata"]["labels"] = {"v": "2"}
    code, upd = await api.call("PUT", POD_PATH + "/p", p)
    assert code == 200
    assert upd["status"]["phase"] == "Pending" and upd["metadata"]["labels"] == {"v": "2"}
    upd["status"] = {"phase": "Running", "podIP": "10.244.1.5"}
    upd["spec"]["nodeName"] = "n2"
    code, st = await api.call("PUT", POD_PATH + "/p/status", upd)
    assert code == 200
    assert st["status"] == {"phase": "Running", "podIP": "10.244.1.5"} and st["spec"]["nodeName"] == "n1"
    code, got = await api.call("GET", POD_PATH + "/p/status")
    assert got == st


async def test_status_patch_touches_only_status(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("lb"))
    patch = {"status": {"loadBalancer": {"ingress": [{"ip": "172.31.5.200"}]}}, "spec": {"ports": None}}
    code, svc = await api.call("PATCH", SVC_PATH + "/lb/status", patch, ctype="application/merge-patch+json")
    assert code == 200
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "172.31.5.200"}]
    assert svc["spec"]["ports"][0]["port"] == 80


async def test_update_of_missing_namespace_content_and_namespaces_are_cluster_scoped(api: Api) -> None:
    code, ns = await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    assert code == 201 and "namespace" not in ns["metadata"]
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
