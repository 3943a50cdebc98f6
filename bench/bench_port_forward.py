"""Benchmark: throughput through `kubectl port-forward` against a direct connection to the same pod.

    sudo .venv/bin/python bench/bench_port_forward.py [--mb 200] [--rounds 6] [-o json]

Brings up a 1-node cluster of its own (a private state root), starts a pod whose server sends a fixed
number of bytes on each connection, then alternates rounds: (a) the host downloads through
`kubectl port-forward` as kubectl v1.31+ does by default, SPDY tunnelled in a WebSocket
(127.0.0.1 -> API server -> node agent -> the pod's loopback), (b) the same through a second
`kubectl port-forward` with KUBECTL_PORT_FORWARD_WEBSOCKETS=false, a plain `Upgrade: SPDY/3.1`,
(c) a client in the node's own network namespace downloads straight from the pod's IP (the data plane
alone, the baseline). All clients are the same Python program; every round is bounded in bytes and
time. The cluster is removed at the end, also when a round fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from common import PODNET, Figure, Report

SERVER = """
import socket, sys, threading
size = int(sys.argv[1]); block = bytes(range(256)) * 256
def send(c):
    left = size
    while left:
        n = min(left, len(block)); c.sendall(block[:n]); left -= n
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7001)); s.listen(8)
while True:
    c, _ = s.accept(); threading.Thread(target=send, args=(c,), daemon=True).start()
"""
CLIENT = """
import socket, sys, time
t0 = time.perf_counter(); n = 0
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60) as s:
    while (b := s.recv(1 << 20)):
        n += len(b)
print(n, time.perf_counter() - t0)
"""


def run(argv: list[str], env: dict[str, str], timeout: float = 180) -> str:
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... failed: {res.stderr.strip()}")
    return res.stdout


def download(argv_prefix: list[str], host: str, port: int, env: dict[str, str], size: int) -> float:
    out = run([*argv_prefix, sys.executable, "-c", CLIENT, host, str(port)], env)
    got, seconds = out.split()
    if int(got) != size:
        raise RuntimeError(f"received {got} bytes, expected {size}")
    return size / float(seconds) / 2**20


def start_forward(kubectl: list[str], env: dict[str, str]) -> tuple[int, subprocess.Popen[str]]:
    """`kubectl port-forward pod/blob :7001` with `env`; the local port it listens on, and the process."""
    forward = subprocess.Popen([*kubectl, "port-forward", "--address", "127.0.0.1", "pod/blob", ":7001"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert forward.stdout is not None
    line = forward.stdout.readline()
    found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
    if not found:
        forward.kill()
        raise RuntimeError(f"kubectl port-forward did not start: {line}")
    return int(found.group(1)), forward


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="bytes per download, in MiB (default 200)")
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds of each kind (default 6)")
    ap.add_argument("-o", dest="output", choices=["table", "json"], default="table")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    size = args.mb * 2**20
    root = tempfile.mkdtemp(prefix="pnbenchpf")
    name = f"bpf{os.getpid() % 100000}"
    env = dict(os.environ, PODNET_STATE_ROOT=root)
    kubeconfig = f"{root}/clusters/{name}/kubeconfig"
    kubectl = ["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", f"{root}/kcache"]
    report = Report("port-forward throughput")
    forwards: list[subprocess.Popen[str]] = []
    try:
        print(f"bringing up cluster {name} ...", file=sys.stderr, flush=True)
        run([*PODNET, "up", "--name", name, "--nodes", "1"], env)
        ready = {"tcpSocket": {"port": 7001}, "periodSeconds": 1}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "blob"},
               "spec": {"containers": [{"name": "blob", "image": "busybox", "readinessProbe": ready,
                                        "command": ["python3", "-c", SERVER, str(size)]}]}}
        subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod), text=True, check=True,
                       capture_output=True, timeout=60)
        run([*kubectl, "wait", "--for=condition=Ready", "pod/blob", "--timeout=90s"], env)
        got = json.loads(run([*kubectl, "get", "pod", "blob", "-o", "json"], env))
        pod_ip, node = got["status"]["podIP"], got["spec"]["nodeName"]
        tunnelled, forward = start_forward(kubectl, env)
        forwards.append(forward)
        plain, forward = start_forward(kubectl, dict(env, KUBECTL_PORT_FORWARD_WEBSOCKETS="false"))
        forwards.append(forward)
        in_node = [*PODNET, "node-exec", "--name", name, node, "--"]
        through, spdy, direct = [], [], []
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
            through.append(download([], "127.0.0.1", tunnelled, env, size))
            spdy.append(download([], "127.0.0.1", plain, env, size))
            direct.append(download(in_node, pod_ip, 7001, env, size))
        report.add(Figure("port-forward", f"download {args.mb} MiB through kubectl port-forward, SPDY in a "
                          f"WebSocket (median of {args.rounds})", statistics.median(through), "MiB/s",
                          statistics.median(direct), "direct from the node to the pod IP, same run",
                          higher_is_better=True, extra={"through": through, "direct": direct}))
        report.add(Figure("port-forward-spdy", f"download {args.mb} MiB through kubectl port-forward, plain "
                          f"SPDY/3.1 upgrade (median of {args.rounds})", statistics.median(spdy), "MiB/s",
                          statistics.median(through), "SPDY tunnelled in a WebSocket, same run",
                          higher_is_better=True, extra={"plain_spdy": spdy}))
    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError, ValueError) as e:
        report.errors.append(str(e))
        print(f"error: {e}", file=sys.stderr)
    finally:
        for forward in forwards:
            forward.terminate()
            forward.wait(timeout=10)
        subprocess.run([*PODNET, "down", "--name", name], env=env, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
    report.print(args.output == "json")
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
