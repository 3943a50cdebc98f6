"""`kubectl port-forward` and the Python client's `portforward` through podnet's API server and node agent.

One 2-node cluster serves the module: a Deployment of two agnhost netexec pods behind a Service, and a
"blob" pod whose server (host python, inside the pod's namespaces) answers on two ports: 7000 reads
until the client half-closes and replies with the size and SHA-256 of what it got; 7001 sends 100 MB of
a known pattern and closes. Traffic goes only from 127.0.0.1 (kubectl's local listener) through the API
server and the agent into the pods.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from cluster_support import Cluster, running_cluster

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("port-forward-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
BIG = 100 * 1024 * 1024
PATTERN = bytes(range(256)) * 256  # 64 KiB
BLOB_SERVER = f"""
import hashlib, socket, threading
PATTERN = bytes(range(256)) * 256
def digest(c):
    h, n = hashlib.sha256(), 0
    while (b := c.recv(65536)):
        h.update(b); n += len(b)
    c.sendall(f"{{n}} {{h.hexdigest()}}\\n".encode()); c.close()
def blob(c):
    left = {BIG}
    while left:
        chunk = PATTERN[:min(left, len(PATTERN))]
        c.sendall(chunk); left -= len(chunk)
    c.close()
def serve(port, fn):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept(); threading.Thread(target=fn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(7000, digest), daemon=True).start()
serve(7001, blob)
"""


def _manifests() -> list[dict[str, object]]:
    labels = {"app": "pf-web"}
    container = {"name": "agnhost", "image": AGNHOST, "args": ["netexec", "--http-port=8080"],
                 "ports": [{"containerPort": 8080, "name": "http"}]}
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pf-web"},
           "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "pf-web"},
           "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}}
    blob = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pf-blob", "labels": {"app": "pf-blob"}},
            "spec": {"containers": [{"name": "blob", "image": "busybox",
                                     "command": ["python3", "-c", BLOB_SERVER],
                                     "readinessProbe": {"tcpSocket": {"port": 7001}, "periodSeconds": 1}}]}}
    return [web, svc, blob]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("pf", "--nodes", "2") as c:
        for m in _manifests():
            c.apply(m)
        c.wait_ready("app=pf-web", 2)
        c.wait_ready("app=pf-blob", 1)
        yield c


@contextlib.contextmanager
def forward(c: Cluster, target: str, *ports: str,
            spdy: bool = False) -> Iterator[tuple[list[int], subprocess.Popen[str]]]:
    """`kubectl port-forward TARGET :REMOTE...`; yields the local ports kubectl picked and the process.
    spdy: with KUBECTL_PORT_FORWARD_WEBSOCKETS=false, a plain `Upgrade: SPDY/3.1` instead of SPDY tunnelled
    in a WebSocket."""
    argv = ["kubectl", "--kubeconfig", c.kubeconfig, "--cache-dir", f"{c.root}/kcache", "port-forward",
            "--address", "127.0.0.1", target, *ports]
    env = dict(os.environ, KUBECTL_PORT_FORWARD_WEBSOCKETS="false") if spdy else None
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        local: list[int] = []
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while len(local) < len(ports) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> \d+", line)
            if found:
                local.append(int(found.group(1)))
        if len(local) < len(ports):
            proc.kill()
            raise AssertionError(f"kubectl port-forward did not start: {proc.communicate()[1]}")
        yield local, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    return body.decode()


def pod_names(c: Cluster, selector: str) -> set[str]:
    return {p["metadata"]["name"] for p in c.ready_pods(selector)}


def test_forward_to_a_pod_reaches_that_pod(cluster: Cluster) -> None:
    name = sorted(pod_names(cluster, "app=pf-web"))[0]
    with forward(cluster, f"pod/{name}", ":8080") as ([port], _):
        assert http(port, "/hostname") == name
        assert http(port, "/echo?msg=through-the-forward") == "through-the-forward"


def test_forward_to_a_deployment_and_a_service_port(cluster: Cluster) -> None:
    names = pod_names(cluster, "app=pf-web")
    with forward(cluster, "deployment/pf-web", ":8080") as ([port], _):
        assert http(port, "/hostname") in names
    # svc/pf-web port 80 -> targetPort "http" -> the pod's 8080, resolved by kubectl
    with forward(cluster, "svc/pf-web", ":80") as ([port], _):
        assert http(port, "/hostname") in names


def test_many_concurrent_connections_and_two_ports_in_one_session(cluster: Cluster) -> None:
    with forward(cluster, "pod/pf-blob", ":7000", ":7001") as ([digest_port, blob_port], _):
        def one(i: int) -> str:
            payload = f"connection {i} ".encode() * (1000 + i)
            with socket.create_connection(("127.0.0.1", digest_port), timeout=20) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)  # kubectl ends its side of the stream; the pod sees EOF
                answer = s.makefile().readline().split()
            assert answer == [str(len(payload)), hashlib.sha256(payload).hexdigest()]
            return answer[1]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert len(set(pool.map(one, range(24)))) == 24
        with socket.create_connection(("127.0.0.1", blob_port), timeout=20) as s:
            first = b""
            while len(first) < 1024:  # the second port of the same session answers too
                chunk = s.recv(1024 - len(first))
                assert chunk, "the second forwarded port closed before sending"
                first += chunk
            assert first == PATTERN[:1024]


@pytest.mark.parametrize("spdy", [False, True], ids=["websocket", "plain-spdy"])
def test_a_100_mb_transfer_arrives_intact(cluster: Cluster, spdy: bool) -> None:
    expected = hashlib.sha256()
    left = BIG
    while left:
        chunk = PATTERN[:min(left, len(PATTERN))]
        expected.update(chunk)
        left -= len(chunk)
    with forward(cluster, "pod/pf-blob", ":7001", spdy=spdy) as ([port], _):
        got, size = hashlib.sha256(), 0
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            while chunk := s.recv(1 << 20):
                got.update(chunk)
                size += len(chunk)
    assert size == BIG
    assert got.hexdigest() == expected.hexdigest()
    # and the other way: 100 MB up, the pod's digest back
    with forward(cluster, "pod/pf-blob", ":7000", spdy=spdy) as ([port], _), \
            socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        for _ in range(BIG // len(PATTERN)):
            s.sendall(PATTERN)
        s.shutdown(socket.SHUT_WR)
        answer = s.makefile().readline().split()
    assert answer == [str(BIG), expected.hexdigest()]


@pytest.mark.parametrize("spdy", [False, True], ids=["websocket", "plain-spdy"])
def test_nothing_listening_prints_kubernetes_connection_refused(cluster: Cluster, spdy: bool) -> None:
    name = sorted(pod_names(cluster, "app=pf-web"))[0]
    uid = cluster.get_json("pod", name)["metadata"]["uid"]
    with forward(cluster, f"pod/{name}", ":9999", spdy=spdy) as ([port], proc):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            assert s.recv(100) == b""  # closed without a byte
        _, err = proc.communicate(timeout=15)
    assert (f"an error occurred forwarding {port} -> 9999: error forwarding port 9999 to pod {uid}, uid : "
            "failed to connect to localhost:9999 inside namespace") in err
    assert "dial tcp4 127.0.0.1:9999: connect: connection refused" in err
    assert "error: lost connection to pod" in err


def test_plain_spdy_forward_to_a_pod_and_concurrent_connections(cluster: Cluster) -> None:
    """kubectl with KUBECTL_PORT_FORWARD_WEBSOCKETS=false: the API server answers the SPDY/3.1 upgrade."""
    name = sorted(pod_names(cluster, "app=pf-web"))[0]
    with forward(cluster, f"pod/{name}", ":8080", spdy=True) as ([port], _):
        assert http(port, "/hostname") == name
    with forward(cluster, "pod/pf-blob", ":7000", ":7001", spdy=True) as ([digest_port, blob_port], _):
        def up(i: int) -> None:
            payload = bytes((i + k) % 251 for k in range(4096)) * (64 + i)  # 256 KiB and more, per connection
            with socket.create_connection(("127.0.0.1", digest_port), timeout=30) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                answer = s.makefile().readline().split()
            assert answer == [str(len(payload)), hashlib.sha256(payload).hexdigest()]

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(up, range(12)))
        with socket.create_connection(("127.0.0.1", blob_port), timeout=20) as s:
            first = b""
            while len(first) < 4096:  # the second port of the same session
                chunk = s.recv(4096 - len(first))
                assert chunk, "the second forwarded port closed before sending"
                first += chunk
            assert first == PATTERN[:4096]


def test_missing_pod_and_bad_protocol_are_kubernetes_errors(cluster: Cluster) -> None:
    res = cluster.kubectl("port-forward", "pod/no-such-pod", "18099:80", check=False, timeout=20)
    assert res.returncode != 0
    assert 'pods "no-such-pod" not found' in res.stderr


def test_python_client_portforward(cluster: Cluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import portforward

    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=cluster.kubeconfig, client_configuration=cfg)
    api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))
    name = sorted(pod_names(cluster, "app=pf-web"))[0]
    pf = portforward(api.connect_get_namespaced_pod_portforward, name, "default", ports="8080")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /hostname HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    sock.close()
    assert data.split(b"\r\n\r\n", 1)[1].decode() == name
    assert pf.error(8080) is None

    pf = portforward(api.connect_get_namespaced_pod_portforward, name, "default", ports="9999")
    sock = pf.socket(9999)
    sock.setblocking(True)
    sock.settimeout(10)
    assert sock.recv(10) == b""
    err = pf.error(9999) or ""
    assert "dial tcp4 127.0.0.1:9999: connect: connection refused" in err
