"""Supervision of a running cluster (issue 19 #10): a control plane or an agent killed with SIGKILL is
back within 5 s, kubectl works right after, `podnet list` tells the truth throughout, and `podnet stop` +
`podnet start` (what a reboot of the machine needs) bring the cluster back with its objects and pods.

Traffic goes only to the API server on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import Cluster, running_cluster, wait_for

from podnet.cluster.procs import is_same_process, proc_starttime

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("supervise-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("sup", "--nodes", "2") as c:
        yield c


def _status(c: Cluster) -> dict[str, object]:
    rows = json.loads(c.podnet("list", "-o", "json").stdout)
    return next(r for r in rows if r["name"] == c.name)


def _restarted(c: Cluster, label: str, old: int, limit: float) -> tuple[int, float]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        pid = c.journal_pid(label)
        if pid != old and is_same_process(pid, proc_starttime(pid)):
            return pid, time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"{label} was not restarted within {limit}s")


def _kubectl_works(c: Cluster, tag: str) -> None:
    """Each command once: none may fail."""
    c.kubectl("create", "configmap", f"after-{tag}", "--from-literal=k=v")
    assert c.get_json("configmap", "before")["data"] == {"k": "v"}
    assert c.get_json("configmap", f"after-{tag}")["data"] == {"k": "v"}
    assert len(c.get_json("nodes")["items"]) == 2


def test_a_killed_control_plane_is_back_within_5s(cluster: Cluster) -> None:
    c = cluster
    c.kubectl("create", "configmap", "before", "--from-literal=k=v")
    assert _status(c)["status"] == "running" and _status(c)["supervised"] is True
    old = c.journal_pid("controlplane")
    os.kill(old, signal.SIGKILL)
    assert _status(c)["status"] in ("restarting", "running")  # never "broken": it is being brought back
    _pid, took = _restarted(c, "controlplane", old, 5.0)
    print(f"control plane restarted {took:.2f}s after kill -9")
    wait_for("the API", lambda: c.kubectl("get", "--raw", "/readyz", check=False).returncode == 0, timeout=20)
    _kubectl_works(c, "cp")
    assert _status(c)["status"] == "running"


def test_a_killed_agent_is_back_within_5s(cluster: Cluster) -> None:
    c = cluster
    node = sorted(c.node_ips())[0]
    old = c.journal_pid(f"agent-{node}")
    os.kill(old, signal.SIGKILL)
    _pid, took = _restarted(c, f"agent-{node}", old, 5.0)
    print(f"agent of {node} restarted {took:.2f}s after kill -9")
    wait_for("node Ready", lambda: c.node_ready(node) == "True", timeout=30)
    wait_for("status running", lambda: _status(c)["status"] == "running", timeout=30)


def test_stop_and_start_bring_the_cluster_back_with_its_objects_and_pods(cluster: Cluster) -> None:
    c = cluster
    c.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "keeper", "labels": {"app": "keeper"}},
             "spec": {"containers": [{"name": "app", "image": AGNHOST,
                                      "args": ["netexec", "--http-port=8080", "--udp-port=-1"]}]}})
    c.wait_ready("app=keeper", 1)
    c.kubectl("create", "configmap", "kept-over-stop", "--from-literal=k=v")
    c.podnet("stop", "--name", c.name)
    st = _status(c)
    assert st["status"] == "stopped" and st["processes_alive"] == 0 and st["supervised"] is False
    assert not any(ns.startswith(f"pn-{c.name}-") for ns in os.listdir("/run/netns"))
    assert c.kubectl("get", "nodes", check=False, timeout=10).returncode != 0
    t0 = time.monotonic()
    c.podnet("start", "--name", c.name, timeout=180)
    print(f"podnet start took {time.monotonic() - t0:.1f}s")
    assert _status(c)["status"] == "running"
    assert c.get_json("configmap", "kept-over-stop")["data"] == {"k": "v"}
    assert all(c.node_ready(n) == "True" for n in c.node_ips())
    c.wait_ready("app=keeper", 1, timeout=120)
    assert Path(c.state_dir, "store.db").exists()
