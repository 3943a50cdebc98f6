"""pods/portforward over a plain SPDY/3.1 upgrade (kubectl with KUBECTL_PORT_FORWARD_WEBSOCKETS=false),
against a fake node agent's /portForward: port 7 echoes until the client half-closes, port 9 refuses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from api_support import POD_PATH, Api, pod
from spdy_client import upgrade

REFUSED = ("failed to connect to localhost:9 inside namespace: "
           "dial tcp4 127.0.0.1:9: connect: connection refused")


@pytest.fixture
async def agent_port() -> AsyncIterator[int]:
    async def forward(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query["port"] == "9":
            await ws.send_str(json.dumps({"error": REFUSED}))
        else:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                else:  # {"shutdown": "write"}: the client is done; everything it sent went back
                    break
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/portForward/{ns}/{pod}", forward)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    try:
        yield server.port
    finally:
        await server.close()


async def _running_pod(api: Api, agent_port: int) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": agent_port}}}}
    assert (await api.call("POST", "/api/v1/nodes", node))[0] == 201
    assert (await api.call("POST", POD_PATH, pod("web", node="node-1")))[0] == 201
    code, _ = await api.call("PATCH", POD_PATH + "/web/status",
                             {"status": {"phase": "Running", "hostIP": "127.0.0.1"}},
                             ctype="application/merge-patch+json")
    assert code == 200


async def test_plain_spdy_port_forward_pairs_streams_and_reports_refusals(api: Api, agent_port: int) -> None:
    await _running_pod(api, agent_port)
    assert api.client.port is not None
    answer, c = await upgrade(api.client.port, POD_PATH + "/web/portforward", [], "portforward.k8s.io")
    assert c is not None
    assert (answer.status, answer.headers["Upgrade"], answer.headers["X-Stream-Protocol-Version"]) == (
        101, "SPDY/3.1", "portforward.k8s.io")
    # two forwarded connections at once, as kubectl opens them: an error and a data stream each
    err0 = c.open_stream({"streamType": "error", "port": "7", "requestID": "0"})
    err1 = c.open_stream({"streamType": "error", "port": "9", "requestID": "1"})
    data0 = c.open_stream({"streamType": "data", "port": "7", "requestID": "0"})
    data1 = c.open_stream({"streamType": "data", "port": "9", "requestID": "1"})
    big = bytes(range(256)) * 1024
    c.send(data0, b"hello ")
    c.send(data0, big, fin=True)
    await c.until(lambda: {data0, err0, data1, err1} <= c.fin)
    assert c.data[data0] == b"hello " + big
    assert c.data.get(err0, b"") == b""
    assert c.data.get(data1, b"") == b""
    assert c.data[err1] == REFUSED.encode()
    # an old client without requestID: the error stream N pairs with the data stream N+2
    err2 = c.open_stream({"streamType": "error", "port": "7"})
    data2 = c.open_stream({"streamType": "data", "port": "7"})
    c.send(data2, b"no request id", fin=True)
    await c.until(lambda: {data2, err2} <= c.fin)
    assert c.data[data2] == b"no request id"
    await c.close()


async def test_plain_spdy_port_forward_handshake_refusals(api: Api, agent_port: int) -> None:
    await _running_pod(api, agent_port)
    assert api.client.port is not None
    answer, c = await upgrade(api.client.port, POD_PATH + "/web/portforward", [], "portforward.k8s.io/v9")
    assert c is None and answer.status == 403
    assert answer.headers.getall("X-Accepted-Stream-Protocol-Versions") == ["portforward.k8s.io"]
    assert answer.json()["message"] == ("unable to upgrade: unable to negotiate protocol: client supports "
                                        "[portforward.k8s.io/v9], server accepts [portforward.k8s.io]")
    answer, c = await upgrade(api.client.port, POD_PATH + "/nope/portforward", [], "portforward.k8s.io")
    assert c is None
    assert (answer.status, answer.json()["message"]) == (404, 'pods "nope" not found')
    resp = await api.client.post(POD_PATH + "/web/portforward")
    assert resp.status == 400
    assert (await resp.json())["message"] == (
        "pods/portforward needs a connection upgrade: WebSocket (Sec-WebSocket-Protocol "
        "SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io) or SPDY/3.1 (X-Stream-Protocol-Version "
        "portforward.k8s.io)")
