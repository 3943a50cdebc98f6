"""The kubelet endpoint's WebSocket exec (channel.k8s.io framing), against a real process's namespaces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from podnet.agent.kubelet_http import KubeletServer

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nsenter") is None, reason="needs root and nsenter"),
]


@pytest.fixture
async def kubelet() -> AsyncIterator[str]:
    target = subprocess.Popen(["sleep", "60"])  # stands for the container: exec enters its namespaces
    proc = SimpleNamespace(container_pid=lambda: target.pid)
    runner = SimpleNamespace(name="app", proc=proc)
    worker = SimpleNamespace(init_runners=[], runners=[runner])
    runtime = SimpleNamespace(find=lambda ns, name: worker if (ns, name) == ("default", "web") else None,
                              workers={})
    server = KubeletServer(runtime)  # type: ignore[arg-type]
    try:
        port = await server.start("127.0.0.1", 0)
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop()
        target.kill()
        target.wait()


async def run_exec(base: str, cmd: list[str], stdin: bytes | None = None) -> tuple[bytes, bytes, Any]:
    q = "&".join(f"command={c}" for c in cmd) + "&stdout=1&stderr=1"
    if stdin is not None:
        q += "&stdin=1"
    out, err, status = b"", b"", None
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/exec/default/web/app?{q}",
                                                          protocols=("v5.channel.k8s.io",)) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        if stdin is not None:
            await ws.send_bytes(b"\x00" + stdin)
            await ws.send_bytes(b"\xff\x00")  # v5: close stdin
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            ch, data = msg.data[0], msg.data[1:]
            if ch == 1:
                out += data
            elif ch == 2:
                err += data
            elif ch == 3:
                status = json.loads(data)
    return out, err, status


async def test_exec_streams_stdin_stdout_and_success(kubelet: str) -> None:
    out, err, status = await run_exec(kubelet, ["cat"], stdin=b"hello through the pod\n")
    assert (out, err) == (b"hello through the pod\n", b"")
    assert status == {"metadata": {}, "status": "Success"}


async def test_exec_reports_stderr_and_exit_code(kubelet: str) -> None:
    out, err, status = await run_exec(kubelet, ["sh", "-c", "echo%20oops%20>%262;%20exit%203"])
    assert (out, err) == (b"", b"oops\n")
    assert status == {"metadata": {}, "status": "Failure",
                      "message": "command terminated with non-zero exit code: exit status 3",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


async def test_exec_unknown_pod_is_404(kubelet: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{kubelet}/exec/default/nope/app?command=true") as r:
        assert r.status == 404
        assert await r.text() == 'pod "nope" in namespace "default" is not running on this node'
