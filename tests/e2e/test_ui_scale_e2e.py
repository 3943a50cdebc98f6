"""`podnet ui`'s page at 300 pods and 1,000 Services in a real headless Chromium: the render time of the
picture (measured by the page itself, data-render-ms) against a 5-pod / 4-Service baseline in the same
run, and a pod added to the data shown within 2 s. The server is podnet.ui's own, fed with synthetic
API objects through podnet.ui.model (no cluster needed). Figures: BENCHMARKS.md (`podnet ui` section)."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import wait_for

from podnet.ui.model import build_view
from podnet.ui.server import Auth, make_app

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                       reason="Debian's chromium and chromium-driver are not installed"),
]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402


def _objects(nodes: int, pods: int, services: int) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    ns = [{"metadata": {"name": f"node-{i}"}, "spec": {"podCIDR": f"10.244.{i}.0/24"},
           "status": {"addresses": [{"type": "InternalIP", "address": f"172.30.9.{i + 2}"}],
                      "conditions": [{"type": "Ready", "status": "True"}]}} for i in range(nodes)]
    ps = [{"metadata": {"name": f"pod-{i}", "namespace": "default"},
           "spec": {"nodeName": f"node-{i % nodes}"},
           "status": {"podIP": f"10.244.{i % nodes}.{i // nodes + 2}", "phase": "Running",
                      "conditions": [{"type": "Ready", "status": "True"}]}} for i in range(pods)]
    ss, sl = [], []
    for i in range(services):
        ss.append({"metadata": {"name": f"svc-{i}", "namespace": "default"},
                   "spec": {"type": "NodePort" if i % 2 else "ClusterIP",
                            "clusterIP": f"10.96.{i // 250}.{i % 250}",
                            "ports": [{"port": 80, "protocol": "TCP",
                                       "nodePort": 30000 + i if i % 2 else None}]}})
        eps = [ps[(i * 3 + k) % pods] for k in range(3)]
        sl.append({"metadata": {"name": f"svc-{i}-x", "namespace": "default",
                                "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
                   "ports": [{"port": 80, "protocol": "TCP"}],
                   "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True},
                                  "nodeName": p["spec"]["nodeName"],
                                  "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]}} for p in eps]})
    return ns, ps, ss, sl


class SyntheticBackend:
    def __init__(self, nodes: int, pods: int, services: int, counters: dict[str, Any] | None = None):
        self.objects = _objects(nodes, pods, services)
        self.counters = counters or {}

    async def view(self) -> dict[str, Any]:
        v = build_view(*self.objects, self.counters)
        v.update(cluster="synthetic", nodeNetwork="172.30.9.0/24", time=time.time())
        return v

    async def trace(self, source: str, dest: str, proto: str) -> dict[str, Any]:
        return {"lines": [], "data": {}}

    async def object_yaml(self, kind: str, namespace: str, name: str) -> str:
        return ""


class Server:
    """podnet.ui's app on 127.0.0.1 in a thread of its own."""

    def __init__(self, backend: SyntheticBackend):
        from aiohttp import web
        self.auth = Auth("unused-cluster-token")
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(make_app(backend, self.auth), access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def link(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.auth.link_token}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="pnui-scale-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1500,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _measure(driver: Any, nodes: int, pods: int, services: int, redraws: int = 5) -> dict[str, float]:
    backend = SyntheticBackend(nodes, pods, services)
    server = Server(backend)
    try:
        t0 = time.monotonic()
        driver.get(server.link())
        wait_for(f"{pods} pods drawn", lambda: driver.execute_script(
            "return document.querySelectorAll('g.pod').length") == pods, 30, interval=0.05)
        first = time.monotonic() - t0
        times = []
        for i in range(redraws):  # a pod added each time: the page must redraw to show it
            name = f"extra-{i}"
            pod = {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": "node-0"},
                   "status": {"podIP": f"10.244.0.{250 - i}", "phase": "Pending"}}
            t1 = time.monotonic()
            backend.objects[1].append(pod)
            wait_for(f"pod {name} drawn", lambda n=name: driver.execute_script(
                f"return !!document.querySelector('g.pod[data-name=\"default/{n}\"]')"), 2, interval=0.02)
            times.append(time.monotonic() - t1)
        render_ms = float(driver.execute_script(
            "return parseFloat(document.getElementById('topology').getAttribute('data-render-ms'))"))
        return {"first_s": first, "render_ms": render_ms, "appear_p50_s": statistics.median(times),
                "appear_max_s": max(times)}
    finally:
        server.close()


def test_render_time_at_300_pods_and_1000_services(browser: Any) -> None:
    base = _measure(browser, 3, 5, 4)
    big = _measure(browser, 3, 300, 1000)
    print(f"\nbaseline 3 nodes/5 pods/4 Services: first picture {base['first_s']:.2f} s, "
          f"render {base['render_ms']:.1f} ms, new pod shown after p50 {base['appear_p50_s']:.2f} s")
    print(f"3 nodes/300 pods/1,000 Services (3,000 edges): first picture {big['first_s']:.2f} s, "
          f"render {big['render_ms']:.1f} ms, new pod shown after p50 {big['appear_p50_s']:.2f} s "
          f"(max {big['appear_max_s']:.2f} s); "
          f"render ratio {big['render_ms'] / max(base['render_ms'], 0.1):.0f}x")
    # responsive: each redraw fits well inside the 1 s poll, and a new pod shows within 2 s
    assert big["render_ms"] < 1000
    assert big["appear_max_s"] < 2


def test_policy_drops_and_services_without_endpoints_are_marked(browser: Any) -> None:
    drops = {"policy_drops": [{"policy": "default/deny-<b>all</b> ingress", "packets": 7, "bytes": 420}]}
    backend = SyntheticBackend(2, 4, 3, drops)
    backend.objects[3].pop()  # svc-2 loses its EndpointSlice: no ready endpoint
    server = Server(backend)
    try:
        browser.get(server.link())
        script = "return [...document.querySelectorAll('text.drop')].map(e => e.textContent)"
        texts = wait_for("the drop counter", lambda: browser.execute_script(script), 10)
        assert texts == ["dropped by NetworkPolicy default/deny-<b>all</b> ingress: 7 pk"]
        marked = browser.execute_script(
            "return [...document.querySelectorAll('g.svc.noeps')].map(e => e.getAttribute('data-name'))")
        assert marked == ["default/svc-2"]
    finally:
        server.close()
