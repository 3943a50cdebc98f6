"""`kubectl top` and the Python client against metrics.k8s.io, from the pods' real CPU and memory use.

A 1-node cluster runs a pod that keeps one CPU busy and holds 64 MiB, and an idle pod; both are bounded
(`activeDeadlineSeconds`) and removed with the cluster.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest
from cluster_support import Cluster, running_cluster, wait_for

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("kubectl-top-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

BURN = "import time\nx = bytearray(64 << 20)\nx[::4096] = b'x' * len(x[::4096])\nend = time.time() + 300\n" \
       "while time.time() < end:\n    pass\n"


def _pod(name: str, command: list[str]) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"top": name}},
            "spec": {"activeDeadlineSeconds": 600, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": command}]}}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("top", "--nodes", "1") as c:
        c.apply(_pod("burner", ["python3", "-c", BURN]))
        c.apply(_pod("idler", ["sleep", "600"]))
        c.wait_ready("top in (burner,idler)", 2)
        yield c


def _top_pods(c: Cluster) -> dict[str, tuple[int, int]]:
    res = c.kubectl("top", "pods", "--no-headers", check=False)
    out: dict[str, tuple[int, int]] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"(\S+)\s+(\d+)m\s+(\d+)Mi", line)
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def test_top_pods_shows_the_real_cpu_and_memory_use(cluster: Cluster) -> None:
    def both() -> dict[str, tuple[int, int]] | None:
        t = _top_pods(cluster)
        return t if {"burner", "idler"} <= t.keys() else None

    got = wait_for("both pods in kubectl top", both, timeout=60, interval=2)
    burner_cpu, burner_mem = got["burner"]
    idler_cpu, idler_mem = got["idler"]
    assert burner_cpu >= 100, got  # one busy loop: a good share of a core, even on a loaded 2-core machine
    assert idler_cpu <= 20, got
    assert burner_mem >= 64, got  # the 64 MiB it touched
    assert idler_mem < 32, got


def test_top_nodes_and_a_missing_pod(cluster: Cluster) -> None:
    def nodes() -> str | None:  # "metrics not available yet" until the agent has two samples
        res = cluster.kubectl("top", "nodes", "--no-headers", check=False)
        return res.stdout if res.returncode == 0 else None

    name, cpu, cpu_pct, mem = wait_for("node metrics", nodes, timeout=30, interval=2).split()[:4]
    assert name.startswith(cluster.name) and cpu.endswith("m") and int(cpu[:-1]) >= 100
    assert cpu_pct.endswith("%") and mem.endswith("Mi") and int(mem[:-2]) >= 64
    res = cluster.kubectl("top", "pod", "no-such-pod", check=False)
    assert res.returncode != 0
    assert ('Error from server (NotFound): podmetrics.metrics.k8s.io "default/no-such-pod" not found'
            in res.stderr)


def test_python_client_reads_pod_metrics(cluster: Cluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    api_client = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    try:
        api = kubernetes.client.CustomObjectsApi(api_client)
        def burner() -> dict[str, object] | None:
            got = api.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods",
                                                   label_selector="top=burner")
            return got if got["items"] else None  # no CPU rate between two samples yet

        got = wait_for("the burner's metrics", burner, timeout=30, interval=1)
        assert got["kind"] == "PodMetricsList"
        assert [i["metadata"]["name"] for i in got["items"]] == ["burner"]
        usage = got["items"][0]["containers"][0]["usage"]
        assert usage["cpu"].endswith("n") and usage["memory"].endswith("Ki")
        node = api.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"][0]
        assert node["kind"] == "NodeMetrics" and node["window"].endswith("s")
    finally:
        api_client.close()
