import asyncio
import json
import socket

import pytest

from podnet.images.agnhost import start_netexec, start_serve_hostname
from podnet.images.http_echo import UsageError, make_handler, parse_go_flags, parse_listen
from podnet.images.httpserve import bound_port, serve_http
from podnet.images.webserver import make_handler as web_handler


async def http_get(port: int, path: str) -> tuple[int, str, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Probe: yes\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), body, headers


async def udp_ask(port: int, msg: str) -> tuple[str, int]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            fut.set_result(data)

    tr, _ = await loop.create_datagram_endpoint(P, remote_addr=("127.0.0.1", port))
    try:
        tr.sendto(msg.encode())
        local = tr.get_extra_info("sockname")[1]
        return (await asyncio.wait_for(fut, 5)).decode(), local
    finally:
        tr.close()


@pytest.fixture
async def netexec():
    server, udp = await start_netexec(0, 0, host="127.0.0.1")
    assert udp is not None
    try:
        yield bound_port(server), int(udp.get_extra_info("sockname")[1])
    finally:
        server.close()
        udp.close()


async def test_netexec_http(netexec) -> None:
    port, _ = netexec
    status, body, _ = await http_get(port, "/hostname")
    assert (status, body) == (200, socket.gethostname())
    status, body, _ = await http_get(port, "/echo?msg=hello%20world")
    assert (status, body) == (200, "hello world")
    status, body, _ = await http_get(port, "/clientip")
    ip, _, cport = body.rpartition(":")
    assert status == 200 and ip == "127.0.0.1" and int(cport) > 0
    status, body, _ = await http_get(port, "/healthz")
    assert status == 200
    status, body, _ = await http_get(port, "/header?key=X-Probe")
    assert body == "yes"
    status, body, _ = await http_get(port, "/nope")
    assert status == 404


async def test_netexec_shell(netexec) -> None:
    port, _ = netexec
    status, body, headers = await http_get(port, "/shell?cmd=echo%20abc%3B%20echo%20def")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"output": "abc\ndef\n"}
    _, body, _ = await http_get(port, "/shell?cmd=exit%203")
    assert json.loads(body) == {"output": "", "error": "exit status 3"}


async def test_netexec_dial_http_and_udp(netexec) -> None:
    port, uport = netexec
    q = f"request=hostname&protocol=http&host=127.0.0.1&port={port}&tries=2"
    _, body, _ = await http_get(port, f"/dial?{q}")
    assert json.loads(body) == {"responses": [socket.gethostname()] * 2, "errors": []}
    _, body, _ = await http_get(port, f"/dial?request=echo%20hi&protocol=udp&host=127.0.0.1&port={uport}")
    assert json.loads(body) == {"responses": ["hi"], "errors": []}
    status, body, _ = await http_get(port, "/dial?request=x&host=127.0.0.1&port=0")
    assert status == 400


async def test_netexec_udp(netexec) -> None:
    _, uport = netexec
    assert (await udp_ask(uport, "hostname"))[0] == socket.gethostname()
    assert (await udp_ask(uport, "echo some words"))[0] == "some words"
    reply, local = await udp_ask(uport, "clientip")
    assert reply == f"127.0.0.1:{local}"
    assert (await udp_ask(uport, "bogus"))[0] == "unknown command"


async def test_netexec_udp_off() -> None:
    server, udp = await start_netexec(0, -1, host="127.0.0.1")
    try:
        assert udp is None
    finally:
        server.close()


async def test_serve_hostname_tcp_udp() -> None:
    servers = await start_serve_hostname(0, tcp=True, udp=False, http=False, host="127.0.0.1")
    tcp_port = servers[0].sockets[0].getsockname()[1]  # type: ignore[union-attr]
    udp_servers = await start_serve_hostname(0, tcp=False, udp=True, http=False, host="127.0.0.1")
    uport = udp_servers[0].get_extra_info("sockname")[1]  # type: ignore[union-attr]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
        assert (await asyncio.wait_for(reader.read(), 5)).decode() == socket.gethostname()
        writer.close()
        assert (await udp_ask(uport, "anything"))[0] == socket.gethostname()
    finally:
        for s in servers + udp_servers:
            s.close()


async def test_serve_hostname_http() -> None:
    servers = await start_serve_hostname(0, tcp=False, udp=False, http=True, host="127.0.0.1")
    try:
        port = servers[0].sockets[0].getsockname()[1]  # type: ignore[union-attr]
        assert (await http_get(port, "/whatever"))[:2] == (200, socket.gethostname())
    finally:
        servers[0].close()


async def test_serve_hostname_tcp_and_http_conflict() -> None:
    with pytest.raises(ValueError, match="--tcp and --http"):
        await start_serve_hostname(0, tcp=True, udp=False, http=True)


def test_http_echo_flags() -> None:
    assert parse_go_flags(["-text=hello world", "-listen", ":9000"], {"text", "listen"}) == {
        "text": "hello world", "listen": ":9000"}
    assert parse_go_flags(["--text=x"], {"text"}) == {"text": "x"}
    with pytest.raises(UsageError, match="flag provided but not defined: -bogus"):
        parse_go_flags(["-bogus=1"], {"text"})
    with pytest.raises(UsageError, match="flag needs an argument: -text"):
        parse_go_flags(["-text"], {"text"})
    assert parse_listen(":5678") == (None, 5678)
    assert parse_listen("127.0.0.1:80") == ("127.0.0.1", 80)
    with pytest.raises(UsageError, match="invalid -listen"):
        parse_listen("nope")


def test_http_echo_missing_text_exits_127(capsys: pytest.CaptureFixture[str]) -> None:
    from podnet.images.http_echo import main

    assert main(["-listen=:0"]) == 127
    assert "Missing -text option!" in capsys.readouterr().err


async def test_http_echo_serves_text() -> None:
    server = await serve_http(make_handler("hello from echo", 200), 0, "127.0.0.1")
    try:
        status, body, headers = await http_get(bound_port(server), "/anything")
        assert (status, body) == (200, "hello from echo\n")
        assert headers["x-app-name"] == "http-echo"
    finally:
        server.close()


@pytest.mark.parametrize("flavor,needle", [("nginx", "Welcome to nginx!"), ("httpd", "It works!"),
                                           ("hello-app", "Hello, world!")])
async def test_webserver_names_the_pod(flavor: str, needle: str) -> None:
    server = await serve_http(web_handler(flavor), 0, "127.0.0.1")
    try:
        status, body, _ = await http_get(bound_port(server), "/")
        assert status == 200 and needle in body and socket.gethostname() in body
        if flavor != "hello-app":
            assert (await http_get(bound_port(server), "/missing"))[0] == 404
    finally:
        server.close()
