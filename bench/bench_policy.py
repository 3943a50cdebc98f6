"""NetworkPolicy benchmarks (root; scratch network namespaces only; bounded in time). Prints tables.

1. Sync of 1,000 policies over 1,000 pods (100 of them on the measured node, as the 110-pods
   scheduler cap allows): compute + render + `nft -f`, the whole PolicyRunner.sync_once, full and
   after one pod changed (a remote pod joining peer sets, a local pod changing labels).
2. Pod create → enforced: PolicyRunner.admit (what the pod runtime awaits before a pod's containers
   start) with the 1,000 policies loaded.
3. Connection setup (sequential connects) and iperf3 throughput pod → pod through the node with no
   policy table, with the table and 0 policies, and with 1,000 policies (the server and client pods
   selected by some of them). Conntrack is on in every case, as on a podnet node (the proxy's NAT).

Usage: sudo .venv/bin/python bench/bench_policy.py [--policies 1000] [--pods 1000] [--connects 400]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from podnet.client.client import ApiClient
from podnet.policy.compile import build_state
from podnet.policy.nft import RealPolicyNft
from podnet.policy.render import render_full
from podnet.policy.runner import PolicyRunner

TAG = f"ppb{os.getpid() % 100000}"
SERVER_IP, CLIENT_IP = "10.244.1.2", "10.244.1.3"
NAMESPACES = 20
Obj = dict[str, Any]


def sh(*args: str, check: bool = True, inp: str | None = None, timeout: float = 600) -> str:
    p = subprocess.run(list(args), input=inp, capture_output=True, text=True, timeout=timeout, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}: {p.stderr.strip()[:500]}")
    return p.stdout


def pod(ns: str, name: str, ip: str, node: str, labels: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": ns, "name": name, "labels": labels, "resourceVersion": "1"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def objects(n_policies: int, n_pods: int, local: int = 100) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """Namespaces ns0..ns19 (labels team=t0..t3); pods with app=a0..a49; `local` of them on n1 (the
    bench server and client among them); policies selecting one app each, with pod+namespace peers,
    ipBlocks with excepts, numbered, ranged and named ports, both directions."""
    nss = [{"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": f"ns{k}", "resourceVersion": "1",
                         "labels": {"team": f"t{k % 4}", "kubernetes.io/metadata.name": f"ns{k}"}}}
           for k in range(NAMESPACES)]
    pods = [pod("ns0", "server", SERVER_IP, "n1", {"app": "server"}),
            pod("ns0", "client", CLIENT_IP, "n1", {"app": "client"})]
    for i in range(n_pods - 2):
        node = "n1" if i < local - 2 else f"n{2 + i % 9}"
        third = 1 if node == "n1" else 2 + i % 9
        ip = f"10.244.{third}.{10 + i // 9 % 240}" if node != "n1" else f"10.244.1.{10 + i}"
        pods.append(pod(f"ns{i % NAMESPACES}", f"p{i}", ip, node, {"app": f"a{i % 50}", "v": str(i % 3)}))
    pols: list[Obj] = []
    for i in range(n_policies - 10):
        k, j = i % NAMESPACES, i // NAMESPACES
        team = f"t{k % 4}"
        pols.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"namespace": f"ns{k}", "name": f"np{i}", "resourceVersion": "1"},
                     "spec": {"podSelector": {"matchLabels": {"app": f"a{j % 50}"}},
                              "policyTypes": ["Ingress", "Egress"],
                              "ingress": [{"from": [
                                  {"podSelector": {"matchLabels": {"app": f"a{(j + 1) % 50}"}},
                                   "namespaceSelector": {"matchLabels": {"team": f"t{k % 4}"}}},
                                  {"ipBlock": {"cidr": f"172.16.{j % 250}.0/24",
                                               "except": [f"172.16.{j % 250}.0/28"]}}],
                                  "ports": [{"protocol": "TCP", "port": 80},
                                            {"protocol": "TCP", "port": 8000, "endPort": 8100},
                                            {"protocol": "TCP", "port": "http"}]}],
                              "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": team}}}],
                                          "ports": [{"protocol": "UDP", "port": 53},
                                                    {"protocol": "TCP", "port": 443}]}]}})
    for i in range(10):  # the bench's server and client are selected by some policies too
        pols.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"namespace": "ns0", "name": f"server-{i}", "resourceVersion": "1"},
                     "spec": {"podSelector": {"matchLabels": {"app": "server" if i < 8 else "client"}},
                              "policyTypes": ["Ingress", "Egress"],
                              "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                           "ports": [{"protocol": "TCP", "port": 5201 + i},
                                                     {"port": "http"}]}],
                              "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "server"}}}]}]}})
    return pols, pods, nss


def runner_with(nft: RealPolicyNft, pols: list[Obj], pods: list[Obj], nss: list[Obj]) -> PolicyRunner:
    r = PolicyRunner(ApiClient("http://127.0.0.1:9"), "n1", nft)
    r.policies.cache = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pols}
    r.pods.cache = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods}
    r.namespaces.cache = {n["metadata"]["name"]: n for n in nss}
    return r


def bench_sync(ns: str, n_policies: int, n_pods: int) -> tuple[list[list[str]], PolicyRunner]:
    pols, pods, nss = objects(n_policies, n_pods)
    nft = RealPolicyNft(ns, timeout=600)
    rows = []
    t0 = time.perf_counter()
    st = build_state(pols, pods, nss, "n1")
    t_compute = time.perf_counter() - t0
    t0 = time.perf_counter()
    text = render_full(st)
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    nft.apply(text)
    t_nft = time.perf_counter() - t0
    rows.append(["full (build_state + render + nft -f)", f"{(t_compute + t_render + t_nft) * 1000:.0f}",
                 f"compute {t_compute * 1000:.0f} / render {t_render * 1000:.0f} / nft {t_nft * 1000:.0f}",
                 f"{len(st.chains)} class chains, {len(st.sets)} sets, {text.count(chr(10))} lines"])
    r = runner_with(nft, pols, pods, nss)

    async def run() -> None:
        t = time.perf_counter()
        await r.sync_once()
        rows.append(["full, PolicyRunner.sync_once", f"{(time.perf_counter() - t) * 1000:.0f}", "", ""])
        # a remote pod changes labels: it joins other policies' peer sets (element deltas)
        key = "ns0/p500"
        old = r.pods.cache[key]
        assert old["spec"]["nodeName"] != "n1"
        new = copy.deepcopy(old)
        new["metadata"]["labels"] = {"app": "a7", "v": "0"}
        new["metadata"]["resourceVersion"] = "2"
        r.pods.cache[key] = new
        applied: list[str] = []
        real = nft.apply

        def spy(text: str) -> None:
            applied.append(text)
            real(text)

        nft.apply = spy  # type: ignore[method-assign]
        t = time.perf_counter()
        await r.sync_once()
        rows.append(["one remote pod changed labels", f"{(time.perf_counter() - t) * 1000:.0f}", "",
                     f"{applied[-1].count(chr(10))} element lines"])
        # a local pod changes labels to those of another local pod (an existing class)
        key = "ns4/p4"
        new = copy.deepcopy(r.pods.cache[key])
        assert new["spec"]["nodeName"] == "n1" and r.pods.cache["ns4/p24"]["spec"]["nodeName"] == "n1"
        new["metadata"]["labels"] = {"app": "a24", "v": "1"}
        new["metadata"]["resourceVersion"] = "2"
        r.pods.cache[key] = new
        t = time.perf_counter()
        await r.sync_once()
        full = "full" if "delete table" in applied[-1] else f"{applied[-1].count(chr(10))} element lines"
        rows.append(["one local pod changed labels", f"{(time.perf_counter() - t) * 1000:.0f}", "", full])
        # pod create -> enforced: admit() as the pod runtime awaits it
        nft.apply = real  # type: ignore[method-assign]
        times = []
        for i in range(5):
            p = pod("ns5", f"new{i}", "", "n1", {"app": "a5", "v": "1"})
            p["status"] = {"phase": "Pending"}
            r.pods.cache[f"ns5/new{i}"] = p
            t = time.perf_counter()
            await r.admit(p, f"10.244.1.{200 + i}")
            times.append(time.perf_counter() - t)
        times.sort()
        rows.append(["pod create -> enforced (admit), median of 5", f"{times[2] * 1000:.0f}",
                     f"min {times[0] * 1000:.0f} / max {times[-1] * 1000:.0f}", ""])

    asyncio.run(run())
    nft.delete_table()
    return rows, r


SERVER = textwrap.dedent("""
    import socket
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(512)
    while True:
        c, _ = s.accept(); c.close()
""")
CLIENT = textwrap.dedent("""
    import json, socket, sys, time
    n = int(sys.argv[1]); out = []; end = time.monotonic() + 60
    for _ in range(n):
        if time.monotonic() > end: break
        t = time.perf_counter()
        s = socket.create_connection(("10.244.1.2", 8080), timeout=2)
        out.append(time.perf_counter() - t); s.close()
    print(json.dumps(out))
""")


def bench_datapath(tmp: Path, connects: int, n_policies: int, n_pods: int, seconds: int,
                   rounds: int) -> list[list[str]]:
    node, srv, cli = f"{TAG}-node", f"{TAG}-srv", f"{TAG}-cli"
    made: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for ns in (node, srv, cli):
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", node, "ip", "route", "add", "169.254.1.1/32", "dev", "lo")
        for i, (ns, ip) in enumerate(((srv, SERVER_IP), (cli, CLIENT_IP))):
            a, b = f"{TAG}a{i}", f"{TAG}b{i}"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", ns)
            sh("ip", "link", "set", b, "netns", node)
            for cmd in (["ip", "link", "set", a, "name", "eth0"], ["ip", "link", "set", "eth0", "up"],
                        ["ip", "addr", "add", f"{ip}/32", "dev", "eth0"],
                        ["ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"],
                        ["ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]):
                sh("ip", "netns", "exec", ns, *cmd)
            for cmd in (["ip", "link", "set", b, "up"], ["sysctl", "-qw", f"net.ipv4.conf.{b}.proxy_arp=1"],
                        ["sysctl", "-qw", f"net.ipv4.neigh.{b}.proxy_delay=0"],
                        ["ip", "route", "add", f"{ip}/32", "dev", b]):
                sh("ip", "netns", "exec", node, *cmd)
        (tmp / "srv.py").write_text(SERVER)
        (tmp / "cli.py").write_text(CLIENT)
        procs.append(subprocess.Popen(["ip", "netns", "exec", srv, sys.executable, str(tmp / "srv.py")]))
        procs.append(subprocess.Popen(["ip", "netns", "exec", srv, "iperf3", "-s", "-p", "5201"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.7)
        nft = RealPolicyNft(node, timeout=600)
        # a podnet node always tracks connections (the proxy's NAT table); so does every case here
        sh("ip", "netns", "exec", node, "nft", "-f", "-", inp="table ip ctonly { chain f { type filter hook "
           "forward priority 10; policy accept; ct state established,related accept\n }\n}\n")
        pols, pods, nss = objects(n_policies, n_pods)
        rows = []
        cases: list[tuple[str, list[Obj] | None]] = [("no policy table", None), ("table, 0 policies", []),
                                                      (f"{n_policies:,} policies", pols)]
        texts = {label: render_full(build_state(p, pods, nss, "n1")) for label, p in cases if p is not None}
        got: dict[str, list[tuple[float, float, float, int]]] = {label: [] for label, _ in cases}
        for _ in range(rounds):  # the cases alternate, so load on the shared machine hits them alike
            for label, policies in cases:
                if policies is None:
                    nft.delete_table()
                else:
                    nft.apply(texts[label])
                sh("ip", "netns", "exec", cli, sys.executable, str(tmp / "cli.py"), "30")  # warm up
                lat = sorted(json.loads(sh("ip", "netns", "exec", cli, sys.executable, str(tmp / "cli.py"),
                                           str(connects))))
                out = json.loads(sh("ip", "netns", "exec", cli, "iperf3", "-c", SERVER_IP, "-p", "5201", "-t",
                                    str(seconds), "-J", timeout=seconds + 30))
                gbit = out["end"]["sum_received"]["bits_per_second"] / 1e9
                p50_us, p99_us = lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99) - 1] * 1e6
                got[label].append((p50_us, p99_us, gbit, len(lat)))
                print(f"  {label}: p50 {got[label][-1][0]:.0f} us, {gbit:.1f} Gbit/s", file=sys.stderr)
        rows = []
        for label, _ in cases:
            runs = got[label]
            med = sorted(r[0] for r in runs)[len(runs) // 2]
            p99 = sorted(r[1] for r in runs)[len(runs) // 2]
            gb = sorted(r[2] for r in runs)[len(runs) // 2]
            rows.append([label, f"{rounds} x {runs[0][3]}", f"{med:.0f}", f"{p99:.0f}", f"{gb:.1f}"])
        return rows
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=5)
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--connects", type=int, default=400)
    ap.add_argument("--seconds", type=int, default=3, help="iperf3 duration per case")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the three cases (medians)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_policy needs root (network namespaces)", file=sys.stderr)
        return 2
    console = Console()
    scratch = f"{TAG}-rules"
    sh("ip", "netns", "add", scratch)
    try:
        sync, _ = bench_sync(scratch, args.policies, args.pods)
    finally:
        sh("ip", "netns", "del", scratch, check=False)
    tmp = Path(f"/tmp/{TAG}")
    tmp.mkdir(exist_ok=True)
    try:
        data = bench_datapath(tmp, args.connects, args.policies, args.pods, args.seconds, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t = Table(title=f"Policy sync: {args.policies:,} policies over {args.pods:,} pods (100 on the node)")
    for c in ("what", "ms", "parts (ms)", "size"):
        t.add_column(c)
    for r in sync:
        t.add_row(*r)
    console.print(t)
    t = Table(title="Pod -> pod through the node: connection setup (us) and iperf3 throughput")
    for c in ("policy state", "connects", "p50 us", "p99 us", "Gbit/s"):
        t.add_column(c, justify="right")
    for r in data:
        t.add_row(*r)
    console.print(t)
    base = float(data[0][2])
    worst = float(data[2][2])
    console.print(f"median connection setup with {args.policies:,} policies vs no table: "
                  f"{worst / base:.2f}x; "
                  f"vs the table with 0 policies: {worst / float(data[1][2]):.2f}x; "
                  f"throughput {float(data[2][4]) / float(data[0][4]):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
