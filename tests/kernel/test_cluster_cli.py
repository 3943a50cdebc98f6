"""`podnet up` refuses ranges that collide with the host's own routes, naming both, and makes nothing."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from podnet.net.real import RealNetOps

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

PODNET = [sys.executable, "-c", "from podnet.cli.main import main; raise SystemExit(main())"]


def host_route() -> tuple[str, str]:
    ops = RealNetOps()
    try:
        for r in ops.route_list():
            if r.dst != "0.0.0.0/0" and r.type == "unicast" and r.dev:
                return r.dst, r.dev
    finally:
        ops.close()
    pytest.skip("the host has no non-default route to collide with")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODNET_STATE_ROOT": str(tmp_path)}
    return subprocess.run([*PODNET, *args], capture_output=True, text=True, timeout=60, env=env)


def test_up_refuses_a_pod_cidr_on_a_host_route(tmp_path: Path) -> None:
    dst, dev = host_route()
    wider = str(
        ipaddress.IPv4Network(dst).supernet(new_prefix=max(ipaddress.IPv4Network(dst).prefixlen - 4, 8))
    )
    name = f"c{os.getpid() % 10000}{secrets.token_hex(2)}"
    r = run(tmp_path, "up", "--name", name, "--nodes", "1", "--pod-cidr", wider)
    assert r.returncode == 1
    assert f"error: the pod CIDR {wider} collides with the host route '{dst} dev {dev}'" in r.stderr
    assert "choose another range with --pod-cidr" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "clusters" / name).exists()
    assert not any(
        name in ns
        for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    )


def test_bad_values_get_clear_errors(tmp_path: Path) -> None:
    r = run(tmp_path, "up", "--name", "Bad_Name")
    assert r.returncode == 1 and "error: cluster name 'Bad_Name' is invalid" in r.stderr
    r = run(tmp_path, "up", "--name", "ok", "--service-cidr", "10.96.0.1/12")
    assert r.returncode == 1
    assert (
        "error: invalid service CIDR '10.96.0.1/12' (--service-cidr): 10.96.0.1/12 has host bits set"
        in r.stderr
    )
    r = run(tmp_path, "kubeconfig", "--name", "nope")
    assert r.returncode == 1 and 'error: cluster "nope" not found' in r.stderr
    r = run(tmp_path, "list", "-o", "json")
    assert r.returncode == 0 and r.stdout.strip() == "[]"
    r = run(tmp_path, "down", "--name", "nope")
    assert r.returncode == 0 and 'cluster "nope" does not exist' in r.stderr
