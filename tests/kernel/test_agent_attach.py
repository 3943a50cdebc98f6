"""The kubelet endpoint's attach, end to end on this machine: a real shim (agent/shim.py, started by the
real launcher) holds the container's stdin or terminal, and the endpoint's WebSocket reaches it through
the attach socket. Root: the shim gives the container a mount namespace of its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from podnet.agent.kubelet_http import KubeletServer
from podnet.agent.launcher import LaunchSpec, ShimLauncher, ShimProcess
from podnet.agent.podstate import PodDirs

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the shim unshares a mount namespace"),
]

SUCCESS = {"metadata": {}, "status": "Success"}
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


@dataclass
class Node:
    tmp: Path
    base: str = ""
    server: KubeletServer | None = None
    runner: Any = None
    procs: list[ShimProcess] = field(default_factory=list)

    def start(self, argv: list[str], *, stdin: bool = False, tty: bool = False,
              stdin_once: bool = False) -> ShimProcess:
        dirs = PodDirs(self.tmp / "pods")
        run_dir = dirs.run_dir("uid-1", "app", 0)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PS1": "$ ", "TERM": "xterm"}
        spec = LaunchSpec(argv=argv, env=env, run_dir=run_dir, log_path=run_dir / "log",
                          working_dir=str(self.tmp), stdin=stdin, stdin_once=stdin_once, tty=tty)
        proc = ShimLauncher().start(spec)
        self.procs.append(proc)
        worker = SimpleNamespace(uid="uid-1", deps=SimpleNamespace(dirs=dirs))
        container = {"name": "app", "stdin": stdin, "tty": tty, "stdinOnce": stdin_once}
        self.runner = SimpleNamespace(name="app", proc=proc, rec=SimpleNamespace(attempt=0), w=worker,
                                      spec=container)
        return proc

    async def serve(self) -> None:
        """(Re)start the endpoint: a new one stands for a restarted agent."""
        if self.server is not None:
            await self.server.stop()
        workers = SimpleNamespace(init_runners=[], runners=[self])
        runtime = SimpleNamespace(find=lambda ns, name: workers if (ns, name) == ("default", "web") else None,
                                  workers={})
        self.server = KubeletServer(runtime)  # type: ignore[arg-type]
        port = await self.server.start("127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{port}"

    def __getattr__(self, name: str) -> Any:  # the endpoint looks the runner up in the worker
        return getattr(self.__dict__["runner"], name)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = Node(tmp_path)
    await n.serve()
    try:
        yield n
    finally:
        if n.server is not None:
            await n.server.stop()
        for p in n.procs:
            p.signal(signal.SIGKILL)
            await asyncio.wait_for(p.wait(), 10)


class Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.out: dict[int, bytes] = {STDOUT: b"", STDERR: b""}
        self.status: Any = None

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(bytes([channel]) + data)

    async def until(self, text: bytes, timeout: float = 10.0) -> bytes:
        """Read until `text` shows on stdout (or the status arrives)."""
        deadline = time.monotonic() + timeout
        while text not in self.out[STDOUT] and self.status is None:
            msg = await asyncio.wait_for(self.ws.receive(), max(0.1, deadline - time.monotonic()))
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            if msg.data[0] == STATUS:
                self.status = json.loads(msg.data[1:])
            else:
                self.out[msg.data[0]] += msg.data[1:]
        return self.out[STDOUT]

    async def end(self, timeout: float = 10.0) -> Any:
        await self.until(b"\0never\0", timeout)
        return self.status


async def attach(node: Node, query: str = "stdin=1&stdout=1&stderr=1&tty=1") -> tuple[aiohttp.ClientSession,
                                                                                      Session]:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"{node.base}/attach/default/web/app?{query}",
                               protocols=("v5.channel.k8s.io",))
    assert ws.protocol == "v5.channel.k8s.io"
    return http, Session(ws)


async def test_a_terminal_session_types_resizes_and_ends_with_the_container(node: Node) -> None:
    proc = node.start(["sh"], stdin=True, tty=True, stdin_once=True)
    assert await proc.wait_started()
    http, s = await attach(node)
    async with http:
        await s.send(RESIZE, json.dumps({"Width": 77, "Height": 21}).encode())
        await s.send(STDIN, b"stty size; tty; echo hi-$((6*7))\n")
        out = await s.until(b"hi-42")
        assert b"21 77\r\n" in out and b"/dev/pts/" in out  # a real terminal, resized
        await s.send(STDIN, b"exit 3\n")
        assert await s.end() == SUCCESS  # the session ends with the container, as the kubelet's does
        assert s.out[STDERR] == b""  # a terminal has no separate stderr
    assert (await proc.wait()).exit_code == 3
    log = (Path(node.tmp) / "pods/uid-1/containers/app/0/log").read_bytes()
    assert b" stdout F hi-42\r\n" in log  # kubectl logs still sees what the terminal showed


async def test_the_console_lives_in_the_shim_not_in_the_agent(node: Node) -> None:
    proc = node.start(["sh"], stdin=True, tty=True)
    assert await proc.wait_started()
    http, s = await attach(node)
    async with http:
        await s.send(STDIN, b"X=kept-$((2*3)); echo set\n")
        await s.until(b"set\r\n")
        await s.ws.close()  # the client goes away; the shell does not
    await node.serve()  # a restarted agent
    http, s = await attach(node)
    async with http:
        await s.send(STDIN, b"echo $X\n")
        assert b"kept-6" in await s.until(b"kept-6")
        assert proc.alive()
        await s.send(STDIN, b"exit\n")
        assert await s.end() == SUCCESS
    assert (await proc.wait()).exit_code == 0


async def test_stdin_once_closes_the_pipe_when_the_first_session_ends_its_input(node: Node) -> None:
    proc = node.start(["sh", "-c", "cat; echo done >&2"], stdin=True, stdin_once=True)
    assert await proc.wait_started()
    http, s = await attach(node, "stdin=1&stdout=1&stderr=1")
    async with http:
        await s.send(STDIN, b"a line\n")
        await s.send(CLOSE, bytes([STDIN]))  # v5: the client's stdin ended
        assert await s.end() == SUCCESS  # streamed on until the container exited
    assert s.out == {STDOUT: b"a line\n", STDERR: b"done\n"}
    assert (await proc.wait()).exit_code == 0


async def test_a_container_without_stdin_ignores_input_and_its_end(node: Node) -> None:
    flag = node.tmp / "go"
    script = f"while [ ! -e {flag} ]; do sleep 0.05; done; echo went; read x; echo x=$x"
    proc = node.start(["sh", "-c", script])
    assert await proc.wait_started()
    http, s = await attach(node, "stdin=1&stdout=1&stderr=1")
    async with http:
        await s.send(STDIN, b"typed\n")
        await s.send(CLOSE, bytes([STDIN]))
        await asyncio.sleep(0.2)
        flag.touch()
        assert await s.end() == SUCCESS
    assert s.out[STDOUT] == b"went\nx=\n"  # `read` saw /dev/null, not what was typed


async def test_errors_as_the_kubelet_words_them(node: Node) -> None:
    proc = node.start(["true"])
    await proc.wait()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base}/attach/default/web/app?stdout=1") as resp:
            assert (resp.status, await resp.text()) == (500, "container app not found in pod web_default")
        async with http.get(f"{node.base}/attach/default/web/app?tty=1") as resp:
            want = "you must specify at least 1 of stdin, stdout, stderr"
            assert (resp.status, await resp.text()) == (400, want)
        async with http.get(f"{node.base}/attach/default/web/zzz?stdout=1") as resp:
            assert (resp.status, await resp.text()) == (400, "container zzz is not valid for pod web")


async def test_a_container_on_a_terminal_gets_its_stop_signal(node: Node) -> None:
    # it leads a session (and process group) of its own, away from the shim's: the signal must reach it
    proc = node.start(["sh", "-c", "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"], tty=True)
    assert await proc.wait_started()
    log = node.tmp / "pods/uid-1/containers/app/0/log"
    deadline = time.monotonic() + 10
    while b"ready" not in (log.read_bytes() if log.exists() else b"") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    proc.signal(signal.SIGTERM)
    assert (await asyncio.wait_for(proc.wait(), 10)).exit_code == 7
