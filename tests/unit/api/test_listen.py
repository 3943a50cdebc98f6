"""The API's listeners (issue 19 item 7): plain HTTP on the TLS port, long headers, unparsable requests."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from podnet.api.server import APIServer
from podnet.core.tls import ensure_ca_and_cert, server_ssl_context
from podnet.store.memory import MemoryStore

TOKEN = "listen-test-token"


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[int, ssl.SSLContext, str]]:
    ca, crt, key = ensure_ca_and_cert(tmp_path / "tls", ["127.0.0.1"])
    server = APIServer(MemoryStore(), tokens=[TOKEN])
    await server.bootstrap()
    sock = str(tmp_path / "api.sock")
    port = await server.start("127.0.0.1", 0, unix_path=sock, ssl_context=server_ssl_context(crt, key))
    client_ctx = ssl.create_default_context(cafile=str(ca))
    try:
        yield port, client_ctx, sock
    finally:
        await server.stop()


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def test_plain_http_to_the_tls_port_gets_gos_400(tls_server: tuple[int, ssl.SSLContext, str]) -> None:
    port, _, _ = tls_server
    # Go net/http server.go: "Client sent an HTTP request to an HTTPS server.\n" after HTTP/1.0 400
    answer = await _raw(port, b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer == b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    assert await _raw(port, b"\x00\x01garbage") == b""  # neither TLS nor HTTP: closed


async def test_tls_and_the_unix_socket_still_serve(tls_server: tuple[int, ssl.SSLContext, str]) -> None:
    port, ctx, sock = tls_server
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"https://127.0.0.1:{port}/api/v1/namespaces/default"
    async with aiohttp.ClientSession(headers=headers) as s, s.get(url, ssl=ctx) as r:
        assert r.status == 200 and (await r.json())["metadata"]["name"] == "default"
    unix = aiohttp.UnixConnector(path=sock)
    async with aiohttp.ClientSession(connector=unix, headers=headers) as s, \
            s.get("http://localhost/api/v1/namespaces/default") as r:
        assert r.status == 200


async def test_long_headers_are_served_and_too_long_ones_get_a_status(
        tls_server: tuple[int, ssl.SSLContext, str]) -> None:
    port, ctx, _ = tls_server
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        # Go's limit is 1 MiB of headers; aiohttp's own default (8 KiB a line) answered these with text
        async with s.get(f"https://127.0.0.1:{port}/api/v1/namespaces/default", ssl=ctx,
                         headers={"X-Long": "a" * 20_000}) as r:
            assert r.status == 200
        async with s.get(f"https://127.0.0.1:{port}/api/v1/namespaces/default", ssl=ctx,
                         headers={"X-Long": "a" * (1 << 20) + "b"}) as r:
            assert r.status == 400 and r.content_type == "application/json"
            st = json.loads(await r.read())
            assert st["kind"] == "Status" and st["reason"] == "BadRequest" and st["code"] == 400
            assert st["message"] == ("Request Header Fields Too Large: a request line or header may take "
                                     "at most 1048576 bytes")


async def test_requests_are_logged_at_debug_level_only(tls_server: tuple[int, ssl.SSLContext, str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    port, ctx, _ = tls_server
    url = f"https://127.0.0.1:{port}/api/v1/namespaces/default"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with caplog.at_level(logging.INFO):
        async with aiohttp.ClientSession(headers=headers) as s, s.get(url, ssl=ctx) as r:
            assert r.status == 200
    assert not [r for r in caplog.records if "/api/v1/namespaces/default" in r.getMessage()]
    with caplog.at_level(logging.DEBUG, logger="podnet.api.server"):
        async with aiohttp.ClientSession(headers=headers) as s, s.get(url, ssl=ctx) as r:
            assert r.status == 200
    assert [r for r in caplog.records if r.levelno == logging.DEBUG
            and r.getMessage().startswith("GET /api/v1/namespaces/default 200 ")]
