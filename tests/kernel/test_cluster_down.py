"""`podnet down` after `kill -9` of every podnet process leaves no namespace, link, route or process behind.

The cluster is made by `up` (real kernel objects) with a stand-in control plane; stand-in agents run in
their node namespaces the way real ones do (record in the journal, then make a pod namespace and wire it).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netns_tools import echo_server

from podnet.cluster.procs import is_same_process, start_process
from podnet.cluster.up import UpOptions, up
from podnet.core import journal as jr
from podnet.core.config import ClusterConfig
from podnet.core.layout import plan_nodes
from podnet.net.nsthread import netns_exec_argv
from podnet.net.real import RealNetOps

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

STUB_CP = r"""
import http.server, json, os, subprocess, sys
cfg = json.load(open(os.path.join(os.environ["PODNET_STATE_ROOT"], "clusters", sys.argv[1], "config.json")))
# a child nobody records: only the cluster's cgroup knows about it
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(os.path.join(os.environ["PODNET_STATE_ROOT"], "grandchild.pid"), "w").write(str(child.pid))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", cfg["api_port"]), H).serve_forever()
"""

STUB_AGENT = r"""
import sys, time
from podnet.core.journal import Journal
from podnet.net.cni import add_pod_network
from podnet.net.real import RealNetOps
state_dir, pod_ns, pod_ip, host_if = sys.argv[1:5]
Journal(state_dir).record("netns", pod_ns)
add_pod_network(RealNetOps(), node_netns=None, pod_netns=pod_ns, pod_ip=pod_ip, host_if=host_if)
print("wired", flush=True)
time.sleep(120)
"""


def snapshot() -> dict[str, set[str]]:
    def lines(*cmd: str) -> set[str]:
        return set(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines())

    return {
        "netns": {x.split()[0] for x in lines("ip", "netns", "list") if x},
        "links": {x.split(":")[1].strip().split("@")[0] for x in lines("ip", "-o", "link")},
        "routes": lines("ip", "route"),
    }


def podnet_down(name: str) -> subprocess.CompletedProcess[str]:
    """`podnet down --name NAME` in a fresh process (nothing of this test's process helps it)."""
    cli = "from podnet.cli.main import main; raise SystemExit(main())"
    return subprocess.run(
        [sys.executable, "-c", cli, "down", "--name", name],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_down_after_kill_9_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODNET_STATE_ROOT", str(tmp_path))
    name = f"k{os.getpid() % 10000}{secrets.token_hex(2)}"
    ops = RealNetOps()
    before = snapshot()
    cfg: ClusterConfig | None = None
    try:
        cfg = up(
            UpOptions(
                name=name,
                nodes=2,
                start_agents=False,
                wait_timeout=20,
                controlplane_argv=lambda c: [sys.executable, "-c", STUB_CP, c.name],
            ),
            ops,
        )
        journal = jr.Journal(cfg.state_dir)
        agents = []
        for i, node in enumerate(plan_nodes(cfg)):
            pod_ns = f"pn-{name}-pod-{i}"
            argv = netns_exec_argv(
                node.netns,
                [
                    sys.executable,
                    "-c",
                    STUB_AGENT,
                    str(cfg.state_dir),
                    pod_ns,
                    f"10.244.{i + 1}.2",
                    f"pnp{name}{i}"[:15],
                ],
            )
            agents.append(
                start_process(journal, f"agent-{node.name}", argv, cfg.state_dir / "logs" / f"a{i}.log")
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
            "wired" in (cfg.state_dir / "logs" / f"a{i}.log").read_text() for i in range(2)
        ):
            time.sleep(0.1)
        table = f"podnet_{name}"  # a host nft table, as a proxy in the host namespace would record it
        journal.record(jr.NFT, f"inet {table}", netns=None)
        subprocess.run(["nft", "add", "table", "inet", table], check=True, timeout=10)
        during = snapshot()
        # the host reaches node IPs over the cluster's bridge ...
        node1 = plan_nodes(cfg)[0]
        addr = (node1.ip, 8099)
        with echo_server(node1.netns, node1.ip, 8099), socket.create_connection(addr, timeout=3) as c:
            assert c.recv(100).decode() == cfg.host_ip
        # ... and, while the cluster is up, the kernel refuses host routes into the pod and service CIDRs
        for ip in ("10.244.1.5", "10.96.0.10"):
            r = subprocess.run(["ip", "route", "get", ip], capture_output=True, text=True, timeout=10)
            assert r.returncode != 0 and "No route to host" in r.stderr, (ip, r.stdout, r.stderr)
        made_netns = during["netns"] - before["netns"]
        assert {
            f"pn-{name}-node-1",
            f"pn-{name}-node-2",
            f"pn-{name}-pod-0",
            f"pn-{name}-pod-1",
        } <= made_netns
        assert cfg.bridge in during["links"]
        grandchild = int((tmp_path / "grandchild.pid").read_text())

        # a crash: every podnet process dies at once
        procs = [(e.attrs["pid"], e.attrs["starttime"]) for e in journal.entries(jr.PROCESS)]
        assert len(procs) == 4  # the control plane, its supervisor, two agents
        for pid, _ in procs:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)

        r = podnet_down(name)
        assert r.returncode == 0, r.stderr
        assert f"cluster {name}: removed" in r.stderr
        after = snapshot()
        assert {n for n in after["netns"] - before["netns"] if name in n} == set()
        assert cfg.bridge not in after["links"]
        assert {lk for lk in after["links"] - before["links"] if lk.startswith("pn")} == set()
        assert {
            rt for rt in after["routes"] - before["routes"] if str(cfg.route_metric) in rt
        } == set()
        assert not any(is_same_process(pid, st) for pid, st in procs)
        assert (
            not os.path.exists(f"/proc/{grandchild}") or "Z" in Path(f"/proc/{grandchild}/stat").read_text()
        )
        assert not cfg.state_dir.exists()
        nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10).stdout
        assert table not in nft
        # idempotent
        r = podnet_down(name)
        assert r.returncode == 0 and "does not exist" in r.stderr
    finally:
        if cfg is not None and cfg.state_dir.exists():
            from podnet.cluster.down import teardown

            teardown(name, ops)
        ops.close()
