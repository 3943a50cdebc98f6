"""E2E helpers for tests that run whole clusters: `Cluster` (podnet and kubectl against one cluster in a
private state root), `http_get`, and "machines": network namespaces on a private segment of their own,
used as other computers that `podnet join` a cluster.

Everything is named after the test process (os.getpid()) and removed in `finally` blocks by its callers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


class Cluster:
    def __init__(self, name: str, root: str):
        self.name = name
        self.root = root
        self.env = dict(os.environ, PODNET_STATE_ROOT=root)
        self.kubeconfig = f"{root}/clusters/{name}/kubeconfig"

    @property
    def state_dir(self) -> str:
        return f"{self.root}/clusters/{self.name}"

    def podnet(self, *args: str, timeout: float = 120, check: bool = True,
               prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*prefix, sys.executable, "-m", "podnet.cli.main", *args], env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"podnet {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def kubectl(self, *args: str, timeout: float = 60,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, "--cache-dir",
                              f"{self.root}/kcache", *args],
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any]) -> None:
        argv = ["kubectl", "--kubeconfig", self.kubeconfig, "--cache-dir", f"{self.root}/kcache",
                "apply", "-f", "-"]
        res = subprocess.run(argv, input=json.dumps(manifest), capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise AssertionError(f"kubectl apply failed:\n{res.stdout}\n{res.stderr}")

    def node_ips(self) -> dict[str, str]:
        out = {}
        for n in self.get_json("nodes")["items"]:
            for a in n["status"].get("addresses", []):
                if a["type"] == "InternalIP":
                    out[n["metadata"]["name"]] = a["address"]
        return out

    def node_ready(self, name: str) -> str:
        node = self.get_json("node", name)
        for c in node["status"].get("conditions", []):
            if c["type"] == "Ready":
                return str(c["status"])
        return ""

    def ready_pods(self, selector: str) -> list[dict[str, Any]]:
        pods = self.get_json("pods", "-l", selector)["items"]
        return [p for p in pods if p["metadata"].get("deletionTimestamp") is None and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", []))]

    def wait_ready(self, selector: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            pods = self.ready_pods(selector)
            if len(pods) >= count:
                return pods
            if time.monotonic() > deadline:
                all_pods = self.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
                raise AssertionError(f"only {len(pods)}/{count} ready for {selector}:\n{all_pods}")
            time.sleep(0.5)

    def stop_supervisor(self) -> None:
        """End the cluster's supervisor (podnet.cluster.supervise), so that a daemon a test kills stays
        dead until the test restarts it itself."""
        pid = self.journal_pid("supervisor")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)

    def journal_pid(self, label: str) -> int:
        """The PID `podnet up` recorded for process `label` (e.g. "controlplane", "agent-<node>")."""
        pid = 0
        with open(f"{self.state_dir}/journal.jsonl") as f:
            for line in f:
                item = json.loads(line)
                if item.get("kind") == "process" and item.get("name") == label and \
                        item.get("attrs", {}).get("pid"):
                    pid = int(item["attrs"]["pid"])
        if not pid:
            raise AssertionError(f"no PID recorded for {label} in {self.state_dir}/journal.jsonl")
        return pid


def http_get(url: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # node IPs on our own networks only
        body: bytes = resp.read()
        return body.decode()


def wait_for(what: str, fn: Any, timeout: float, interval: float = 0.5) -> Any:
    """Call fn() until it returns something truthy; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


# ---- machines on a private segment ----------------------------------------------------------------
def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=20)


def free_segment(used_routes: str, seed: int) -> ipaddress.IPv4Network:
    """A /24 in 172.28.0.0/16 that no route of the host overlaps."""
    taken = []
    for line in used_routes.splitlines():
        dst = line.split()[0] if line.split() else ""
        try:
            taken.append(ipaddress.IPv4Network(dst if dst != "default" else "0.0.0.0/32"))
        except ValueError:
            continue
    for i in range(256):
        net = ipaddress.IPv4Network(f"172.28.{(seed + i) % 256}.0/24")
        if not any(net.overlaps(t) for t in taken if t.prefixlen > 0):
            return net
    raise AssertionError("no free /24 in 172.28.0.0/16 for the test segment")


@dataclass
class Segment:
    """A bridge in the host namespace (the host holds .1) and machine namespaces on it (.11, .12, ...)."""

    tag: str
    net: ipaddress.IPv4Network
    machines: list[str]

    @property
    def bridge(self) -> str:
        return f"pjb{self.tag}"

    @property
    def host_ip(self) -> str:
        return str(self.net[1])

    def machine_ip(self, i: int) -> str:
        return str(self.net[11 + i])

    def netns(self, i: int) -> str:
        return f"pnj{self.tag}m{i}"

    def create(self, count: int) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.host_ip}/{self.net.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i in range(count):
            ns, host_if = self.netns(i), f"pjv{self.tag}{i}"
            self.machines.append(ns)
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "link", "set", host_if, "master", self.bridge, "up")
            for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "eth0", "up"],
                        ["ip", "addr", "add", f"{self.machine_ip(i)}/{self.net.prefixlen}", "dev", "eth0"],
                        # what a machine that runs pods needs (kubeadm checks ip_forward too)
                        ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
                        ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
                        ["sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"]):
                _run("nsenter", f"--net=/run/netns/{ns}", "--", *cmd)

    def destroy(self) -> None:
        for ns in self.machines:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=20)


def new_segment(tag: str, machines: int) -> Segment:
    """Choose a free /24 and create the segment with `machines` machines, under a machine-wide lock so two
    test processes never pick the same network. On failure, what was made is removed."""
    import fcntl

    with open("/tmp/podnet-test-segments.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        routes = subprocess.run(["ip", "route"], capture_output=True, text=True, timeout=10).stdout
        seg = Segment(tag, free_segment(routes, os.getpid()), [])
        try:
            seg.create(machines)
        except BaseException:
            seg.destroy()
            raise
    return seg


def in_machine(seg: Segment, i: int) -> tuple[str, ...]:
    return ("nsenter", f"--net=/run/netns/{seg.netns(i)}", "--")


@contextlib.contextmanager
def running_cluster(prefix: str, *up_args: str) -> Iterator[Cluster]:
    """`podnet up --name <prefix><pid> ...` in a fresh state root; on exit `podnet down`, and a check
    that no network namespace of the cluster was left behind."""
    root = tempfile.mkdtemp(prefix="pn" + prefix)
    c = Cluster(f"{prefix}{os.getpid() % 100000}", root)
    try:
        c.podnet("up", "--name", c.name, *up_args, timeout=180)
        yield c
    finally:
        c.podnet("down", "--name", c.name, timeout=120, check=False)
        shutil.rmtree(root, ignore_errors=True)
        left = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
                .stdout.split() if ns.startswith(f"pn-{c.name}-")]
        assert not left, f"podnet down left network namespaces behind: {left}"
