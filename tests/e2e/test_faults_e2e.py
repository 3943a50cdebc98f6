"""Faults on a running cluster: the control plane killed with SIGKILL and restarted while agents run,
and one node's agent killed with SIGKILL. Services keep answering throughout (a bounded request loop
from the host to the NodePort on the node IPs sees no failure), agents resume their watches (a change
made after the restart reaches the data plane), and a node whose agent died goes NotReady with its
endpoints leaving the Services.

Traffic goes only from the host to node IPs on the cluster's own bridge.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import Cluster, http_get, running_cluster, wait_for

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("faults-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
# Seconds without a heartbeat before NotReady. Agents beat every 5 s; the control-plane restart below
# leaves up to ~15 s between two successful heartbeats, and the node controller judges heartbeat
# timestamps (not when it observed them), so a smaller grace would flap every node on the restart.
NODE_GRACE = 18

RESTART_CONTROLPLANE = """
import sys
from podnet.core import journal as jr
from podnet.cluster.cgroup import ClusterCgroup
from podnet.core.config import ClusterConfig
from podnet.cluster.procs import start_process
from podnet.cluster.up import controlplane_argv, wait_api_ready

cfg = ClusterConfig.load(sys.argv[1])
cg = ClusterCgroup.for_cluster(cfg.name)
cg = cg if cg is not None and cg.path.exists() and cg.usable else None
proc = start_process(jr.Journal(cfg.state_dir), "controlplane", controlplane_argv(cfg),
                     cfg.state_dir / "logs" / "controlplane.log", cgroup=cg)
wait_api_ready(cfg, proc, 30)
print(proc.pid)
"""


class RequestLoop:
    """GET /hostname on the NodePort of every given node IP in turn, from a thread, until stopped;
    bounded to `max_requests` and `max_seconds`."""

    def __init__(self, ips: list[str], port: int, *, max_requests: int = 2000, max_seconds: float = 90):
        self.urls = [f"http://{ip}:{port}/hostname" for ip in ips]
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.ok = 0
        self.failures: list[str] = []
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        i = 0
        while not self._stop.is_set() and i < self.max_requests and time.monotonic() < deadline:
            url = self.urls[i % len(self.urls)]
            i += 1
            try:
                self.seen.append(http_get(url, timeout=2.0).strip())
                self.ok += 1
            except (urllib.error.URLError, OSError) as e:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {url}: {e}")
            time.sleep(0.05)

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "steady"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "steady"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "netexec", "image": AGNHOST,
                         "args": ["netexec", "--http-port=8080", "--udp-port=-1"],
                         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                            "periodSeconds": 1}}]}}}}


def steady_app(c: Cluster, replicas: int) -> None:
    """A Deployment of agnhost pods behind the NodePort Service `steady`, all Ready."""
    c.apply(_deployment(replicas))
    c.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "steady"},
             "spec": {"type": "NodePort", "selector": {"app": "steady"},
                      "ports": [{"port": 80, "targetPort": 8080}]}})
    c.wait_ready("app=steady", replicas, timeout=60)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("flt", "--nodes", "3", "--node-grace", str(NODE_GRACE)) as c:
        c.stop_supervisor()  # these faults are about what happens while nothing restarts the daemons
        steady_app(c, 3)
        yield c


def _node_port(c: Cluster) -> int:
    return int(c.get_json("svc", "steady")["spec"]["ports"][0]["nodePort"])


def _endpoints(c: Cluster) -> list[dict[str, Any]]:
    return [e for s in c.get_json("endpointslices", "-l", "kubernetes.io/service-name=steady")["items"]
            for e in s.get("endpoints") or []]


def _heartbeat(c: Cluster, node: str) -> str:
    for cond in c.get_json("node", node)["status"]["conditions"]:
        if cond["type"] == "Ready":
            return str(cond.get("lastHeartbeatTime", ""))
    return ""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(f"PID {pid} to die", lambda: _gone(pid), timeout=5, interval=0.05)


def test_control_plane_killed_and_restarted_while_services_keep_answering(cluster: Cluster) -> None:
    c = cluster
    ips = sorted(c.node_ips().values())
    port = _node_port(c)
    nodes = sorted(c.node_ips())
    beats = {n: _heartbeat(c, n) for n in nodes}
    with RequestLoop(ips, port) as load:
        time.sleep(1.0)
        old = c.journal_pid("controlplane")
        _kill(old)
        time.sleep(2.0)  # the API is down; the data plane must not care
        down_ok = load.ok
        res = subprocess.run([sys.executable, "-c", RESTART_CONTROLPLANE, c.name], env=c.env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        new = int(res.stdout.split()[-1])
        assert new != old and c.journal_pid("controlplane") == new
        # every agent heartbeats the new control plane (their clients reconnected)
        wait_for("heartbeats after the restart", lambda: all(_heartbeat(c, n) > beats[n] for n in nodes),
                 timeout=20)
        # a change made after the restart reaches every node's rules (watches resumed)
        c.kubectl("scale", "deployment", "steady", "--replicas=5")
        want = {p["metadata"]["name"] for p in c.wait_ready("app=steady", 5, timeout=40)}
        wait_for("all 5 pods behind the NodePort on every node",
                 lambda: all({http_get(f"http://{ip}:{port}/hostname").strip() for _ in range(25)} == want
                             for ip in ips), timeout=20, interval=0.2)
    assert load.ok > down_ok > 0
    assert not load.failures, f"{len(load.failures)} of {load.ok + len(load.failures)} requests failed: " \
                              f"{load.failures[:5]}"


def test_a_killed_agent_makes_its_node_not_ready_and_traffic_moves_to_the_others(cluster: Cluster) -> None:
    c = cluster
    c.kubectl("scale", "deployment", "steady", "--replicas=3")
    # the scaled-down pods are gone, and so are their endpoints (a terminating pod stops answering
    # before every node's rules forget it, as in Kubernetes: that is not the fault under test)
    wait_for("the scale-down to finish", lambda: len(c.get_json("pods", "-l", "app=steady")["items"]) == 3
             and len(_endpoints(c)) == 3, timeout=40)
    time.sleep(1.0)
    pods = c.ready_pods("app=steady")
    assert len(pods) == 3
    by_node: dict[str, list[str]] = {}
    for p in pods:
        by_node.setdefault(p["spec"]["nodeName"], []).append(p["metadata"]["name"])
    victim = next(n for n in sorted(by_node) if len(by_node) > 1)
    survivors = {name for n, names in by_node.items() if n != victim for name in names}
    ips = c.node_ips()
    others = [ip for n, ip in sorted(ips.items()) if n != victim]
    port = _node_port(c)
    with RequestLoop(others, port) as load:
        _kill(c.journal_pid(f"agent-{victim}"))
        wait_for(f"{victim} NotReady", lambda: c.node_ready(victim) not in ("True", ""),
                 timeout=NODE_GRACE + 15)
        assert c.node_ready(victim) == "Unknown"
        out = c.kubectl("get", "node", victim).stdout
        assert "NotReady" in out

        def victim_endpoints_not_ready() -> bool:
            eps = _endpoints(c)
            mine = [e for e in eps if e.get("nodeName") == victim]
            return bool(mine) and all(not e["conditions"].get("ready") for e in mine) and \
                any(e["conditions"].get("ready") for e in eps if e.get("nodeName") != victim)

        wait_for(f"the endpoints on {victim} to be not ready", victim_endpoints_not_ready, timeout=15)
        time.sleep(1.0)  # the other nodes' proxies apply the change within a second
        mark = len(load.seen)
        time.sleep(3.0)
        after = set(load.seen[mark:])
    assert after and after <= survivors, (after, survivors)
    assert not load.failures, f"{len(load.failures)} requests failed: {load.failures[:5]}"
