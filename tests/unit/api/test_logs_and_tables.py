"""pods/log proxying to a (fake) kubelet endpoint; Table responses; validation errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from api_support import POD_PATH, SVC_PATH, Api, pod, service

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io")


@pytest.fixture
async def kubelet() -> AsyncIterator[tuple[TestServer, list[str]]]:
    """A fake node agent on 127.0.0.1 answering /containerLogs like a kubelet."""
    seen: list[str] = []

    async def logs(request: web.Request) -> web.StreamResponse:
        seen.append(str(request.rel_url))
        m = request.match_info
        if m["container"] == "broken":
            return web.Response(status=404, text=f'container "{m["container"]}" not found')
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        for i in range(3):
            await resp.write(f"{m['ns']}/{m['pod']}/{m['container']} line {i}\n".encode())
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/containerLogs/{ns}/{pod}/{container}", logs)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server, seen
    finally:
        await server.close()


async def _running_pod(api: Api, name: str, port: int, containers: list[str]) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    code, _ = await api.call("POST", "/api/v1/nodes", node)
    assert code in (201, 409)
    body = pod(name, node="node-1")
    body["spec"]["containers"] = [{"name": c, "image": "busybox"} for c in containers]
    await api.call("POST", POD_PATH, body)
    status = {"phase": "Running", "hostIP": "127.0.0.1",
              "containerStatuses": [{"name": c, "image": "busybox", "imageID": "", "ready": True,
                                     "restartCount": 0, "state": {"running": {}}} for c in containers]}
    code, _ = await api.call("PATCH", POD_PATH + f"/{name}/status", {"status": status},
                             ctype="application/merge-patch+json")
    assert code == 200


async def test_logs_are_streamed_from_the_node_agent(api: Api, kubelet: tuple[TestServer, list[str]]) -> None:
    server, seen = kubelet
    await _running_pod(api, "p", server.port or 0, ["main"])
    resp = await api.client.get(POD_PATH + "/p/log", params={"tailLines": "3", "follow": "true"})
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert await resp.text() == "".join(f"default/p/main line {i}\n" for i in range(3))
    assert seen == ["/containerLogs/default/p/main?follow=true&tailLines=3"]


async def test_log_container_choice_and_kubelet_errors(api: Api,
                                                      kubelet: tuple[TestServer, list[str]]) -> None:
    server, _ = kubelet
    await _running_pod(api, "two", server.port or 0, ["a", "broken"])
    code, st = await api.call("GET", POD_PATH + "/two/log")
    assert code == 400
    assert st["message"] == "a container name must be specified for pod two, choose one of: [a broken]"
    code, st = await api.call("GET", POD_PATH + "/two/log", params={"container": "zzz"})
    assert code == 400 and st["message"] == "container zzz is not valid for pod two"
    code, st = await api.call("GET", POD_PATH + "/two/log", params={"container": "broken"})
    assert code == 404 and st["message"] == 'container "broken" not found'
    code, text = await api.call("GET", POD_PATH + "/two/log", params={"container": "a"})
    assert code == 200 and text.startswith("default/two/a line 0")


async def test_logs_of_a_pod_without_a_node_say_it_is_waiting(api: Api) -> None:
    await api.call("POST", POD_PATH, pod("pending"))
    code, st = await api.call("GET", POD_PATH + "/pending/log")
    assert code == 400 and st["reason"] == "BadRequest"
    assert st["message"] == 'container "main" in pod "pending" is waiting to start: ContainerCreating'


async def test_list_as_table_has_rows_with_object_metadata(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    code, table = await api.call("GET", SVC_PATH, headers={"Accept": TABLE_ACCEPT})
    assert code == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"]["resourceVersion"] == str(await api.store.current_rv())
    assert table["columnDefinitions"][0]["name"] == "Name"
    row = table["rows"][0]
    assert row["cells"][0] == "web"
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == "default"
    code, one = await api.call("GET", SVC_PATH + "/web", headers={"Accept": TABLE_ACCEPT})
    assert one["kind"] == "Table" and len(one["rows"]) == 1
    code, plain = await api.call("GET", SVC_PATH)
    assert plain["kind"] == "ServiceList"


async def test_invalid_service_is_422_with_all_causes(api: Api) -> None:
    code, st = await api.call("POST", SVC_PATH, service("myapp-service", port=0))
    assert code == 422
    assert st["reason"] == "Invalid"
    assert st["message"].startswith('Service "myapp-service" is invalid: ')
    assert "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive" in st["message"]
    causes = st["details"]["causes"]
    assert {"reason": "FieldValueInvalid", "field": "spec.ports[0].port",
            "message": "Invalid value: 0: must be between 1 and 65535, inclusive"} in causes
    assert st["details"]["name"] == "myapp-service" and st["details"]["kind"] == "Service"
    code, _ = await api.call("GET", SVC_PATH + "/myapp-service")
    assert code == 404


async def test_missing_name_is_422(api: Api) -> None:
    body = service("x")
    del body["metadata"]["name"]
    code, st = await api.call("POST", SVC_PATH, body)
    assert code == 422
    assert "metadata.name: Required value: name or generateName is required" in st["message"]
