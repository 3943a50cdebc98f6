"""The container shim for real: namespaces, bind-mounted resolv.conf/hosts, CRI logs, exit codes, signals."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.agent.launcher import LaunchSpec, ShimLauncher
from podnet.agent.logs import read_log

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs ip"),
]


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pnshim{os.getpid() % 100000}{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def spec(tmp_path: Path, netns: str, argv: list[str], **kw: str) -> LaunchSpec:
    (tmp_path / "resolv.conf").write_text("nameserver 10.96.0.10\nsearch default.svc.cluster.local\n")
    (tmp_path / "hosts").write_text("127.0.0.1\tlocalhost\n10.244.1.9\tmy-pod\n")
    run = tmp_path / "run"
    return LaunchSpec(argv=argv, env={"PATH": os.environ["PATH"], "GREETING": "hi"}, run_dir=run,
                      log_path=run / "log", netns_path=f"/run/netns/{netns}", hostname="my-pod",
                      resolv_conf=str(tmp_path / "resolv.conf"), hosts=str(tmp_path / "hosts"), **kw)


async def test_container_sees_pod_namespaces_and_logs(tmp_path: Path, netns: str) -> None:
    host_resolv = Path("/etc/resolv.conf").read_text()
    script = ('hostname; cat /etc/resolv.conf; grep my-pod /etc/hosts; ip -o link | cut -d: -f2; pwd; '
              'echo "$GREETING"; echo oops >&2; exit 3')
    proc = ShimLauncher().start(spec(tmp_path, netns, ["sh", "-c", script], working_dir="/tmp"))
    try:
        assert await proc.wait_started()
        info = await asyncio.wait_for(proc.wait(), 10)
    finally:
        proc.signal(signal.SIGKILL)
    assert (info.exit_code, info.reason, info.signal) == (3, "Error", None)
    out = read_log(tmp_path / "run" / "log").decode().splitlines()
    stdout = ["my-pod", "nameserver 10.96.0.10", "search default.svc.cluster.local", "10.244.1.9\tmy-pod",
              " lo", "/tmp", "hi"]  # a fresh netns has only lo
    assert [ln for ln in out if ln != "oops"] == stdout and "oops" in out
    assert b" stderr F oops" in (tmp_path / "run" / "log").read_bytes()
    assert Path("/etc/resolv.conf").read_text() == host_resolv  # the bind mount stayed in the container


async def test_sigterm_reaches_the_container_and_start_errors(tmp_path: Path, netns: str) -> None:
    proc = ShimLauncher().start(spec(tmp_path, netns, ["sleep", "30"]))
    try:
        assert await proc.wait_started()
        pid = proc.container_pid()
        assert pid is not None
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{netns}").st_ino
        assert os.stat(f"/proc/{pid}/ns/mnt").st_ino != os.stat("/proc/self/ns/mnt").st_ino
        proc.signal(signal.SIGTERM)
        info = await asyncio.wait_for(proc.wait(), 10)
    finally:
        proc.signal(signal.SIGKILL)
    assert (info.exit_code, info.signal) == (143, signal.SIGTERM)
    (tmp_path / "x").mkdir()
    missing = ShimLauncher().start(spec(tmp_path / "x", netns, ["no-such-binary-podnet"]))
    assert not await missing.wait_started()
    info = await asyncio.wait_for(missing.wait(), 10)
    assert (info.exit_code, info.reason) == (128, "StartError")
    assert info.message == 'exec: "no-such-binary-podnet": executable file not found in $PATH'


async def test_killing_the_shim_kills_the_container(tmp_path: Path, netns: str) -> None:
    proc = ShimLauncher().start(spec(tmp_path, netns, ["sleep", "30"]))
    try:
        assert await proc.wait_started()
        pid = proc.container_pid()
        assert pid is not None
        os.kill(proc.shim_pid, signal.SIGKILL)  # what `podnet down` does to a shim that ignores SIGTERM
        info = await asyncio.wait_for(proc.wait(), 10)
        assert info.exit_code == 137  # no exit record: the shim died first
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the container outlived its shim")
    finally:
        proc.signal(signal.SIGKILL)
