"""The pod network of a real cluster, in both network modes: every pod reaches every pod on every node
with its own source address (no NAT), a node reaches pods with the node's address, a pod reaches a node
with the pod's address. One pod per node is pinned with `nodeName`; a hostNetwork pod on each node
stands for "a server on the node". Traffic stays inside the cluster's own namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from cluster_support import Cluster, running_cluster

from podnet.core.naming import node_netns, pod_netns

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


CONNECT = """
import errno, json, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
t = time.monotonic()
try:
    with socket.create_connection((host, port), timeout=2.0) as s:
        s.sendall(b"GET /hostname HTTP/1.0\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    out = {"ok": data.split(b"\\r\\n\\r\\n", 1)[-1].decode()}
except (TimeoutError, socket.timeout):
    out = {"err": "timeout"}
except OSError as e:
    out = {"err": errno.errorcode.get(e.errno or 0, str(e))}
out["t"] = time.monotonic() - t
print(json.dumps(out))
"""

SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: net}
spec:
  selector: {app: net}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nothing}
spec:
  selector: {app: nothing-has-this-label}
  ports: [{port: 80, targetPort: 8080}]
"""


def _connect(netns: str, host: str, port: int) -> dict[str, object]:
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", CONNECT, host, str(port)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    got: dict[str, object] = json.loads(out)
    return got


def test_services_answer_refuse_and_drop_from_nodes_and_pods_as_trace_says(
        net_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 16: a node's own namespace reaches ClusterIPs; no endpoints / an undefined port are
    refused at once and an unallocated service address times out, from nodes and pods alike."""
    c = net_cluster
    manifest = tmp_path_factory.mktemp("svc") / "svcs.yaml"
    manifest.write_text(SERVICES)
    c.kubectl("apply", "-f", str(manifest))
    net_ip = c.get_json("svc", "net")["spec"]["clusterIP"]
    empty_ip = c.get_json("svc", "nothing")["spec"]["clusterIP"]
    pods = {p["metadata"]["name"]: p for p in c.ready_pods("app=net")}
    wanted = {"net": "ok", "refused": "ECONNREFUSED", "port": "ECONNREFUSED", "free": "timeout"}
    unallocated = "10.111.222.33"  # in the default service CIDR 10.96.0.0/12, held by no Service
    targets = {"net": (net_ip, 80), "refused": (empty_ip, 80), "port": (net_ip, 81),
               "free": (unallocated, 80)}
    sources = [(node, node_netns(c.name, node)) for node in sorted(c.node_ips())]
    first = sorted(pods)[0]
    sources.append((first, pod_netns(c.name, pods[first]["metadata"]["uid"])))
    for src, netns in sources:
        for what, (ip, port) in targets.items():
            got = wait_for_service(netns, ip, port) if what == "net" else _connect(netns, ip, port)
            tr = json.loads(c.podnet("trace", "--name", c.name, "--from", src, f"{ip}:{port}", "-o",
                                     "json").stdout)
            if wanted[what] == "ok":
                assert str(got.get("ok", "")).strip() in pods, (src, what, got)
                assert tr["verdict"] == "accept" and tr["candidates"], (src, what, tr)
            else:
                assert got.get("err") == wanted[what], (src, what, got)
                assert tr["verdict"] == {"ECONNREFUSED": "reject", "timeout": "drop"}[wanted[what]], tr
                if wanted[what] == "ECONNREFUSED":
                    assert float(str(got["t"])) < 0.5, (src, what, got)


def wait_for_service(netns: str, ip: str, port: int) -> dict[str, object]:
    deadline = time.monotonic() + 20  # the Service is programmed on every node shortly after apply
    while True:
        got = _connect(netns, ip, port)
        if "ok" in got or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


HTTP_GET = """
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
        print(json.dumps({"status": r.status, "type": r.headers["Content-Type"], "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "type": e.headers["Content-Type"], "body": e.read().decode()}))
except OSError as e:
    print(json.dumps({"error": str(getattr(e, "reason", e))}))
"""


def _get(netns: str, url: str) -> dict[str, object]:
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", HTTP_GET, url],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    got: dict[str, object] = json.loads(out)
    return got


def test_proxy_health_and_metrics_endpoints_as_kube_proxy(net_cluster: Cluster) -> None:
    """/healthz on <node IP>:10256 reports the proxy's state; /metrics on 127.0.0.1:10249 is scraped from
    the node itself and cannot be reached from a pod."""
    c = net_cluster
    pod = sorted(c.ready_pods("app=net"), key=lambda p: p["metadata"]["name"])[0]
    pod_ns = pod_netns(c.name, pod["metadata"]["uid"])
    for node, ip in sorted(c.node_ips().items()):
        ns = node_netns(c.name, node)
        hz = _get(ns, f"http://{ip}:10256/healthz")
        assert (hz.get("status"), hz.get("type")) == (200, "application/json"), hz
        body = json.loads(str(hz["body"]))
        assert set(body) == {"lastUpdated", "currentTime", "nodeEligible"} and body["nodeEligible"] is True
        scraped = _get(ns, "http://127.0.0.1:10249/metrics")
        assert scraped.get("status") == 200, scraped
        count = next(ln for ln in str(scraped["body"]).splitlines()
                     if ln.startswith("kubeproxy_sync_proxy_rules_duration_seconds_count "))
        assert int(count.split()[1]) >= 1  # this node's proxy has synced its rules
        from_pod = _get(pod_ns, f"http://{ip}:10249/metrics")
        assert "connection refused" in str(from_pod.get("error", "")).lower(), from_pod
        assert _get(pod_ns, f"http://{ip}:10256/healthz").get("status") == 200  # status only, like kube-proxy
