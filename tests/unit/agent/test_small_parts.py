import asyncio
from pathlib import Path

import pytest

from podnet.agent.backoff import Backoff
from podnet.agent.envbuild import EnvError, build_env
from podnet.agent.expansion import expand
from podnet.agent.logs import parse_lines, read_log
from podnet.agent.probes import ProbeTiming, ProbeTracker, http_probe, resolve_port, tcp_probe


@pytest.mark.parametrize("text,want", [
    ("$(A)", "x"), ("a-$(A)-b", "a-x-b"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"),
    ("$$", "$"), ("$A", "$A"), ("$(A", "$(A"), ("cost $5", "cost $5"), ("$(A)$(B)", "xy"), ("end$", "end$"),
])
def test_expand(text: str, want: str) -> None:
    assert expand(text, {"A": "x", "B": "y"}) == want


def test_backoff_doubles_to_five_minutes_and_resets() -> None:
    b = Backoff()
    delays = [b.next_delay(1.0) for _ in range(8)]
    assert delays == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert b.next_delay(601.0) == 0.0  # ran for 10 minutes: forgotten
    assert b.next_delay(1.0) == 10.0


POD = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "robot"}}


async def no_cm(ns: str, name: str) -> None:
    return None


async def test_env_order_field_refs_and_expansion() -> None:
    container = {"name": "c", "env": [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "URL", "value": "http://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)/$(POD)"},
        {"name": "DB_SERVICE_PORT", "value": "override"},
    ]}
    env = await build_env(POD, container, pod_ip="10.244.1.5", host_ip="172.30.0.2",
                          service_env={"DB_SERVICE_HOST": "10.96.0.20", "DB_SERVICE_PORT": "5432"},
                          get_configmap=no_cm)
    assert (env["POD"], env["NS"], env["IP"], env["HOST"], env["NODE"], env["SA"], env["APP"]) == (
        "web-1", "shop", "10.244.1.5", "172.30.0.2", "n1", "robot", "web")
    assert env["URL"] == "http://10.96.0.20:5432/web-1"
    assert env["DB_SERVICE_PORT"] == "override"  # the container's env wins over service links
    assert env["HOSTNAME"] == "web-1" and "PATH" in env


async def test_env_from_configmap_and_errors() -> None:
    async def cms(ns: str, name: str) -> dict[str, object] | None:
        return {"data": {"MODE": "fast", "LEVEL": "3"}} if (ns, name) == ("shop", "cfg") else None

    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "X_"}],
         "env": [{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}}]}
    env = await build_env(POD, c, pod_ip="", host_ip="", service_env={}, get_configmap=cms)
    assert env["X_MODE"] == "fast" and env["X_LEVEL"] == "3" and env["M"] == "fast"
    ref = {"configMapKeyRef": {"name": "cfg", "key": "NOPE"}}
    bad = {"name": "c", "env": [{"name": "M", "valueFrom": ref}]}
    with pytest.raises(EnvError, match="couldn't find key NOPE in ConfigMap shop/cfg"):
        await build_env(POD, bad, pod_ip="", host_ip="", service_env={}, get_configmap=cms)
    missing = {"name": "c", "envFrom": [{"configMapRef": {"name": "other"}}]}
    with pytest.raises(EnvError, match='configmap "other" not found'):
        await build_env(POD, missing, pod_ip="", host_ip="", service_env={}, get_configmap=cms)
    bad_path = {"name": "c", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]}
    with pytest.raises(EnvError, match=r'unsupported fieldRef fieldPath "spec\.bogus"'):
        await build_env(POD, bad_path, pod_ip="", host_ip="", service_env={}, get_configmap=cms)


def test_cri_log_parse_tail_timestamps(tmp_path: Path) -> None:
    f = tmp_path / "log"
    f.write_bytes(b"2026-01-01T00:00:00.000000001Z stdout F one\n"
                  b"2026-01-01T00:00:01.000000000Z stderr P par\n"
                  b"2026-01-01T00:00:01.500000000Z stderr F tial\n"
                  b"2026-01-01T00:00:02.000000000Z stdout F three\n")
    assert [ln.text for ln in parse_lines(f.read_bytes())] == [b"one", b"partial", b"three"]
    assert read_log(f) == b"one\npartial\nthree\n"
    assert read_log(f, tail=1) == b"three\n"
    assert read_log(f, tail=0) == b""
    assert read_log(f, tail=1, timestamps=True) == b"2026-01-01T00:00:02.000000000Z three\n"
    assert read_log(f, limit_bytes=5) == b"one\np"
    assert read_log(tmp_path / "missing") == b""


def test_probe_tracker_thresholds() -> None:
    t = ProbeTracker(ProbeTiming.of({"failureThreshold": 3, "successThreshold": 2}), initial=False)
    assert not t.record(True) and t.result is False  # one success is not enough
    assert t.record(True) and t.result is True
    assert not t.record(False) and not t.record(False) and t.result is True
    assert t.record(False) and t.result is False
    d = ProbeTiming.of({})
    got = (d.initial_delay, d.period, d.timeout, d.success_threshold, d.failure_threshold)
    assert got == (0, 10, 1, 1, 3)


def test_resolve_named_port() -> None:
    c = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port("http", c) == 8080 and resolve_port(81, c) == 81 and resolve_port("82", c) == 82
    with pytest.raises(ValueError, match="port 'metrics' not found"):
        resolve_port("metrics", c)


async def test_http_and_tcp_probes_against_a_local_server() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        code = 200 if b" /ok " in line else 503
        writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await http_probe("127.0.0.1", port, "/ok") == (True, "")
        bad = await http_probe("127.0.0.1", port, "/bad")
        assert bad == (False, "HTTP probe failed with statuscode: 503")
        assert (await tcp_probe("127.0.0.1", port))[0] is True
    finally:
        server.close()
        await server.wait_closed()
    ok, msg = await tcp_probe("127.0.0.1", port)
    assert not ok and msg.startswith(f"dial tcp 127.0.0.1:{port}: ")
