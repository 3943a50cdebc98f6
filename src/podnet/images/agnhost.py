"""agnhost (registry.k8s.io/e2e-test-images/agnhost): the subcommands Kubernetes network tests use.

    python -m podnet.images.agnhost netexec [--http-port=8080] [--udp-port=8081]
    python -m podnet.images.agnhost serve-hostname [--port=9376] [--tcp] [--udp] [--http=true]
    python -m podnet.images.agnhost pause
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import cast

from podnet.images.httpserve import Request, Response, serve_http, wait_forever_or_signal


def hostname() -> str:
    return socket.gethostname()


# ---- netexec ---------------------------------------------------------------

class NetexecHTTP:
    def __init__(self) -> None:
        self.exit_code: int | None = None

    async def __call__(self, req: Request) -> Response:
        p = req.path
        if p == "/":
            return Response(200, f"NOW: {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
        if p in ("/hostname", "/hostName"):
            return Response(200, hostname())
        if p == "/clientip":
            return Response(200, f"{req.peer[0]}:{req.peer[1]}")
        if p == "/echo":
            return Response(200, req.arg("msg"))
        if p == "/header":
            return Response(200, req.headers.get(req.arg("key").lower(), ""))
        if p == "/healthz":
            return Response(200, "")
        if p == "/shell":
            return await self._shell(req.arg("cmd"))
        if p == "/dial":
            return await _dial(req)
        if p == "/exit":
            return self._exit(req.arg("code", "0"))
        if p == "/redirect":
            return Response(303, "", headers={"Location": req.arg("location", "/")})
        return Response(404, "404 page not found\n")

    async def _shell(self, cmd: str) -> Response:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return Response(200, json.dumps({"output": "", "error": "timed out after 60s"}),
                            "application/json")
        result = {"output": out.decode(errors="replace")}
        if proc.returncode:
            result["error"] = f"exit status {proc.returncode}"
        return Response(200, json.dumps(result), "application/json")

    def _exit(self, code_s: str) -> Response:
        try:
            code = int(code_s)
        except ValueError:
            return Response(400, f"bad exit code: {code_s!r}\n")
        if not 0 <= code <= 127:
            return Response(400, f"bad exit code: {code} (allowed 0-127)\n")
        self.exit_code = code
        asyncio.get_running_loop().call_later(0.05, os._exit, code)
        return Response(200, "")


async def _dial(req: Request) -> Response:
    """/dial?request=hostname&protocol=http|udp|tcp&host=IP&port=N&tries=1.

    Answers {"responses": [...], "errors": [...]}.
    """
    request, host, proto = req.arg("request"), req.arg("host"), req.arg("protocol", "http")
    try:
        port, tries = int(req.arg("port")), int(req.arg("tries", "1"))
    except ValueError:
        return Response(400, "port and tries must be integers\n")
    if not host or not 1 <= port <= 65535 or not 1 <= tries <= 1000:
        return Response(400, "host, port (1-65535) and tries (1-1000) are required\n")
    responses: list[str] = []
    errors: list[str] = []
    for _ in range(tries):
        try:
            if proto == "http":
                url = f"http://{host}:{port}/{request.lstrip('/')}"
                text = await asyncio.to_thread(_http_get, url)
            elif proto == "udp":
                text = await _udp_ask(host, port, request)
            elif proto == "tcp":
                text = await _tcp_ask(host, port, request)
            else:
                return Response(400, f"unsupported protocol {proto!r}: use http, udp or tcp\n")
            responses.append(text)
        except (OSError, TimeoutError, ValueError) as e:
            errors.append(str(e))
    return Response(200, json.dumps({"responses": responses, "errors": errors}), "application/json")


def _http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode(errors="replace"))


async def _udp_ask(host: str, port: int, msg: str, timeout: float = 5.0) -> str:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not fut.done():
                fut.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(P, remote_addr=(host, port))
    try:
        transport.sendto(msg.encode())
        return (await asyncio.wait_for(fut, timeout)).decode(errors="replace")
    finally:
        transport.close()


async def _tcp_ask(host: str, port: int, msg: str, timeout: float = 5.0) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        if msg:
            writer.write(msg.encode() + b"\n")
            await writer.drain()
        return (await asyncio.wait_for(reader.read(65536), timeout)).decode(errors="replace")
    finally:
        writer.close()


class UDPCommands(asyncio.DatagramProtocol):
    """netexec's UDP server: `hostname`, `echo <msg>`, `clientip`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        text = data.decode(errors="replace").strip()
        cmd, _, rest = text.partition(" ")
        if cmd == "hostname":
            reply = hostname()
        elif cmd == "echo":
            reply = rest
        elif cmd == "clientip":
            reply = f"{addr[0]}:{addr[1]}"
        else:
            reply = "unknown command"
        self.transport.sendto(reply.encode(), addr)


async def start_udp(port: int, protocol: type[asyncio.DatagramProtocol], host: str = "0.0.0.0"
                    ) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(protocol, local_addr=(host, port), reuse_port=False)
    return transport, int(transport.get_extra_info("sockname")[1])


async def start_netexec(http_port: int, udp_port: int, host: str | None = None
                        ) -> tuple[asyncio.Server, asyncio.DatagramTransport | None]:
    server = await serve_http(NetexecHTTP(), http_port, host)
    udp = None
    if udp_port >= 0:
        udp, _ = await start_udp(udp_port, UDPCommands, host or "0.0.0.0")
    return server, udp


# ---- serve-hostname ------------------------------------------------------------

class HostnameUDP(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.transport.sendto(hostname().encode(), addr)


async def _tcp_hostname(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(hostname().encode())
    try:
        await writer.drain()
    finally:
        writer.close()


async def _http_hostname(req: Request) -> Response:
    return Response(200, hostname())


async def start_serve_hostname(port: int, *, tcp: bool, udp: bool, http: bool, host: str | None = None
                               ) -> list[asyncio.Server | asyncio.DatagramTransport]:
    if tcp and http:
        raise ValueError("--tcp and --http cannot both be set (they share --port)")
    out: list[asyncio.Server | asyncio.DatagramTransport] = []
    if tcp:
        out.append(await asyncio.start_server(_tcp_hostname, host=host, port=port, reuse_address=True))
    if http:
        out.append(await serve_http(_http_hostname, port, host))
    if udp:
        out.append((await start_udp(port, HostnameUDP, host or "0.0.0.0"))[0])
    return out


# ---- command line --------------------------------------------------------------

def _bool(s: str) -> bool:
    if s.lower() in ("1", "t", "true", "yes"):
        return True
    if s.lower() in ("0", "f", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {s!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agnhost")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    ne = sub.add_parser("netexec", help="HTTP and UDP test server")
    ne.add_argument("--http-port", type=int, default=8080)
    ne.add_argument("--udp-port", type=int, default=8081, help="-1 disables UDP")
    ne.add_argument("--sctp-port", type=int, default=-1)
    ne.add_argument("--delay-shutdown", type=int, default=0)
    sh = sub.add_parser("serve-hostname", help="answer every request with the hostname")
    sh.add_argument("--port", type=int, default=9376)
    sh.add_argument("--tcp", type=_bool, nargs="?", const=True, default=False)
    sh.add_argument("--udp", type=_bool, nargs="?", const=True, default=False)
    sh.add_argument("--http", type=_bool, nargs="?", const=True, default=True)
    sh.add_argument("--close", type=_bool, nargs="?", const=True, default=False)
    sub.add_parser("pause", help="sleep until terminated")
    return p


async def _amain(ns: argparse.Namespace) -> int:
    if ns.cmd == "netexec":
        await start_netexec(ns.http_port, ns.udp_port)
        print(f"Started HTTP server on port {ns.http_port}", flush=True)
        if ns.udp_port >= 0:
            print(f"Started UDP server on port {ns.udp_port}", flush=True)
        await wait_forever_or_signal()
        if ns.delay_shutdown > 0:
            await asyncio.sleep(ns.delay_shutdown)
        return 0
    if ns.cmd == "serve-hostname":
        tcp = ns.tcp
        http = ns.http and not tcp
        await start_serve_hostname(ns.port, tcp=tcp, udp=ns.udp, http=http)
        print(f"Serving on port {ns.port} (tcp={tcp} udp={ns.udp} http={http})", flush=True)
        await wait_forever_or_signal()
        return 0
    print("Paused", flush=True)
    await wait_forever_or_signal()
    print("Shutting down after receiving signal", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    ns, unknown = parser.parse_known_args(argv)
    if ns.cmd is None:
        parser.print_help(sys.stderr)
        return 1
    if unknown:
        print(f"agnhost {ns.cmd}: ignoring unsupported arguments: {' '.join(unknown)}", file=sys.stderr)
    try:
        return asyncio.run(_amain(ns))
    except OSError as e:
        print(f"agnhost {ns.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
