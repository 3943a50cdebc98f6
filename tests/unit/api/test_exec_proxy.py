"""pods/exec and pods/attach: the API server's WebSocket proxied to a (fake) node agent speaking
channel.k8s.io."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from api_support import POD_PATH, Api, make_api, pod
from spdy_client import SpdyClient, upgrade

STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
SUCCESS = {"metadata": {}, "status": "Success"}
EXIT_3 = {"metadata": {}, "status": "Failure",
          "message": "command terminated with non-zero exit code: exit status 3", "reason": "NonZeroExitCode",
          "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@dataclass
class FakeAgent:
    server: TestServer
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port


@pytest.fixture
async def agent() -> AsyncIterator[FakeAgent]:
    """A node agent's /exec on 127.0.0.1: `echo ARGS` prints, `fail` prints to stderr and exits 3,
    `cat` echoes stdin until stdin is closed, `sizes` prints each resize message until stdin is closed,
    `vanish` closes without an exit status."""
    fake: FakeAgent

    async def exec_(request: web.Request) -> web.StreamResponse:
        m, q = request.match_info, request.query
        cmd = q.getall("command", [])
        fake.requests.append({"path": f"{m['ns']}/{m['pod']}/{m['container']}", "command": cmd,
                              "flags": {f: q.get(f) for f in ("stdin", "stdout", "stderr", "tty")}})
        if m["container"] == "sidecar":
            raise web.HTTPBadRequest(text=f'container "sidecar" in pod "{m["pod"]}" is not running')
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        fake.requests[-1]["protocol"] = ws.ws_protocol
        if cmd[0] == "echo":
            await ws.send_bytes(bytes([STDOUT]) + " ".join(cmd[1:]).encode() + b"\n")
            await ws.send_bytes(bytes([STATUS]) + json.dumps(SUCCESS).encode())
        elif cmd[0] == "fail":
            await ws.send_bytes(bytes([STDERR]) + b"oops\n")
            await ws.send_bytes(bytes([STATUS]) + json.dumps(EXIT_3).encode())
        elif cmd[0] == "cat":
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                if msg.data[0] == STDIN:
                    await ws.send_bytes(bytes([STDOUT]) + msg.data[1:])
                elif msg.data[0] == CLOSE and msg.data[1:] == bytes([STDIN]):
                    break
            await ws.send_bytes(bytes([STATUS]) + json.dumps(SUCCESS).encode())
        elif cmd[0] == "sizes":  # prints each terminal resize it gets; ends with stdin
            async for msg in ws:
                if msg.data[0] == RESIZE:
                    await ws.send_bytes(bytes([STDOUT]) + msg.data[1:] + b"\n")
                elif msg.data[0] == CLOSE:
                    break
            await ws.send_bytes(bytes([STATUS]) + json.dumps(SUCCESS).encode())
        await ws.close()
        return ws

    async def attach(request: web.Request) -> web.StreamResponse:
        """A console that echoes what is typed, prefixed, until stdin is closed."""
        m, q = request.match_info, request.query
        fake.requests.append({"attach": f"{m['ns']}/{m['pod']}/{m['container']}", "query": sorted(q.items())})
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        async for msg in ws:
            if msg.data[0] == STDIN:
                await ws.send_bytes(bytes([STDOUT]) + b"console got " + msg.data[1:])
            elif msg.data[0] == CLOSE:
                break
        await ws.send_bytes(bytes([STATUS]) + json.dumps(SUCCESS).encode())
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_route("*", "/exec/{ns}/{pod}/{container}", exec_)
    app.router.add_route("*", "/attach/{ns}/{pod}/{container}", attach)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake = FakeAgent(server)
    try:
        yield fake
    finally:
        await server.close()


async def _running_pod(api: Api, name: str, port: int, containers: list[str],
                       annotations: dict[str, str] | None = None) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    code, _ = await api.call("POST", "/api/v1/nodes", node)
    assert code in (201, 409)
    body = pod(name, node="node-1")
    body["spec"]["containers"] = [{"name": c, "image": "busybox"} for c in containers]
    if annotations:
        body["metadata"]["annotations"] = annotations
    code, _ = await api.call("POST", POD_PATH, body)
    assert code == 201
    status = {"phase": "Running", "hostIP": "127.0.0.1"}
    code, _ = await api.call("PATCH", POD_PATH + f"/{name}/status", {"status": status},
                             ctype="application/merge-patch+json")
    assert code == 200


def _query(*command: str, container: str = "", stdin: bool = False) -> list[tuple[str, str]]:
    q = [("command", c) for c in command]
    if container:
        q.append(("container", container))
    return [*q, ("stdin", "true" if stdin else "false"), ("stdout", "true"), ("stderr", "true"),
            ("tty", "false")]


async def _session(api: Api, name: str, query: list[tuple[str, str]],
                   protocols: tuple[str, ...] = ("v5.channel.k8s.io", "v4.channel.k8s.io"),
                   stdin: bytes | None = None) -> tuple[str | None, dict[int, bytes], list[Any]]:
    """Run one exec as kubectl does: (negotiated protocol, bytes per channel, status objects)."""
    out: dict[int, bytes] = {}
    statuses: list[Any] = []
    async with api.client.ws_connect(POD_PATH + f"/{name}/exec", params=query, protocols=protocols) as ws:
        if stdin is not None:
            await ws.send_bytes(bytes([STDIN]) + stdin)
            await ws.send_bytes(bytes([CLOSE, STDIN]))
        async for msg in ws:
            assert msg.type == WSMsgType.BINARY
            ch, payload = msg.data[0], msg.data[1:]
            if ch == STATUS:
                statuses.append(json.loads(payload))
            else:
                out[ch] = out.get(ch, b"") + payload
        return ws.protocol, out, statuses


async def _refused(api: Api, name: str, query: list[tuple[str, str]], method: str = "GET",
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
    hdrs = dict(WS_HEADERS, **{"Sec-WebSocket-Protocol": "v5.channel.k8s.io"}) if headers is None else headers
    resp = await api.client.request(method, POD_PATH + f"/{name}/exec", params=query, headers=hdrs)
    return resp.status, json.loads(await resp.text())


async def test_exec_output_and_success_status_reach_the_client(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    protocol, out, statuses = await _session(api, "web", _query("echo", "hi there", container="app"))
    assert protocol == "v5.channel.k8s.io"
    assert out == {STDOUT: b"hi there\n"}
    assert statuses == [SUCCESS]
    assert agent.requests == [{"path": "default/web/app", "command": ["echo", "hi there"],
                               "protocol": "v5.channel.k8s.io",
                               "flags": {"stdin": "false", "stdout": "true", "stderr": "true",
                                         "tty": "false"}}]


async def test_nonzero_exit_status_and_stderr_pass_through_unchanged(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    _, out, statuses = await _session(api, "web", _query("fail"))
    assert out == {STDERR: b"oops\n"}
    assert statuses == [EXIT_3]


async def test_stdin_reaches_the_command_and_its_close_ends_it(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    _, out, statuses = await _session(api, "web", _query("cat", stdin=True), stdin=b"line one\nline two\n")
    assert out == {STDOUT: b"line one\nline two\n"}
    assert statuses == [SUCCESS]
    assert agent.requests[0]["flags"]["stdin"] == "true"


async def test_v4_only_client_gets_v4(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    protocol, out, _ = await _session(api, "web", _query("echo", "x"),
                                      protocols=("v4.channel.k8s.io", "v3.channel.k8s.io"))
    assert protocol == "v4.channel.k8s.io"
    assert agent.requests[0]["protocol"] == "v4.channel.k8s.io"
    assert out == {STDOUT: b"x\n"}


async def test_default_container_is_the_annotated_one_else_the_first(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "two", agent.port, ["first", "second"])
    await _running_pod(api, "ann", agent.port, ["first", "second"],
                       {"kubectl.kubernetes.io/default-container": "second"})
    await _session(api, "two", _query("echo"))
    await _session(api, "ann", _query("echo"))
    assert [r["path"] for r in agent.requests] == ["default/two/first", "default/ann/second"]


async def test_tty_drops_stderr_as_the_kubelet_does(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    q = [(k, "true" if k == "tty" else v) for k, v in _query("echo", "t")]
    await _session(api, "web", q)
    flags = agent.requests[0]["flags"]
    assert flags == {"stdin": "false", "stdout": "true", "stderr": "false", "tty": "true"}


async def test_pod_and_container_errors_are_worded_as_kubernetes_does(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    code, st = await _refused(api, "nope", _query("echo"))
    assert (code, st["reason"], st["message"]) == (404, "NotFound", 'pods "nope" not found')
    code, st = await _refused(api, "web", _query("echo", container="zzz"))
    assert (code, st["reason"]) == (400, "BadRequest")
    assert st["message"] == "container zzz is not valid for pod web"
    await api.call("POST", POD_PATH, pod("pending"))
    code, st = await _refused(api, "pending", _query("echo"))
    assert (code, st["message"]) == (400, "pod pending does not have a host assigned")
    code, st = await _refused(api, "web", _query())
    assert (code, st["message"]) == (400, "you must specify at least 1 command")
    code, st = await _refused(api, "web", [("command", "ls"), ("stdout", "false")])
    assert (code, st["message"]) == (400, "you must specify at least 1 of stdin, stdout, stderr")
    assert agent.requests == []  # none of them reached the node


async def test_agent_refusal_is_passed_on_for_websocket_and_spdy_attempts(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app", "sidecar"])
    want = (400, 'container "sidecar" in pod "web" is not running')
    code, st = await _refused(api, "web", _query("echo", container="sidecar"))
    assert (code, st["message"]) == want
    spdy = {"Upgrade": "SPDY/3.1", "Connection": "Upgrade", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
    code, st = await _refused(api, "web", _query("echo", container="sidecar"), "POST", spdy)
    assert (code, st["message"]) == want


async def test_no_upgrade_and_unknown_subprotocols_get_a_clear_400(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    code, st = await _refused(api, "web", _query("echo", "x"), "POST", {})
    assert code == 400
    assert st["message"] == ("pods/exec needs a connection upgrade: WebSocket (Sec-WebSocket-Protocol "
                             "v5.channel.k8s.io, v4.channel.k8s.io) or SPDY/3.1 (X-Stream-Protocol-Version "
                             "v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io)")
    code, st = await _refused(api, "web", _query("echo", "x"),
                              headers=dict(WS_HEADERS, **{"Sec-WebSocket-Protocol": "base64.channel.k8s.io"}))
    assert code == 400
    assert st["message"] == ('Sec-WebSocket-Protocol: Unsupported value: "base64.channel.k8s.io": '
                             'supported values: "v5.channel.k8s.io", "v4.channel.k8s.io"')
    assert [r["command"] for r in agent.requests] == [["echo", "x"]]  # only the plain probe: it ran nothing


async def test_agent_closing_without_status_is_reported_as_a_failure(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    _, out, statuses = await _session(api, "web", _query("vanish"))
    assert out == {}
    assert statuses == [{"metadata": {}, "status": "Failure", "reason": "InternalError",
                         "message": "the node agent closed the exec stream without an exit status"}]


async def test_unreachable_agent_is_an_internal_error(api: Api, agent: FakeAgent) -> None:
    port = agent.port
    await agent.server.close()
    await _running_pod(api, "web", port, ["app"])
    code, st = await _refused(api, "web", _query("echo"))
    assert code == 500 and st["reason"] == "InternalError"
    assert st["message"].startswith("error dialing backend: ") and f"127.0.0.1:{port}" in st["message"]


async def test_exec_needs_the_bearer_token(agent: FakeAgent) -> None:
    api = await make_api(tokens=("s3cret",))
    try:
        auth = {"Authorization": "Bearer s3cret"}
        node = {"metadata": {"name": "node-1"},
                "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": agent.port}}}}
        assert (await api.call("POST", "/api/v1/nodes", node, headers=auth))[0] == 201
        assert (await api.call("POST", POD_PATH, pod("web", node="node-1"), headers=auth))[0] == 201
        await api.call("PATCH", POD_PATH + "/web/status", {"status": {"hostIP": "127.0.0.1"}},
                       ctype="application/merge-patch+json", headers=auth)
        code, st = await _refused(api, "web", _query("echo", "x"))
        assert (code, st["reason"]) == (401, "Unauthorized")
        assert agent.requests == []
        async with api.client.ws_connect(POD_PATH + "/web/exec", params=_query("echo", "x"), headers=auth,
                                         protocols=("v5.channel.k8s.io",)) as ws:
            first = await ws.receive_bytes()
        assert first == bytes([STDOUT]) + b"x\n"
    finally:
        await api.client.close()


async def test_attach_goes_to_the_agents_attach_with_the_stream_flags(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app", "side"])
    query = [("container", "side"), ("stdin", "true"), ("stdout", "true"), ("stderr", "true"),
             ("tty", "true")]
    async with api.client.ws_connect(POD_PATH + "/web/attach", params=query,
                                     protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(bytes([STDIN]) + b"ls\r")
        assert await ws.receive_bytes() == bytes([STDOUT]) + b"console got ls\r"
        await ws.send_bytes(bytes([CLOSE, STDIN]))
        assert json.loads((await ws.receive_bytes())[1:]) == SUCCESS
    # no command for an attach; with a terminal there is no separate stderr (as the kubelet's options)
    assert agent.requests == [{"attach": "default/web/side", "query": [
        ("stderr", "false"), ("stdin", "true"), ("stdout", "true"), ("tty", "true")]}]


async def test_attach_errors_are_worded_as_kubernetes_does(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    flags = [("stdin", "true"), ("stdout", "true")]

    async def refused(name: str, query: list[tuple[str, str]],
                      headers: dict[str, str] | None = None) -> tuple[int, str]:
        hdrs = headers or dict(WS_HEADERS, **{"Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
        resp = await api.client.request("POST", POD_PATH + f"/{name}/attach", params=query, headers=hdrs)
        return resp.status, json.loads(await resp.text())["message"]

    assert await refused("nope", flags) == (404, 'pods "nope" not found')
    assert await refused("web", [("container", "zzz"), *flags]) == (400,
                                                                   "container zzz is not valid for pod web")
    assert await refused("web", [("tty", "true")]) == (400,
                                                       "you must specify at least 1 of stdin, stdout, stderr")
    await api.call("POST", POD_PATH, pod("pending"))
    assert await refused("pending", flags) == (400, "pod pending does not have a host assigned")
    assert agent.requests == []  # none of them reached the node
    code, message = await refused("web", flags, {"Accept": "application/json"})  # no upgrade at all
    assert code == 400 and message.startswith("pods/attach needs a connection upgrade: WebSocket")


async def test_discovery_lists_pods_attach(api: Api) -> None:
    code, doc = await api.call("GET", "/api/v1")
    assert code == 200
    attach = next(r for r in doc["resources"] if r["name"] == "pods/attach")
    assert (attach["kind"], attach["verbs"]) == ("PodAttachOptions", ["create", "get"])


async def test_exec_client_closing_early_ends_the_agent_stream(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    async with api.client.ws_connect(POD_PATH + "/web/exec", params=_query("cat", stdin=True),
                                     protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(bytes([STDIN]) + b"ping")
        assert await ws.receive_bytes() == bytes([STDOUT]) + b"ping"
    # the fake agent's `cat` loop ends when the proxy closes its side; a new exec still works
    _, out, _ = await _session(api, "web", _query("echo", "again"))
    assert out == {STDOUT: b"again\n"}



# ---- exec over plain SPDY/3.1 (kubectl with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false) ---------------------

SPDY_OFFER = "v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io"


async def _spdy(api: Api, name: str, query: list[tuple[str, str]], protocols: str | None = SPDY_OFFER,
                ) -> tuple[Any, SpdyClient | None]:
    assert api.client.port is not None
    return await upgrade(api.client.port, POD_PATH + f"/{name}/exec", query, protocols)


def _streams(c: SpdyClient, *kinds: str) -> dict[str, int]:
    """Open the streams kubectl opens, error first, as client-go's streamProtocolV4 does."""
    return {kind: c.open_stream({"streamType": kind}) for kind in kinds}


async def test_spdy_handshake_answers_101_with_the_clients_first_protocol_the_server_speaks(
        api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    answer, c = await _spdy(api, "web", _query("echo", "hi"))
    assert c is not None
    assert answer.status == 101
    assert answer.headers["Connection"] == "Upgrade" and answer.headers["Upgrade"] == "SPDY/3.1"
    # kubectl offers v5 first; like the kubelet (v4, v3, v2, channel.k8s.io over SPDY) the server picks v4
    assert answer.headers["X-Stream-Protocol-Version"] == "v4.channel.k8s.io"
    await c.close()
    answer, c = await _spdy(api, "web", _query("echo", "hi"), "v2.channel.k8s.io, v3.channel.k8s.io")
    assert (answer.status, answer.headers["X-Stream-Protocol-Version"]) == (101, "v2.channel.k8s.io")
    assert c is not None
    await c.close()


async def test_spdy_handshake_refusals_are_worded_as_kubernetes_does(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app", "sidecar"])
    answer, c = await _spdy(api, "web", _query("echo"), "v9.channel.k8s.io, base64.channel.k8s.io")
    assert c is None and answer.status == 403
    assert answer.headers.getall("X-Accepted-Stream-Protocol-Versions") == [
        "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
    assert answer.json()["message"] == (
        "unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io "
        "base64.channel.k8s.io], server accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io "
        "channel.k8s.io]")
    answer, c = await _spdy(api, "web", _query("echo"), None)
    assert c is None
    assert (answer.status, answer.json()["message"]) == (
        400, "unable to upgrade: X-Stream-Protocol-Version is required")
    # the agent's own refusal arrives as the HTTP answer, before any upgrade
    answer, c = await _spdy(api, "web", _query("echo", container="sidecar"))
    assert c is None
    assert (answer.status, answer.json()["message"]) == (
        400, 'container "sidecar" in pod "web" is not running')
    # the refused handshakes never reached the agent; the refused container started nothing
    assert {r["path"] for r in agent.requests} == {"default/web/sidecar"}
    assert all("protocol" not in r for r in agent.requests)


async def test_spdy_v4_maps_streams_and_carries_the_exit_status_json(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    _, c = await _spdy(api, "web", _query("fail"))
    assert c is not None
    ids = _streams(c, "error", "stdout", "stderr")
    await c.until(lambda: set(ids.values()) <= c.fin)  # every stream ended by the server
    assert c.replied == set(ids.values())
    assert c.data.get(ids["stdout"], b"") == b""
    assert c.data[ids["stderr"]] == b"oops\n"
    assert json.loads(c.data[ids["error"]]) == EXIT_3  # kubectl exits 3 from the ExitCode cause
    await c.wait_closed()
    assert c.goaway
    assert agent.requests[0]["protocol"] == "v5.channel.k8s.io"  # the same agent backend as WebSocket


async def test_spdy_stdin_reaches_the_command_and_its_fin_closes_it(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    _, c = await _spdy(api, "web", _query("cat", stdin=True))
    assert c is not None
    ids = _streams(c, "error", "stdin", "stdout", "stderr")
    c.send(ids["stdin"], b"hello ")
    c.send(ids["stdin"], b"world\n", fin=True)
    await c.until(lambda: ids["error"] in c.fin)
    assert c.data[ids["stdout"]] == b"hello world\n"
    assert json.loads(c.data[ids["error"]]) == SUCCESS
    assert agent.requests[0]["flags"] == {"stdin": "true", "stdout": "true", "stderr": "true", "tty": "false"}
    await c.close()


async def test_spdy_before_v4_writes_only_a_failures_message(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    for command, want in (("fail", b"command terminated with non-zero exit code: exit status 3"),
                          ("echo", b"")):
        _, c = await _spdy(api, "web", _query(command), "v3.channel.k8s.io")
        assert c is not None
        ids = _streams(c, "error", "stdout", "stderr")
        await c.until(lambda c=c, ids=ids: ids["error"] in c.fin)
        assert c.data.get(ids["error"], b"") == want
        await c.close()


async def test_spdy_tty_resize_messages_reach_the_agent_and_stderr_is_not_expected(
        api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    query = [("command", "sizes"), ("stdin", "true"), ("stdout", "true"), ("stderr", "true"), ("tty", "true")]
    _, c = await _spdy(api, "web", query)
    assert c is not None
    # with a TTY kubectl opens no stderr stream; four streams are all the server waits for
    ids = _streams(c, "error", "stdin", "stdout", "resize")
    # two TerminalSize objects as Go's json.Encoder writes them, split mid-object across frames
    c.send(ids["resize"], b'{"Width":100,"Hei')
    c.send(ids["resize"], b'ght":30}\n{"Width":120,"Height":40}\n')
    await c.until(lambda: c.data.get(ids["stdout"], b"").count(b"\n") == 2)
    c.send(ids["stdin"], b"", fin=True)
    await c.until(lambda: ids["error"] in c.fin)
    assert [json.loads(line) for line in c.data[ids["stdout"]].splitlines()] == [
        {"Width": 100, "Height": 30}, {"Width": 120, "Height": 40}]
    assert agent.requests[0]["flags"]["tty"] == "true" and agent.requests[0]["flags"]["stderr"] == "false"
    await c.close()


async def test_spdy_client_leaving_ends_the_agent_stream(api: Api, agent: FakeAgent) -> None:
    await _running_pod(api, "web", agent.port, ["app"])
    _, c = await _spdy(api, "web", _query("cat", stdin=True))
    assert c is not None
    ids = _streams(c, "error", "stdin", "stdout", "stderr")
    c.send(ids["stdin"], b"ping")
    await c.until(lambda: c.data.get(ids["stdout"]) == b"ping")
    await c.close()
    _, out, _ = await _session(api, "web", _query("echo", "again"))  # the server is free for the next one
    assert out == {STDOUT: b"again\n"}
