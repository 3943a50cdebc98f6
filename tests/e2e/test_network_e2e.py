"""The pod network of a real cluster, in both network modes: every pod reaches every pod on every node
with its own source address (no NAT), a node reaches pods with the node's address, a pod reaches a node
with the pod's address. One pod per node is pinned with `nodeName`; a hostNetwork pod on each node
stands for "a server on the node". Traffic stays inside the cluster's own namespaces.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from cluster_support import Cluster, running_cluster

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


def _pinned_pods(nodes: list[str]) -> str:
    docs = []
    for i, node in enumerate(nodes):
        docs.append(f"""
apiVersion: v1
kind: Pod
metadata:
  name: net-{i}
  labels: {{app: net}}
spec:
  nodeName: {node}
  containers:
  - name: netexec
    image: {AGNHOST}
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
    readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata:
  name: hostnet-{i}
  labels: {{app: hostnet}}
spec:
  nodeName: {node}
  hostNetwork: true
  containers:
  - name: netexec
    image: {AGNHOST}
    args: ["netexec", "--http-port=8090", "--udp-port=-1"]
    readinessProbe: {{httpGet: {{path: /healthz, port: 8090}}, periodSeconds: 1}}
""")
    return "---".join(docs)


@pytest.fixture(scope="module", params=["host-gw", "vxlan"])
def net_cluster(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    mode = str(request.param)
    with running_cluster("net" + mode.replace("-", "")[:2], "--nodes", "3", "--network", mode) as c:
        nodes = sorted(c.node_ips())
        manifest = tmp_path_factory.mktemp("net") / "pods.yaml"
        manifest.write_text(_pinned_pods(nodes))
        c.kubectl("apply", "-f", str(manifest))
        c.wait_ready("app=net", 3)
        c.wait_ready("app=hostnet", 3)
        yield c


def _clientip(c: Cluster, from_pod: str, url: str) -> str:
    out = c.podnet("exec", "--name", c.name, from_pod, "--", "curl", "-s", "--max-time", "3", url).stdout
    return out.strip().rsplit(":", 1)[0]


def test_every_pod_reaches_every_pod_with_its_own_address(net_cluster: Cluster) -> None:
    pods = {p["metadata"]["name"]: p for p in net_cluster.ready_pods("app=net")}
    assert len({p["spec"]["nodeName"] for p in pods.values()}) == 3
    for src_name, src in pods.items():
        for dst in pods.values():
            seen = _clientip(net_cluster, src_name, f"http://{dst['status']['podIP']}:8080/clientip")
            assert seen == src["status"]["podIP"], (src_name, dst["metadata"]["name"])


def test_pod_to_node_keeps_the_pod_address(net_cluster: Cluster) -> None:
    ips = net_cluster.node_ips()
    src = sorted(net_cluster.ready_pods("app=net"), key=lambda p: p["metadata"]["name"])[0]
    for node, ip in ips.items():
        seen = _clientip(net_cluster, src["metadata"]["name"], f"http://{ip}:8090/clientip")
        assert seen == src["status"]["podIP"], node


def test_node_to_pod_shows_the_node_address(net_cluster: Cluster) -> None:
    ips = net_cluster.node_ips()
    for pod in net_cluster.ready_pods("app=net"):
        for node, node_ip in ips.items():
            out = net_cluster.podnet("node-exec", "--name", net_cluster.name, node, "--", "curl", "-s",
                                     "--max-time", "3",
                                     f"http://{pod['status']['podIP']}:8080/clientip").stdout
            assert out.strip().rsplit(":", 1)[0] == node_ip, (node, pod["metadata"]["name"])
