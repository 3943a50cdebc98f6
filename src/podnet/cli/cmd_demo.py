"""`podnet demo`: a cluster with the mission's example, requests from outside, and who answered.

Brings up (or reuses) a cluster, applies examples/myapp (front-end Deployment behind the NodePort
Service `myapp-service` on 30008 and the LoadBalancer `myapp-lb`; back-end Deployment behind the
ClusterIP Service `back-end`), sends a bounded series of HTTP requests from the host to every node's
NodePort and to the LoadBalancer IP, and shows which front-end pod on which node answered and which
back-end pod it reached by DNS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from podnet.cli.common import client_for, kubeconfig_path, load_config
from podnet.cli.main import CLIError
from podnet.client.client import ApiClient
from podnet.core.config import ClusterConfig, state_root
from podnet.model.kinds import NODES, PODS, SERVICES, Obj

NODE_PORT = 30008


def examples_dir() -> Path:
    here = Path(__file__).resolve()
    for base in (here.parents[3], Path.cwd()):
        d = base / "examples" / "myapp"
        if d.is_dir():
            return d
    raise CLIError("examples/myapp not found: run `podnet demo` from a podnet checkout")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="bring up a cluster with the example app and show where requests go",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--name", default="demo", help="cluster name (default: demo)")
    p.add_argument("--nodes", type=int, default=3, help="nodes when the cluster is created (default: 3)")
    p.add_argument("--requests", type=int, default=12,
                   help="requests per entry point (each node's NodePort, the LB IP); default 12")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the app (default 180)")
    p.add_argument("--ui-minutes", type=float, default=0.0, metavar="MINUTES",
                   help="afterwards, serve the live web view (podnet ui) and keep one request per second "
                   "flowing to each entry point for this many minutes (Ctrl-C stops; default 0: off)")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def _podnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "podnet.cli.main", *args]


def _ensure_cluster(args: argparse.Namespace, console: Console) -> ClusterConfig:
    if not (state_root() / "clusters" / args.name / "config.json").exists():
        console.print(f"[bold]1.[/bold] creating cluster [cyan]{args.name}[/cyan] with {args.nodes} nodes")
        rc = subprocess.call(_podnet("up", "--name", args.name, "--nodes", str(args.nodes)),
                             stdout=sys.stderr if args.output == "json" else None)
        if rc != 0:
            raise CLIError(f"`podnet up --name {args.name}` failed (exit {rc})")
    else:
        console.print(f"[bold]1.[/bold] using the running cluster [cyan]{args.name}[/cyan]")
    return load_config(args.name)


def _apply(cfg: ClusterConfig, console: Console) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CLIError("kubectl is not installed; the demo applies examples/myapp with it")
    d = examples_dir()
    console.print(f"[bold]2.[/bold] kubectl apply -f {d}")
    res = subprocess.run([kubectl, "apply", "-f", str(d)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, KUBECONFIG=kubeconfig_path(cfg)))
    if res.returncode != 0:
        raise CLIError(f"kubectl apply failed:\n{res.stderr.strip()}")
    for line in res.stdout.strip().splitlines():
        console.print(f"   {line}")


def _ready(p: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in p.get("status", {}).get("conditions") or [])


async def _wait_app(client: ApiClient, timeout: float, console: Console) -> tuple[list[Obj], Obj]:
    deadline = time.monotonic() + timeout
    msg = "[bold]3.[/bold] waiting for the pods to be ready and the LB IP to be assigned"
    with console.status(msg) as st:
        while True:
            pods = (await client.list(PODS, "default", label_selector="app=myapp"))["items"]
            lb = await client.get(SERVICES, "myapp-lb", "default")
            fe = [p for p in pods if p["metadata"].get("labels", {}).get("type") == "front-end"]
            be = [p for p in pods if p["metadata"].get("labels", {}).get("type") == "back-end"]
            ready_fe = [p for p in fe if _ready(p)]
            ready_be = [p for p in be if _ready(p)]
            ingress = lb.get("status", {}).get("loadBalancer", {}).get("ingress") or []
            st.update(f"[bold]3.[/bold] waiting: front-end {len(ready_fe)}/3 ready, back-end "
                      f"{len(ready_be)}/2 ready, LB IP {'assigned' if ingress else 'pending'}")
            if len(ready_fe) >= 3 and len(ready_be) >= 2:
                break
            if time.monotonic() > deadline:
                raise CLIError(f"the app was not ready after {timeout:.0f}s: front-end {len(ready_fe)}/3, "
                               f"back-end {len(ready_be)}/2 ready; see `podnet status --name ...` and "
                               "`podnet kubectl get pods -o wide`")
            await asyncio.sleep(0.5)
    took = timeout - (deadline - time.monotonic())
    where = ", ".join(sorted({p.get("spec", {}).get("nodeName", "?") for p in ready_fe}))
    console.print(f"[bold]3.[/bold] ready after {took:.1f}s: 3 front-end pods (on {where}), 2 back-end pods, "
                  f"LB IP {ingress[0]['ip'] if ingress else '<pending>'}")
    return pods, lb


async def _send(targets: list[tuple[str, str]], per_target: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=3)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        for label, url in targets:
            for _ in range(per_target):
                target = url.removeprefix("http://").rstrip("/")
                r: dict[str, Any] = {"entry": label, "url": url,
                                     "target": ("LB " if label == "LoadBalancer" else "") + target}
                t0 = time.monotonic()
                try:
                    async with s.get(url, headers={"Connection": "close"}) as resp:
                        body = await resp.text()
                    data = json.loads(body)
                    r.update(ok=True, frontend=data.get("frontend", {}).get("pod"),
                             node=data.get("frontend", {}).get("node"),
                             backend=data.get("backend") or data.get("backend_error"),
                             client=data.get("client"))
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
                    r.update(ok=False, error=str(e) or type(e).__name__)
                r["ms"] = round((time.monotonic() - t0) * 1000, 1)
                results.append(r)
    return results


async def _demo(args: argparse.Namespace, cfg: ClusterConfig, console: Console) -> dict[str, Any]:
    async with client_for(cfg) as client:
        pods, lb = await _wait_app(client, args.timeout, console)
        nodes = (await client.list(NODES))["items"]
    node_ips = []
    for n in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        for a in n.get("status", {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                node_ips.append((n["metadata"]["name"], a["address"]))
    targets = [(f"{name} NodePort", f"http://{ip}:{NODE_PORT}/") for name, ip in node_ips]
    ingress = lb.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    if ingress:
        targets.append(("LoadBalancer", f"http://{ingress[0]['ip']}:80/"))
    else:
        console.print("   (myapp-lb has no EXTERNAL-IP: no LoadBalancer pool; it works as a NodePort)")
    console.print(f"[bold]4.[/bold] sending {args.requests} requests to each of: "
                  + ", ".join(u for _, u in targets))
    results = await _send(targets, args.requests)
    pod_nodes = {p["metadata"]["name"]: p.get("spec", {}).get("nodeName", "") for p in pods}
    return {"cluster": cfg.name, "targets": [u for _, u in targets], "results": results,
            "podNodes": pod_nodes}


def short_pod(name: str | None) -> str:
    """`myapp-front-end-6f87f5f7f8-62dxm` -> `front-end-62dxm`: short enough for an 80-column table."""
    if not name:
        return "?"
    parts = name.split("-")
    if len(parts) >= 4 and parts[0] == "myapp":
        return "-".join([*parts[1:-2], parts[-1]])
    return name


EXPLANATION = [
    "Each node is a network namespace with its own IP on the bridge; each pod has its own IP from its "
    "node's podCIDR, and pods reach each other without NAT.",
    "`myapp-service` (NodePort 30008) is open on [italic]every[/italic] node's IP: nftables in each node "
    "picks a ready front-end pod at random — on any node — and rewrites the destination (DNAT).",
    "`myapp-lb` got an EXTERNAL-IP from podnet's pool on the node network; it forwards the same way.",
    "Each front-end found the back-end as http://back-end/ : cluster DNS answered with the Service's "
    "ClusterIP, and the ClusterIP rule spread those requests over the back-end pods.",
]


def _report(data: dict[str, Any], console: Console) -> None:
    t = Table(title="Who answered each request", title_justify="left", show_edge=False,
              header_style="bold")
    for col in ("#", "SENT TO", "FRONT-END POD", "ON NODE", "→ BACK-END POD"):
        t.add_column(col, no_wrap=True)
    for i, r in enumerate(data["results"], 1):
        if r["ok"]:
            t.add_row(str(i), r["target"], short_pod(r["frontend"]), r["node"] or "?",
                      short_pod(str(r["backend"])))
        else:
            t.add_row(str(i), r["target"], f"[red]failed: {r['error']}[/red]", "", "")
    console.print(t)
    per_pod = Counter(r["frontend"] for r in data["results"] if r["ok"])
    per_entry: dict[str, set[str]] = {}
    for r in data["results"]:
        if r["ok"]:
            per_entry.setdefault(r["entry"], set()).add(r["frontend"])
    counts = Table(title="Requests per front-end pod", title_justify="left", show_edge=False,
                   header_style="bold")
    for col in ("FRONT-END POD", "NODE", "REQUESTS"):
        counts.add_column(col, no_wrap=True)
    for pod, n in sorted(per_pod.items()):
        counts.add_row(pod, data["podNodes"].get(pod, "?"), str(n))
    console.print(counts)
    failed = sum(1 for r in data["results"] if not r["ok"])
    console.print(f"{len(data['results']) - failed} of {len(data['results'])} requests answered; "
                  f"{len(per_pod)} front-end pods answered through {len(per_entry)} entry points.\n")
    console.print("[bold]What you just saw[/bold]")
    for line in EXPLANATION:
        console.print(f"- {line}")
    name = data["cluster"]
    console.print(f"\nLook closer:  podnet status --name {name}\n"
                  f"              podnet trace --name {name} --from outside <node-ip>:{NODE_PORT}\n"
                  f"              podnet top --name {name}\n"
                  f"See it live:  podnet ui --name {name}   (web page on 127.0.0.1, one-time link)\n"
                  f"Clean up:     podnet down --name {name}")


MAX_UI_MINUTES = 120.0


async def live(cfg: ClusterConfig, urls: list[str], minutes: float, console: Console,
               every: float = 1.0) -> int:
    """The web view on 127.0.0.1 while one request per `every` seconds goes to each entry point, for
    `minutes` (bounded in time and count); the number of requests sent."""
    from podnet.cli import cmd_ui

    targets = [(u, u) for u in urls]
    server = asyncio.ensure_future(cmd_ui.serve(cfg, 0))
    sent = 0
    deadline = time.monotonic() + minutes * 60
    console.print(f"Traffic keeps flowing for {minutes:g} min: one request per second to each of "
                  f"{', '.join(urls)} (Ctrl-C stops).")
    try:
        while time.monotonic() < deadline and not server.done():
            sent += len(await _send(targets, 1))
            await asyncio.sleep(every)
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    return sent


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=args.output == "json")
    if args.requests < 1 or args.requests > 200:
        raise CLIError(f"--requests: Invalid value: {args.requests}: must be between 1 and 200")
    if not 0 <= args.ui_minutes <= MAX_UI_MINUTES:
        raise CLIError(f"--ui-minutes: Invalid value: {args.ui_minutes:g}: must be between 0 and "
                       f"{MAX_UI_MINUTES:g}")
    cfg = _ensure_cluster(args, console)
    _apply(cfg, console)
    data = asyncio.run(_demo(args, cfg, console))
    if args.output == "json":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _report(data, console)
    if args.ui_minutes > 0:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(live(cfg, data["targets"], args.ui_minutes, console))
    return 0 if all(r["ok"] for r in data["results"]) else 1
