"""AdminNetworkPolicy benchmark (root; one scratch network namespace; bounded in time). Prints a table.

On bench_policy.py's cluster shape (1,000 NetworkPolicies over 1,000 pods in 20 namespaces, 100 pods
on the measured node), the node's full sync (compute + render + `nft -f`) without admin policies (the
baseline, same run) and with N AdminNetworkPolicies (default 100, each with Allow / Deny / Pass rules:
namespace and pod peers, port numbers, ranges and named ports, egress to networks and nodes) plus the
BaselineAdminNetworkPolicy; then, with them loaded, a remote pod's label change (a peer-set delta) and
pod create -> enforced (`PolicyRunner.admit`). Alternating rounds, medians.

Usage: sudo .venv/bin/python bench/bench_admin_policy.py [--anps 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_policy import objects, pod, runner_with, sh

from podnet.policy.compile import build_state
from podnet.policy.nft import RealPolicyNft
from podnet.policy.render import render_full

Obj = dict[str, Any]
GV = "policy.networking.k8s.io/v1alpha1"
NODES = [
    {
        "metadata": {"name": f"n{i}", "labels": {"zone": f"z{i % 3}"}},
        "status": {"addresses": [{"type": "InternalIP", "address": f"172.30.0.{10 + i}"}]},
    }
    for i in range(1, 11)
]


def admin_policies(n: int) -> list[Obj]:
    out: list[Obj] = []
    for i in range(n):
        team = {"matchLabels": {"team": f"t{i % 4}"}}
        subject = (
            {"namespaces": team}
            if i % 2
            else {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": f"a{i % 50}"}}}}
        )
        out.append(
            {
                "apiVersion": GV,
                "kind": "AdminNetworkPolicy",
                "metadata": {"name": f"anp{i}"},
                "spec": {
                    "priority": i % 1000,
                    "subject": subject,
                    "ingress": [
                        {
                            "name": "allow-team",
                            "action": "Allow",
                            "from": [{"namespaces": {"matchLabels": {"team": "t0"}}}],
                            "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}],
                        },
                        {
                            "name": "deny-app",
                            "action": "Deny",
                            "from": [
                                {
                                    "pods": {
                                        "namespaceSelector": {},
                                        "podSelector": {"matchLabels": {"app": f"a{(i + 3) % 50}"}},
                                    }
                                }
                            ],
                            "ports": [
                                {"portRange": {"protocol": "TCP", "start": 8000, "end": 8100}},
                                {"namedPort": "http"},
                            ],
                        },
                        {"name": "pass-rest", "action": "Pass", "from": [{"namespaces": {}}]},
                    ],
                    "egress": [
                        {
                            "name": "no-meta",
                            "action": "Deny",
                            "to": [{"networks": [f"169.254.{i % 250}.0/24"]}],
                        },
                        {
                            "name": "nodes",
                            "action": "Allow",
                            "to": [{"nodes": {"matchLabels": {"zone": f"z{i % 3}"}}}],
                        },
                    ],
                },
            }
        )
    out.append(
        {
            "apiVersion": GV,
            "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"},
            "spec": {
                "subject": {"namespaces": {}},
                "ingress": [
                    {
                        "name": "deny-t3",
                        "action": "Deny",
                        "from": [{"namespaces": {"matchLabels": {"team": "t3"}}}],
                    }
                ],
            },
        }
    )
    return out


def full_sync(
    nft: RealPolicyNft, pols: list[Obj], pods: list[Obj], nss: list[Obj], admins: list[Obj]
) -> tuple[float, float, float, str]:
    t0 = time.perf_counter()
    st = build_state(pols, pods, nss, "n1", admins=admins, nodes=NODES)
    t1 = time.perf_counter()
    text = render_full(st)
    t2 = time.perf_counter()
    nft.apply(text)
    t3 = time.perf_counter()
    shape = f"{len(st.chains)} chains, {len(st.sets)} sets, {text.count(chr(10))} lines"
    return t3 - t0, t1 - t0, t3 - t2, shape


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (a scratch network namespace)", file=sys.stderr)
        return 2
    pols, pods, nss = objects(1000, 1000)
    admins = admin_policies(args.anps)
    scratch = f"anpb{os.getpid() % 100000}-rules"
    sh("ip", "netns", "add", scratch)
    rows: list[list[str]] = []
    try:
        nft = RealPolicyNft(scratch, timeout=600)
        base: list[tuple[float, float, float, str]] = []
        with_admin: list[tuple[float, float, float, str]] = []
        for _ in range(args.rounds):
            base.append(full_sync(nft, pols, pods, nss, []))
            with_admin.append(full_sync(nft, pols, pods, nss, admins))

        def med(xs: list[tuple[float, float, float, str]], i: int) -> float:
            return statistics.median(x[i] for x in xs) * 1000  # type: ignore[misc]

        b, a = med(base, 0), med(with_admin, 0)
        rows.append(
            [
                "full sync, 1,000 NetworkPolicies (baseline)",
                f"{b:.0f}",
                f"compute {med(base, 1):.0f} / nft {med(base, 2):.0f}; {base[-1][3]}",
                "",
            ]
        )
        rows.append(
            [
                f"full sync, + {args.anps} ANPs + BANP",
                f"{a:.0f}",
                f"compute {med(with_admin, 1):.0f} / nft {med(with_admin, 2):.0f}; {with_admin[-1][3]}",
                f"{a / b:.2f}x",
            ]
        )
        r = runner_with(nft, pols, pods, nss)
        r.anps.cache = {a["metadata"]["name"]: a for a in admins if a["kind"] == "AdminNetworkPolicy"}
        r.banps.cache = {"default": admins[-1]}
        r.nodes.cache = {n["metadata"]["name"]: n for n in NODES}

        async def run() -> None:
            await r.sync_once()
            applied: list[str] = []
            real = nft.apply

            def spy(text: str) -> None:
                applied.append(text)
                real(text)

            nft.apply = spy  # type: ignore[method-assign]
            times = []
            for k in range(5):
                key = "ns0/p500"
                new = copy.deepcopy(r.pods.cache[key])
                new["metadata"]["labels"] = {"app": f"a{(7 + k) % 50}", "v": "0"}
                new["metadata"]["resourceVersion"] = str(10 + k)
                r.pods.cache[key] = new
                t = time.perf_counter()
                await r.sync_once()
                times.append(time.perf_counter() - t)
            kind = "full" if "delete table" in applied[-1] else f"{applied[-1].count(chr(10))} element lines"
            rows.append(
                [
                    "one remote pod changed labels (with ANPs), median of 5",
                    f"{statistics.median(times) * 1000:.0f}",
                    kind,
                    "",
                ]
            )
            nft.apply = real  # type: ignore[method-assign]
            times = []
            for i in range(5):
                p = pod("ns5", f"new{i}", "", "n1", {"app": "a5", "v": "1"})
                p["status"] = {"phase": "Pending"}
                r.pods.cache[f"ns5/new{i}"] = p
                t = time.perf_counter()
                await r.admit(p, f"10.244.1.{200 + i}")
                times.append(time.perf_counter() - t)
            rows.append(
                [
                    "pod create -> enforced (admit, with ANPs), median of 5",
                    f"{statistics.median(times) * 1000:.0f}",
                    f"min {min(times) * 1000:.0f}",
                    "",
                ]
            )

        asyncio.run(run())
        nft.delete_table()
    finally:
        sh("ip", "netns", "del", scratch, check=False)
    t = Table(
        title=f"AdminNetworkPolicy: {args.anps} ANPs + BANP on 1,000 NetworkPolicies x 1,000 pods "
        f"(load {os.getloadavg()[0]:.1f})"
    )
    for col in ("figure", "ms", "detail", "vs baseline"):
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    Console(width=160).print(t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
