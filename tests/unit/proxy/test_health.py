"""The proxy's /healthz, /livez and /metrics, as kube-proxy answers them (served on loopback here)."""

from __future__ import annotations

import json
import socket

import aiohttp

from podnet.proxy.health import ProxyStatusServer, go_time, health_body, node_eligible
from podnet.proxy.healthcheck import HealthChecks
from podnet.proxy.metrics import ProxyMetrics

T0 = 1_800_000_000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_go_time_prints_like_go() -> None:
    assert go_time(0) == "0001-01-01 00:00:00 +0000 UTC"
    assert go_time(T0) == "2027-01-15 08:00:00 +0000 UTC"
    assert go_time(T0 + 0.25) == "2027-01-15 08:00:00.25 +0000 UTC"


def test_healthy_until_a_queued_change_waits_longer_than_the_timeout() -> None:
    m = ProxyMetrics()
    status, body = health_body(m, T0, True)  # starting up: healthy
    assert status == 200 and json.loads(body) == {"lastUpdated": go_time(T0), "currentTime": go_time(T0),
                                                  "nodeEligible": True}
    m.queued(T0)
    m.queued(T0 + 30)  # the oldest pending change counts
    assert health_body(m, T0 + 59.9, True)[0] == 200
    status, body = health_body(m, T0 + 60, True)
    assert status == 503
    assert json.loads(body) == {"lastUpdated": go_time(0), "currentTime": go_time(T0 + 60),
                                "nodeEligible": True}
    m.observe_sync(0.01, full=True)  # a successful sync clears it
    assert health_body(m, T0 + 61, True)[0] == 200
    status, body = health_body(m, T0 + 61, False)  # the node is going away: /healthz fails, /livez not
    assert status == 503 and json.loads(body)["nodeEligible"] is False
    status, body = health_body(m, T0 + 61, None)
    assert status == 200 and set(json.loads(body)) == {"lastUpdated", "currentTime"}


def test_node_eligibility() -> None:
    assert node_eligible(None) and node_eligible({"metadata": {"name": "n1"}, "spec": {}})
    assert not node_eligible({"metadata": {"name": "n1", "deletionTimestamp": "2026-01-01T00:00:00Z"}})
    assert not node_eligible({"metadata": {"name": "n1"},
                              "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler",
                                                   "effect": "NoSchedule"}]}})


async def test_served_endpoints_and_scrape() -> None:
    m = ProxyMetrics()
    m.observe_sync(0.003, full=True)
    now = [T0]
    hz, mp = free_port(), free_port()
    srv = ProxyStatusServer(m, healthz_addr=("127.0.0.1", hz), metrics_addr=("127.0.0.1", mp),
                            clock=lambda: now[0])
    await srv.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{hz}/healthz") as r:
                assert r.status == 200 and r.headers["Content-Type"] == "application/json"
                assert json.loads(await r.text())["nodeEligible"] is True
            m.queued(T0)
            now[0] = T0 + 120
            async with s.get(f"http://127.0.0.1:{hz}/livez") as r:
                assert r.status == 503
            async with s.get(f"http://127.0.0.1:{mp}/metrics") as r:
                assert r.status == 200
                text = await r.text()
                assert "kubeproxy_sync_proxy_rules_duration_seconds_count 1" in text
                assert "podnet_proxy_full_syncs_total 1" in text
            async with s.get(f"http://127.0.0.1:{hz}/metrics") as r:
                assert r.status == 404  # the health port serves status only
    finally:
        await srv.close()


async def test_health_check_node_port_reports_the_proxy_state() -> None:
    ok = [True]
    hc = HealthChecks(host="127.0.0.1", healthy=lambda: ok[0])
    port = free_port()
    await hc.sync({port: ("default/web", 2)})
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/") as r:
                assert r.status == 200 and json.loads(await r.text())["serviceProxyHealthy"] is True
            ok[0] = False
            async with s.get(f"http://127.0.0.1:{port}/") as r:
                body = json.loads(await r.text())
                assert r.status == 503 and body == {"service": {"namespace": "default", "name": "web"},
                                                    "localEndpoints": 2, "serviceProxyHealthy": False}
    finally:
        await hc.close()
