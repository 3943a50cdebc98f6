"""Proxy benchmarks (root; scratch network namespaces only; bounded in time). Prints a table.

1. Full sync of N services x 3 endpoints: podnet's renderer, then the transaction applied through a
   libnftables context kept open (`LibNft`, what agents use) and through `nft -f` (`RealNft`, the
   fallback and the previous way), vs a kube-proxy-shaped ruleset (a chain per service and per
   endpoint, `numgen random mod N vmap`), same netns, same run.
2. Incremental sync of one changed EndpointSlice among N Services (the whole ProxyRunner.sync_once:
   caches -> change tracker -> patched state -> delta text -> kernel), through LibNft and through
   `nft -f` in the same run, `--delta-trials` changes each (alternately removing and restoring an
   endpoint of a different Service), median and max.
3. Connection setup latency pod -> ClusterIP -> pod with 10 vs 10,000 services loaded.

Usage: sudo .venv/bin/python bench/bench_proxy.py [--max-services 100000] [--connects 300]
       [--delta-services 10000,100000] [--delta-trials 20] [--only full,delta,latency]
       [--baseline-src DIR] [--rounds N]

`--baseline-src DIR` (e.g. the `src` of a worktree at an older commit) runs the full-sync part of
this same script a second time in a child process that imports podnet from DIR, alternating with
this one's rounds, and prints both and their ratio: a same-run baseline for a change to the
renderer or the way rules are applied.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from podnet.client.client import ApiClient
from podnet.core.config import ClusterConfig
from podnet.proxy.libnft import LibNft
from podnet.proxy.nft import Nft, RealNft
from podnet.proxy.render import render_full
from podnet.proxy.runner import ProxyRunner
from podnet.proxy.serviceports import EndpointInfo, NodeFacts, ServicePortInfo
from podnet.proxy.state import build_state

NODE = NodeFacts("n1", ("172.31.251.1",), "10.244.0.0/16", "10.244.1.0/24")
SERVER_IP, CLIENT_IP = "10.244.1.2", "10.244.1.3"
TAG = f"pkb{os.getpid() % 100000}"


def sh(*args: str, check: bool = True, inp: str | None = None, timeout: float = 600,
       env: dict[str, str] | None = None) -> str:
    p = subprocess.run(list(args), input=inp, capture_output=True, text=True, timeout=timeout, check=False,
                       env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}: {p.stderr.strip()[:500]}")
    return p.stdout


def vip(i: int) -> str:
    return f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}"


def service_ports(n: int, first_to_server: bool = False) -> list[ServicePortInfo]:
    out = []
    for i in range(n):
        if first_to_server and i == 0:
            eps = (EndpointInfo(SERVER_IP, 8080, "n1"),)
        else:
            eps = tuple(EndpointInfo(f"10.244.{(i * 3 + j) // 256 % 256}.{(i * 3 + j) % 256}", 8080, "n1")
                        for j in range(3))
        out.append(ServicePortInfo("default", f"s{i}", "", "TCP", 80, vip(i + 16), endpoints=eps))
    return out


def kube_proxy_shape(ports: list[ServicePortInfo]) -> str:
    """A kube-proxy-nftables-like ruleset: a chain per service and per endpoint."""
    lines = ["add table ip kp", "delete table ip kp", "table ip kp {",
             "\tmap service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }",
             "\tchain nat-prerouting { type nat hook prerouting priority dstnat ; policy accept ;",
             "\t\tip daddr . meta l4proto . th dport vmap @service-ips", "\t}"]
    elems = []
    for i, sp in enumerate(ports):
        eps = sp.endpoints
        for j, e in enumerate(eps):
            lines.append(f"\tchain sep-{i}-{j} {{ ip saddr {e.ip} meta mark set 0x4000 ; "
                         f"meta l4proto tcp dnat to {e.ip}:{e.port} ; }}")
        vm = ", ".join(f"{j} : goto sep-{i}-{j}" for j in range(len(eps)))
        lines.append(f"\tchain svc-{i} {{ numgen random mod {len(eps)} vmap {{ {vm} }} ; }}")
        elems.append(f"{sp.cluster_ip} . tcp . {sp.port} : goto svc-{i}")
    lines.append("}")
    for k in range(0, len(elems), 5000):
        lines.append(f"add element ip kp service-ips {{ {', '.join(elems[k:k + 5000])} }}")
    return "\n".join(lines) + "\n"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_full(ns: str, sizes: list[int], kp_limit: int) -> list[list[str]]:
    binary = RealNft(ns, timeout=600)
    lib = LibNft(ns)
    rows = []
    try:
        for n in sizes:
            ports = service_ports(n)
            t0 = time.perf_counter()
            text = render_full(build_state(ports, NODE))
            t_render = time.perf_counter() - t0
            t_bin = timed(lambda text=text: binary.apply(text))  # type: ignore[misc]
            binary.delete_table()
            c0 = time.thread_time()
            t_lib = timed(lambda text=text: lib.apply(text))  # type: ignore[misc]
            c_lib = time.thread_time() - c0
            t_renew = timed(lib.wait_idle)  # the context renewal after a large transaction
            lib.delete_table()
            if n <= kp_limit:
                kp = kube_proxy_shape(ports)
                t_kp = timed(lambda kp=kp: sh("ip", "netns", "exec", ns, "nft", "-f", "-", inp=kp))  # type: ignore[misc]
                sh("ip", "netns", "exec", ns, "nft", "delete", "table", "ip", "kp")
                kp_s = f"{t_kp:.2f}"
            else:
                kp_s = "skipped (est. > 60 s)"
            rows.append([f"{n:,}", f"{text.count(chr(10)):,}", f"{t_render:.2f}",
                         f"{t_lib:.2f} ({c_lib:.2f} CPU)", f"{t_renew:.2f}", f"{t_render + t_lib:.2f}",
                         f"{t_bin:.2f}", f"{t_render + t_bin:.2f}",
                         f"{(t_render + t_lib) / (t_render + t_bin):.2f}", kp_s])
            print(f"  full sync {n:,}: render {t_render:.2f}s libnftables {t_lib:.2f}s "
                  f"(+{t_renew:.2f}s renewal) nft -f {t_bin:.2f}s kube-proxy shape {kp_s}",
                  file=sys.stderr, flush=True)
    finally:
        lib.close()
    return rows


def full_child(src: str, sizes: list[int], kp_limit: int) -> list[list[str]]:
    """bench_full in a child process importing podnet from `src` (its rows as JSON on stdout)."""
    env = {**os.environ, "PYTHONPATH": src}
    out = sh(sys.executable, __file__, "--only", "full", "--rows-json", "--sizes", ",".join(map(str, sizes)),
             "--kube-proxy-max", str(kp_limit), timeout=3600, env=env)
    rows: list[list[str]] = json.loads(out.strip().splitlines()[-1])
    return rows


def api_objects(n: int) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    svcs, slices = {}, {}
    for sp in service_ports(n):
        svcs[f"default/{sp.name}"] = {
            "metadata": {"name": sp.name, "namespace": "default", "resourceVersion": "1"},
            "spec": {"type": "ClusterIP", "clusterIP": sp.cluster_ip,
                     "ports": [{"name": "", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}
        slices[f"default/{sp.name}-x"] = {
            "metadata": {"name": f"{sp.name}-x", "namespace": "default", "resourceVersion": "1",
                         "labels": {"kubernetes.io/service-name": sp.name}},
            "addressType": "IPv4", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [e.ip], "nodeName": "n1", "conditions": {"ready": True}}
                          for e in sp.endpoints]}
        FULL_ENDPOINTS[f"{sp.name}-x"] = slices[f"default/{sp.name}-x"]["endpoints"]
    return svcs, slices


def bench_delta(ns: str, n: int, trials: int, nft: Nft, label: str) -> list[str]:
    """ProxyRunner.sync_once (caches → tracker → delta → kernel) after one EndpointSlice changed."""

    async def no_conntrack(_: list[list[str]]) -> None:
        return None

    async def run() -> tuple[float, list[float], int]:
        runner = ProxyRunner(ApiClient("http://127.0.0.1:9"), "n1", NODE.ips[0],
                             ClusterConfig(name="bench"), nft, conntrack=no_conntrack)
        svcs, slices = api_objects(n)
        runner.services.cache, runner.slices.cache = svcs, slices
        t_full = time.perf_counter()
        await runner.sync_once()
        t_full = time.perf_counter() - t_full
        if isinstance(nft, LibNft):
            nft.wait_idle()
        texts: list[str] = []
        real_apply = nft.apply

        def spy(text: str) -> None:
            texts.append(text)
            real_apply(text)

        nft.apply = spy  # type: ignore[method-assign]
        times = []
        for i in range(trials):
            # one watch event, delivered as the Informer does: the cache first, then the handlers;
            # even trials remove an endpoint of Service k, odd ones put it back
            key = f"default/s{(n // 2 + i // 2 * 7) % n}-x"
            old = slices[key]
            eps = old["endpoints"][:2] if i % 2 == 0 else api_objects_endpoints(old)
            sl = {**old, "metadata": {**old["metadata"], "resourceVersion": str(i + 2)}, "endpoints": eps}
            slices[key] = sl
            for handler in runner.slices.handlers:
                handler("MODIFIED", sl, old)
            t = time.perf_counter()
            await runner.sync_once()
            times.append(time.perf_counter() - t)
        nft.apply = real_apply  # type: ignore[method-assign]
        nft.delete_table()
        assert runner.patched_syncs == trials, "every change must take the incremental path"
        return t_full, times, texts[0].count("\n")

    t_full, times, lines = asyncio.run(run())
    times.sort()
    med = times[len(times) // 2]
    return [label, f"{n:,}", f"{t_full:.2f}", f"{med * 1000:.1f}", f"{times[-1] * 1000:.1f}", str(len(times)),
            str(lines)]


FULL_ENDPOINTS: dict[str, list[dict[str, Any]]] = {}


def api_objects_endpoints(sl: dict[str, Any]) -> list[dict[str, Any]]:
    """The 3 endpoints a bench slice had before a trial removed one."""
    return FULL_ENDPOINTS[sl["metadata"]["name"]]


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
        s = socket.create_connection(("10.96.0.16", 80), timeout=2)
        out.append(time.perf_counter() - t); s.close()
    print(json.dumps(out))
""")


def bench_latency(tmp: Path, connects: int) -> list[list[str]]:
    node, srv, cli = f"{TAG}-node", f"{TAG}-srv", f"{TAG}-cli"
    made: list[str] = []
    proc = None
    try:
        for ns in (node, srv, cli):
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # a route to the pods' link-local gateway, so that proxy-ARP on the node's veths answers for it
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
        proc = subprocess.Popen(["ip", "netns", "exec", srv, sys.executable, str(tmp / "srv.py")])
        time.sleep(0.5)
        nft = RealNft(node, timeout=600)
        rows = []
        for n in (10, 10_000):
            nft.apply(render_full(build_state(service_ports(n, first_to_server=True), NODE)))
            sh("ip", "netns", "exec", cli, sys.executable, str(tmp / "cli.py"), "20")  # warm up
            lat = sorted(json.loads(sh("ip", "netns", "exec", cli, sys.executable, str(tmp / "cli.py"),
                                       str(connects))))
            rows.append([f"{n:,}", str(len(lat)), f"{lat[len(lat) // 2] * 1e6:.0f}",
                         f"{lat[int(len(lat) * 0.99) - 1] * 1e6:.0f}", f"{sum(lat) / len(lat) * 1e6:.0f}"])
        return rows
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=5)
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-services", type=int, default=100_000)
    ap.add_argument("--kube-proxy-max", type=int, default=10_000,
                    help="largest size for the kube-proxy-shaped comparison (it grows ~linearly, slowly)")
    ap.add_argument("--connects", type=int, default=300)
    ap.add_argument("--delta-services", default="10000", help="comma-separated Service counts for the delta")
    ap.add_argument("--delta-trials", type=int, default=20)
    ap.add_argument("--only", default="full,delta,latency", help="comma-separated parts to run")
    ap.add_argument("--sizes", default="", help="comma-separated Service counts for the full sync "
                    "(default: 1,000 / 10,000 / 100,000 up to --max-services)")
    ap.add_argument("--baseline-src", default="", help="also run the full sync with podnet imported from "
                    "this directory (an older commit's src), in a child process, same run")
    ap.add_argument("--rounds", type=int, default=1, help="full-sync rounds (alternating with the baseline)")
    ap.add_argument("--rows-json", action="store_true", help=argparse.SUPPRESS)  # the baseline child
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_proxy needs root (network namespaces)", file=sys.stderr)
        return 2
    parts = set(args.only.split(","))
    sizes = [int(x) for x in args.sizes.split(",") if x] or \
        [n for n in (1_000, 10_000, 100_000) if n <= args.max_services]
    console = Console(width=200)
    scratch = f"{TAG}-rules"
    sh("ip", "netns", "add", scratch)
    full: list[list[str]] = []
    base: list[list[str]] = []
    delta: list[list[str]] = []
    try:
        if "full" in parts and args.rows_json:
            print(json.dumps(bench_full(scratch, sizes, args.kube_proxy_max)))
            return 0
        if "full" in parts:
            for r in range(args.rounds):
                if args.baseline_src:
                    print(f"  round {r + 1}: baseline ({args.baseline_src})", file=sys.stderr, flush=True)
                    for row in full_child(args.baseline_src, sizes, args.kube_proxy_max):
                        base.append([f"baseline r{r + 1}", *row])
                print(f"  round {r + 1}: this tree", file=sys.stderr, flush=True)
                full += [[f"this r{r + 1}", *row] for row in bench_full(scratch, sizes, args.kube_proxy_max)]
        if "delta" in parts:
            for n in (int(x) for x in args.delta_services.split(",") if x):
                lib = LibNft(scratch)
                try:
                    delta.append(bench_delta(scratch, n, args.delta_trials, lib, "libnftables kept open"))
                finally:
                    lib.close()
                delta.append(bench_delta(scratch, n, max(4, args.delta_trials // 4),
                                         RealNft(scratch, timeout=600), "nft -f per sync"))
                print(f"  delta {n:,}: {delta[-2]} vs {delta[-1]}", file=sys.stderr, flush=True)
    finally:
        sh("ip", "netns", "del", scratch, check=False)
    lat: list[list[str]] = []
    if "latency" in parts:
        tmp = Path(f"/tmp/{TAG}")
        tmp.mkdir(exist_ok=True)
        lat = bench_latency(tmp, args.connects)

    if full:
        t = Table(title="Full sync: N services x 3 endpoints, one transaction (seconds, wall)")
        for c in ("tree", "services", "lines", "render", "libnftables apply", "ctx renewal (after)",
                  "total libnftables", "nft -f apply", "total nft -f", "ratio", "kube-proxy shape nft -f"):
            t.add_column(c, justify="right")
        for r in base + full:
            t.add_row(*r)
        console.print(t)
    if full and base:
        for n in sizes:
            def total(rows: list[list[str]], n: int = n) -> list[float]:
                return sorted(float(r[6]) for r in rows if r[1] == f"{n:,}")
            ours, theirs = total(full), total(base)
            console.print(f"full sync of {n:,}: this tree {min(ours):.2f} s (best of {len(ours)}), baseline "
                          f"{min(theirs):.2f} s: ratio {min(ours) / min(theirs):.2f}")
    if delta:
        t = Table(title="Incremental sync (ProxyRunner.sync_once) after one EndpointSlice changed")
        for c in ("path", "services loaded", "first full sync s", "sync after 1 change, median ms", "max ms",
                  "trials", "delta lines"):
            t.add_column(c, justify="right")
        for r in delta:
            t.add_row(*r)
        console.print(t)
        for i in range(0, len(delta) - 1, 2):
            ratio = float(delta[i][3]) / float(delta[i + 1][3])
            console.print(f"ratio libnftables / nft -f at {delta[i][1]} Services (median): {ratio:.2f}")
    if lat:
        t = Table(title="Connection setup pod -> ClusterIP -> pod (microseconds)")
        for c in ("services loaded", "connects", "p50", "p99", "mean"):
            t.add_column(c, justify="right")
        for r in lat:
            t.add_row(*r)
        console.print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
