"""NetworkPolicy truth tables, in the style of Kubernetes' netpol e2e suite (test/e2e/network/netpol):
namespaces x, y, z (suffixed per test run) with pods a, b, c, each serving TCP 80, TCP 81 and UDP 80
(agnhost serve-hostname, named container ports serve-80-tcp, serve-81-tcp, serve-80-udp), and the
9x9 reachability matrix probed with real packets from inside every pod's network namespace.

Probes run concurrently: one short-lived prober process per source pod (entered with nsenter into the
pod's namespace) tries all 9 targets on one port at once, with a short timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from cluster_support import Cluster

PODS = ("a", "b", "c")
PROBE_TIMEOUT = 1.0

PROBER = r"""
import asyncio, json, socket, sys
targets, proto, port, timeout = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
async def tcp(ip):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
        if proto == "tcp-connect":  # a server that does not speak first (TLS): the handshake is the answer
            w.close()
            return True
        data = await asyncio.wait_for(r.read(200), timeout)
        w.close()
        return bool(data)
    except (OSError, asyncio.TimeoutError):
        return False
async def udp(ip):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            if not fut.done(): fut.set_result(True)
        def error_received(self, exc):
            if not fut.done(): fut.set_result(False)
    t, _ = await loop.create_datagram_endpoint(P, remote_addr=(ip, port))
    try:
        for _ in range(3):
            t.sendto(b"hostname")
            try:
                return await asyncio.wait_for(asyncio.shield(fut), timeout / 3)
            except asyncio.TimeoutError:
                continue
        return False
    finally:
        t.close()
async def main():
    fn = udp if proto == "udp" else tcp
    res = await asyncio.gather(*(fn(ip) for ip in targets))
    print(json.dumps(res))
asyncio.run(main())
"""


@dataclass
class Model:
    """The test's namespaces and pods: `ns` maps the short name (x, y, z) to the real namespace."""

    cluster: Cluster
    ns: dict[str, str]
    ips: dict[str, str]  # "x/a" → pod IP
    netns: dict[str, str]  # "x/a" → the pod's network namespace

    @property
    def names(self) -> list[str]:
        return [f"{n}/{p}" for n in ("x", "y", "z") for p in PODS]

    def real(self, short: str) -> str:
        n, p = short.split("/")
        return f"{self.ns[n]}/{p}"


def pod_manifest(ns: str, name: str) -> dict[str, Any]:
    def container(port: int, udp: bool) -> dict[str, Any]:
        ports = [{"name": f"serve-{port}-tcp", "containerPort": port, "protocol": "TCP"}]
        if udp:
            ports.append({"name": f"serve-{port}-udp", "containerPort": port, "protocol": "UDP"})
        args = ["serve-hostname", "--port", str(port), "--tcp", "--http=false"] + (["--udp"] if udp else [])
        return {"name": f"cont-{port}", "image": "registry.k8s.io/e2e-test-images/agnhost:2.52",
                "args": args, "ports": ports}

    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}},
            "spec": {"containers": [container(80, True), container(81, False)]}}


def setup_model(c: Cluster, suffix: str) -> Model:
    ns = {n: f"{n}-{suffix}" for n in ("x", "y", "z")}
    for short, real in ns.items():
        c.apply({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": real, "labels": {"ns": short}}})
    for real in ns.values():
        for p in PODS:
            c.apply(pod_manifest(real, p))
    deadline = time.monotonic() + 120
    ips: dict[str, str] = {}
    netns: dict[str, str] = {}
    while time.monotonic() < deadline:
        ips.clear()
        for short, real in ns.items():
            for pod in c.get_json("pods", "-n", real)["items"]:
                ready = any(cd["type"] == "Ready" and cd["status"] == "True"
                            for cd in pod["status"].get("conditions", []))
                if ready and pod["status"].get("podIP"):
                    key = f"{short}/{pod['metadata']['name']}"
                    ips[key] = pod["status"]["podIP"]
                    netns[key] = f"pn-{c.name}-pod-{pod['metadata']['uid']}"
        if len(ips) == 9:
            return Model(c, ns, dict(ips), dict(netns))
        time.sleep(1)
    raise AssertionError(f"the 9 pods did not become ready: {sorted(ips)}")


Matrix = dict[tuple[str, str], bool]


def probe(m: Model, proto: str, port: int, targets: dict[str, str] | None = None) -> Matrix:
    """Real packets from every pod to every target (default: the 9 pods) on one port: who answered."""
    dests = targets if targets is not None else {k: m.ips[k] for k in m.names}
    names = list(dests)
    procs = {}
    for src in m.names:
        argv = ["nsenter", f"--net=/run/netns/{m.netns[src]}", sys.executable, "-c", PROBER,
                json.dumps([dests[n] for n in names]), proto, str(port), str(PROBE_TIMEOUT)]
        procs[src] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: Matrix = {}
    for src, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, f"prober in {src} failed: {stderr}"
        for dst, ok in zip(names, json.loads(stdout), strict=True):
            out[(src, dst)] = bool(ok)
    return out


def expect(m: Model, allowed: Any) -> Matrix:
    """The expected matrix from a predicate `allowed(src, dst) -> bool` over short names; a pod
    always reaches itself."""
    return {(s, d): s == d or bool(allowed(s, d)) for s in m.names for d in m.names}


def show(got: Matrix, want: Matrix, names: list[str]) -> str:
    """The two matrices side by side, as the Kubernetes suite prints them ('X' = wrong cell)."""
    head = "      " + " ".join(f"{d:>4}" for d in names)
    lines = [head]
    for s in names:
        cells = []
        for d in names:
            g, w = got[(s, d)], want[(s, d)]
            cells.append(f"{'.' if g else 'x'}{'' if g == w else '!'}".rjust(4))
        lines.append(f"{s:>5} " + " ".join(cells))
    return "\n".join(lines) + "\n('.' reached, 'x' blocked, '!' differs from the expected matrix)"


def check(m: Model, want: Matrix, proto: str = "tcp", port: int = 80, tries: int = 3) -> None:
    """Probe until the matrix matches (rules take effect within the programming latency), or fail
    with both matrices."""
    got: Matrix = {}
    for _ in range(tries):
        got = probe(m, proto, port)
        if got == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"{proto}/{port} reachability differs from the expected matrix:\n"
                         f"{show(got, want, m.names)}")


def netpol(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}
