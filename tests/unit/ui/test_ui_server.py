"""The web server: 401 without credentials, a one-time link exchanged for an HttpOnly cookie, the
cluster token as Bearer, loopback names only, and the page's API (view, trace, object YAML)."""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from podnet.ui.server import COOKIE, Auth, UIError, make_app

VIEW = {"nodes": [], "pods": [], "services": [], "counterErrors": []}


class FakeBackend:
    def __init__(self) -> None:
        self.traces: list[tuple[str, str, str]] = []

    async def view(self) -> dict[str, Any]:
        return VIEW

    async def trace(self, source: str, dest: str, proto: str) -> dict[str, Any]:
        self.traces.append((source, dest, proto))
        if dest == "bad":
            raise UIError("destination 'bad' is not an IPv4 address")
        return {"lines": ["TCP connection"], "data": {"candidates": []}}

    async def object_yaml(self, kind: str, namespace: str, name: str) -> str:
        if name == "missing":
            raise UIError(f"{kind} {namespace}/{name}: not found")
        return f"kind: {kind}\nname: {name}\n"


async def _client(backend: FakeBackend | None = None) -> tuple[TestClient[Any, Any], Auth]:
    auth = Auth("cluster-token-1")
    client: TestClient[Any, Any] = TestClient(TestServer(make_app(backend or FakeBackend(), auth),
                                                         host="127.0.0.1"))
    await client.start_server()
    return client, auth


@pytest.mark.parametrize("path", ["/", "/app.js", "/app.css", "/api/view", "/api/object?kind=pod&name=x"])
async def test_every_path_needs_a_credential(path: str) -> None:
    client, _ = await _client()
    try:
        resp = await client.get(path)
        assert resp.status == 401
        assert "open the link" in await resp.text()
        resp = await client.get(path, headers={"Authorization": "Bearer wrong"})
        assert resp.status == 401
        resp = await client.post("/api/trace", json={"source": "outside", "dest": "1.2.3.4:80"})
        assert resp.status == 401
    finally:
        await client.close()


async def test_one_time_link_gives_an_httponly_strict_cookie() -> None:
    client, auth = await _client()
    try:
        link = auth.link_token
        assert link and len(link) >= 40
        resp = await client.get(f"/?token={link}", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/"
        cookie = resp.headers["Set-Cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert link not in cookie  # the session secret is not the link
        resp = await client.get("/")  # the client's cookie jar now holds the session
        assert resp.status == 200 and "<svg" in await resp.text()
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
        resp = await client.get("/api/view")
        assert resp.status == 200 and await resp.json() == VIEW
        # the link works once only
        async with ClientSession() as other:
            r2 = await other.get(client.make_url(f"/?token={link}"), allow_redirects=False)
            assert r2.status == 401 and "already used" in await r2.text()
    finally:
        await client.close()


async def test_cluster_token_as_bearer() -> None:
    client, _ = await _client()
    try:
        resp = await client.get("/api/view", headers={"Authorization": "Bearer cluster-token-1"})
        assert resp.status == 200
    finally:
        await client.close()


async def test_other_host_names_are_refused() -> None:
    client, _ = await _client()
    try:
        resp = await client.get("/api/view", headers={"Authorization": "Bearer cluster-token-1",
                                                       "Host": "evil.example:80"})
        assert resp.status == 421
    finally:
        await client.close()


async def test_trace_and_object_api() -> None:
    backend = FakeBackend()
    client, _ = await _client(backend)
    h = {"Authorization": "Bearer cluster-token-1"}
    try:
        resp = await client.post("/api/trace", json={"source": "outside", "dest": "172.30.0.2:30008"},
                                 headers=h)
        assert resp.status == 200 and (await resp.json())["lines"] == ["TCP connection"]
        assert backend.traces == [("outside", "172.30.0.2:30008", "tcp")]
        resp = await client.post("/api/trace", json={"source": "outside", "dest": "bad"}, headers=h)
        assert resp.status == 400 and "not an IPv4 address" in (await resp.json())["error"]
        resp = await client.post("/api/trace", json={"source": "outside", "dest": "x", "proto": "icmp"},
                                 headers=h)
        assert resp.status == 400 and "must be tcp, udp or sctp" in (await resp.json())["error"]
        resp = await client.post("/api/trace", data="source=outside", headers=h)
        assert resp.status == 415
        resp = await client.get("/api/object?kind=pod&namespace=default&name=web-1", headers=h)
        assert resp.status == 200 and await resp.text() == "kind: pod\nname: web-1\n"
        resp = await client.get("/api/object?kind=secret&name=x", headers=h)
        assert resp.status == 400
        resp = await client.get("/api/object?kind=service&name=missing", headers=h)
        assert resp.status == 404 and "not found" in await resp.text()
    finally:
        await client.close()


async def test_podnet_ui_listens_on_loopback_only(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` binds 127.0.0.1 only: the same port on another address of this machine is closed."""
    from podnet.cli import cmd_ui
    from podnet.core.config import ClusterConfig

    monkeypatch.setattr(cmd_ui, "client_for", lambda c: ClientSession())
    ready = asyncio.Event()
    task = asyncio.create_task(cmd_ui.serve(ClusterConfig(name="uitest", token="t0k"), 0, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        out = capsys.readouterr().out
        m = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", out)
        assert m, out
        port, token = int(m.group(1)), m.group(2)
        assert len(token) >= 40
        async with ClientSession() as s:
            r = await s.get(f"http://127.0.0.1:{port}/api/view")
            assert r.status == 401
        for addr in ("127.0.0.2", _other_address()):
            if not addr:
                continue
            with socket.socket() as sk:
                sk.settimeout(2)
                assert sk.connect_ex((addr, port)) != 0, f"{addr}:{port} answers"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _other_address() -> str:
    """A non-loopback address of this machine (the one a default route would use), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks the source address
            addr: str = s.getsockname()[0]
        except OSError:
            return ""
    return "" if addr.startswith("127.") else addr
