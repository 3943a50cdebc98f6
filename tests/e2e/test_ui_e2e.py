"""`podnet ui` in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
against a real 3-node cluster running examples/myapp: the picture, live updates, counters, a trace,
and escaping. Screenshots go to $PODNET_TEST_ARTIFACTS or tests/artifacts/ (ignored by git)."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import EXAMPLES, REPO, Cluster, http_get, running_cluster, wait_for

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("PODNET_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
SVC = "default/myapp-service"

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("ui-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                       reason="Debian's chromium and chromium-driver are not installed"),
]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("ui", "--nodes", "3") as c:
        c.kubectl("apply", "-f", str(EXAMPLES / "myapp"))
        c.wait_ready("app=myapp,type=front-end", 3, timeout=120)
        yield c


@pytest.fixture(scope="module")
def link(cluster: Cluster) -> Iterator[str]:
    """`podnet ui` as a user runs it; the one-time link it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "podnet.cli.main", "ui", "--name", cluster.name],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        out = ""
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "token=" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                out += os.read(proc.stdout.fileno(), 4096).decode()
            err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ""
            assert proc.poll() is None, f"podnet ui exited: {out}{err}"
        m = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", out)
        assert m, out
        yield m.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page(link: str) -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="pnui-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1500,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    try:
        driver.get(link)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _shot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"ui-{name}.png"))


def _drawn(driver: Any, selector: str) -> list[dict[str, str]]:
    """The SVG elements matching `selector` as {attribute: value, "text": textContent}, read in one
    script (the page redraws every second, so WebElement handles go stale)."""
    items: list[dict[str, str]] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => {"
        "  const o = {text: e.textContent}; for (const a of e.attributes) o[a.name] = a.value; return o; });",
        selector)
    return items


def _shown_pods(driver: Any, prefix: str) -> dict[str, str]:
    """Pod name → node, as drawn."""
    return {e["data-name"]: e["data-node"] for e in _drawn(driver, "g.pod")
            if e["data-name"].startswith(prefix)}


def _svc(driver: Any) -> dict[str, str]:
    """myapp-service as drawn (waiting for the page's next picture if it is not drawn at this instant)."""
    def one() -> dict[str, str] | None:
        found = _drawn(driver, f'g.svc[data-name="{SVC}"]')
        assert len(found) <= 1, found
        return found[0] if found else None

    drawn: dict[str, str] = wait_for(f"{SVC} drawn", one, 10, interval=0.2)
    return drawn


def _edges(driver: Any) -> list[dict[str, str]]:
    return _drawn(driver, f'path.edge[data-svc="{SVC}"]')


def _click(driver: Any, selector: str) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.2)
    raise AssertionError(f"could not click {selector}")


def test_the_link_logs_in_and_the_picture_shows_myapp(cluster: Cluster, page: Any) -> None:
    assert "token=" not in page.current_url  # the one-time link was exchanged for a cookie
    wait_for("3 nodes drawn", lambda: len(_drawn(page, "g.node")) == 3, 10)
    ips = cluster.node_ips()
    texts = {n["data-name"]: n["text"] for n in _drawn(page, "g.node")}
    for node in cluster.get_json("nodes")["items"]:
        name = node["metadata"]["name"]
        assert ips[name] in texts[name] and node["spec"]["podCIDR"] in texts[name]
    front = {f"default/{p['metadata']['name']}": p["spec"]["nodeName"]
             for p in cluster.ready_pods("app=myapp,type=front-end")}
    wait_for("the front-end pods on their nodes",
             lambda: _shown_pods(page, "default/myapp-front-end") == front, 10)
    wait_for("3 endpoint edges of myapp-service", lambda: len(_edges(page)) == 3, 10)
    assert {e["data-pod"] for e in _edges(page)} == {k.split("/")[1] for k in front}
    svc = _svc(page)
    assert svc["data-nodeports"] == "30008"
    assert "80:30008/TCP" in svc["text"] and "NodePort" in svc["text"]
    _shot(page, "myapp")


def test_scaling_shows_new_pods_within_two_seconds_and_removes_deleted_ones(cluster: Cluster,
                                                                           page: Any) -> None:
    try:
        cluster.kubectl("scale", "deployment/myapp-front-end", "--replicas=5")
        t0 = time.monotonic()
        wait_for("5 front-end pods drawn", lambda: len(_shown_pods(page, "default/myapp-front-end")) == 5, 2)
        print(f"5 front-end pods drawn {time.monotonic() - t0:.2f}s after kubectl scale returned")
        cluster.wait_ready("app=myapp,type=front-end", 5, timeout=120)
        wait_for("5 endpoint edges", lambda: len(_edges(page)) == 5, 10)
        _shot(page, "scaled-to-5")
    finally:
        cluster.kubectl("scale", "deployment/myapp-front-end", "--replicas=3")
    wait_for("deleted pods gone from the page",
             lambda: len(_shown_pods(page, "default/myapp-front-end")) == 3, 60)
    wait_for("3 endpoint edges again", lambda: len(_edges(page)) == 3, 10)


def test_requests_to_the_node_port_raise_the_counters(cluster: Cluster, page: Any) -> None:
    before = int(_svc(page)["data-packets"])
    edges_before = sum(int(e["data-packets"]) for e in _edges(page))
    ip = sorted(cluster.node_ips().values())[0]
    for _ in range(20):  # bounded: 20 requests from the host to a node IP on podnet's own bridge
        assert "front-end" in http_get(f"http://{ip}:30008/")
    wait_for("the Service counter to rise by the requests' packets",
             lambda: int(_svc(page)["data-packets"]) >= before + 20, 5)
    wait_for("the edge counters to rise",
             lambda: sum(int(e["data-packets"]) for e in _edges(page)) >= edges_before + 20, 5)
    labels = [t["text"] for t in _drawn(page, f'text.edge-label[data-svc="{SVC}"]')]
    assert len(labels) == 3 and all(re.match(r"^\d+", t) for t in labels), labels
    assert re.search(r"\d+ pk", _svc(page)["text"])
    _shot(page, "traffic")


def test_trace_from_outside_to_the_node_port_ends_on_front_end_pods(cluster: Cluster, page: Any) -> None:
    ip = sorted(cluster.node_ips().values())[0]
    Select(page.find_element(By.ID, "trace-source")).select_by_value("outside")
    dest = page.find_element(By.ID, "trace-dest")
    dest.clear()
    dest.send_keys(f"{ip}:30008")
    page.find_element(By.ID, "trace-go").click()
    out = page.find_element(By.ID, "trace-out")
    wait_for("the trace", lambda: out.get_attribute("data-done") == "ok", 20)
    text = out.get_attribute("textContent")
    assert f"to {ip}:30008" in text and "DNAT" in text and "myapp-service" in text
    front = {f"default/{p['metadata']['name']}" for p in cluster.ready_pods("app=myapp,type=front-end")}
    wait_for("the candidate pods highlighted",
             lambda: {e["data-name"] for e in _drawn(page, "g.pod.hl")} == front, 5)
    assert len(_drawn(page, f'path.edge.hl[data-svc="{SVC}"]')) == 3
    entry = [name for name, addr in cluster.node_ips().items() if addr == ip]  # the node the packet enters
    assert [n["data-name"] for n in _drawn(page, "g.node.hl")] == entry
    _shot(page, "trace")


def test_everything_shown_is_escaped(cluster: Cluster, page: Any) -> None:
    evil = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
    cluster.apply({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "ui-escape", "namespace": "default", "annotations": {"note": evil}},
                   "spec": {"containers": [{"name": "c", "image": "podnet/demo-frontend:1.0",
                                            "command": ["sh", "-c", f"echo '{evil}'; sleep 3600"]}]}})
    try:
        wait_for("the pod drawn", lambda: _drawn(page, 'g.pod[data-name="default/ui-escape"]'), 10)
        _click(page, 'g.pod[data-name="default/ui-escape"] rect')
        panel = page.find_element(By.ID, "object-yaml")
        wait_for("the YAML panel", lambda: "annotations" in panel.get_attribute("textContent"), 10)
        text = panel.get_attribute("textContent")
        # shown as text, in the annotation and in the container command
        assert "name: ui-escape" in text
        assert text.count("<script>window.__pwned=1</script><img src=x onerror=") >= 2, text
        assert "sleep 3600" in text
        assert "# Events" in text
        assert page.find_elements(By.CSS_SELECTOR, "#object-yaml *") == []  # no element made from data
        assert page.execute_script("return window.__pwned === undefined")
        _shot(page, "escaping")
    finally:
        cluster.kubectl("delete", "pod", "ui-escape", "--wait=false", check=False)


def test_unauthenticated_requests_get_401(page: Any, link: str) -> None:
    base = link.split("/?", 1)[0]
    for path in ("/", "/api/view", "/app.js"):
        with pytest.raises(Exception) as e:
            http_get(base + path)
        assert "401" in str(e.value), path
    with pytest.raises(Exception) as e:
        http_get(link)  # the link was used by the browser: once only
    assert "401" in str(e.value)
