"""Memory per Service in a node agent's proxy: compact shared caches vs the previous shape, same run.

    .venv/bin/python bench/bench_agent_memory.py [--services 10000] [--endpoints 3]

Each variant runs in its own fresh process: it builds `--services` Services and their EndpointSlices
as the API serves them (JSON decoded object by object, as an informer receives them, with uid,
timestamps, managedFields, owner references), delivers them to the informers the agent has, runs one
full proxy sync (rendering the whole ruleset; the nft step is skipped) and reports the growth of its
resident memory (VmRSS) divided by the number of Services.

- `shared-compact` (today): one Services and one EndpointSlices informer for the whole agent,
  caching compact copies (proxy/compact.py), feeding the proxy's change tracker.
- `separate-full` (before): the agent's own Services informer plus the proxy's own Services and
  EndpointSlices informers, all caching the objects as served (the shape before the change; the
  memory leak fixed at the same time is not part of it).

No root needed; nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import Figure, Report

from podnet.client.client import ApiClient
from podnet.client.informer import Informer
from podnet.core.config import ClusterConfig
from podnet.model.kinds import ENDPOINTSLICES, NODES, SERVICES, Obj
from podnet.proxy.metrics import ProxyMetrics
from podnet.proxy.runner import ProxyInformers, ProxyRunner

VARIANTS = ("shared-compact", "separate-full")
NODES_N = 3


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def service_json(i: int) -> bytes:
    ip = f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256}"
    return json.dumps({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"svc-{i}", "namespace": "bench",
                     "uid": f"5f0c2a8e-{i:08d}-4b7d-9c1e-1a2b3c4d5e6f", "resourceVersion": str(1000 + 2 * i),
                     "creationTimestamp": "2026-12-06T11:00:00Z",
                     "labels": {"app": "bench", "tier": "web"},
                     "managedFields": [{"manager": "bench", "operation": "Update", "apiVersion": "v1",
                                        "time": "2026-12-06T11:00:00Z", "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:spec": {"f:ports": {}, "f:selector": {}}}}]},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
                 "sessionAffinity": "None",
                 "selector": {"app": f"bench-{i}"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        "status": {"loadBalancer": {}}}).encode()


def slice_json(i: int, endpoints: int) -> bytes:
    return json.dumps({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": f"svc-{i}-x7k2p", "generateName": f"svc-{i}-", "namespace": "bench",
                     "uid": f"9a1b2c3d-{i:08d}-4e5f-8a9b-0c1d2e3f4a5b",
                     "resourceVersion": str(1001 + 2 * i),
                     "creationTimestamp": "2026-12-06T11:00:00Z",
                     "labels": {"kubernetes.io/service-name": f"svc-{i}", "app": "bench", "tier": "web",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                     "annotations": {
                         "endpoints.kubernetes.io/last-change-trigger-time": "2026-12-06T11:00:00Z"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": f"svc-{i}",
                                          "uid": f"5f0c2a8e-{i:08d}-4b7d-9c1e-1a2b3c4d5e6f",
                                          "controller": True, "blockOwnerDeletion": True}]},
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [f"10.244.{n}.{(i * endpoints + k) % 250 + 2}"],
                       "conditions": {"ready": True, "serving": True, "terminating": False},
                       "nodeName": f"node-{n}",
                       "targetRef": {"kind": "Pod", "namespace": "bench", "name": f"svc-{i}-pod-{k}",
                                     "uid": f"pod-{i:08d}-{k}"}}
                      for k in range(endpoints) for n in [k % NODES_N + 1]]}).encode()


def node(n: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{n}", "resourceVersion": str(n)},
            "spec": {"podCIDR": f"10.244.{n}.0/24", "podCIDRs": [f"10.244.{n}.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": f"172.30.0.{n + 1}"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


class NullNft:
    def apply(self, text: str) -> None:
        return None


async def no_conntrack(_: list[list[str]]) -> None:
    return None


def deliver(inf: Informer, raw: bytes) -> None:
    """What an informer does with one watch event: decode, shape, cache, call the handlers."""
    obj = inf._shape(json.loads(raw))
    meta = obj["metadata"]
    key = f"{meta['namespace']}/{meta['name']}"
    prev = inf.cache.get(key)
    inf.cache[key] = obj
    for h in inf.handlers:
        h("ADDED" if prev is None else "MODIFIED", obj, prev)


async def measure(variant: str, services: int, endpoints: int) -> dict[str, Any]:
    client = ApiClient("http://127.0.0.1:9")  # never contacted
    svc_raw = [service_json(i) for i in range(services)]  # the wire bytes exist before we start counting
    sl_raw = [slice_json(i, endpoints) for i in range(services)]
    gc.collect()
    before = rss_kib()
    if variant == "shared-compact":
        informers = ProxyInformers.own(client)
        extra: list[Informer] = []
    else:
        informers = ProxyInformers(Informer(client, SERVICES), Informer(client, ENDPOINTSLICES),
                                   Informer(client, NODES))
        extra = [Informer(client, SERVICES)]  # the agent's own Services informer
    runner = ProxyRunner(client, "node-1", "172.30.0.2", ClusterConfig(name="bench"), NullNft(),
                         metrics=ProxyMetrics(), conntrack=no_conntrack, shared=informers)
    for n in range(1, NODES_N + 1):
        informers.nodes.cache[f"node-{n}"] = node(n)
    for raw_s, raw_sl in zip(svc_raw, sl_raw, strict=True):
        deliver(informers.services, raw_s)
        deliver(informers.slices, raw_sl)
        for inf in extra:
            deliver(inf, raw_s)
    cached = rss_kib()
    t = time.perf_counter()
    await runner.sync_once()
    sync_s = time.perf_counter() - t
    gc.collect()
    after = rss_kib()
    assert runner.state is not None and len(runner.state.frontends) == services
    return {"variant": variant, "services": services, "rss_before_kib": before, "rss_caches_kib": cached,
            "rss_after_kib": after, "per_service_kib": (after - before) / services,
            "caches_per_service_kib": (cached - before) / services, "full_sync_s": sync_s}


def child(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(measure(args.variant, args.services, args.endpoints))))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=3, help="endpoints per Service (one slice each)")
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    a = ap.parse_args(argv)
    if not 1 <= a.services <= 200000 or not 1 <= a.endpoints <= 100:
        ap.error("--services must be 1-200000 and --endpoints 1-100")
    if a.variant:
        return child(a)
    report = Report(f"proxy memory per Service in one agent ({a.services:,} Services x {a.endpoints} "
                    "endpoints)")
    results = {}
    for v in VARIANTS:
        p = subprocess.run([sys.executable, __file__, "--variant", v, "--services", str(a.services),
                            "--endpoints", str(a.endpoints)], capture_output=True, text=True, timeout=1200,
                           check=False)
        if p.returncode != 0:
            report.errors.append(f"{v}: {p.stderr.strip()[-500:]}")
            continue
        results[v] = json.loads(p.stdout)
    report.info["results"] = results
    new, old = results.get("shared-compact"), results.get("separate-full")
    if new:
        report.add(Figure("memory", "RSS per Service, caches + proxy state (shared compact informers)",
                          new["per_service_kib"], "KiB", old["per_service_kib"] if old else None,
                          "agent + proxy informers of full objects, same run",
                          note=f"caches alone {new['caches_per_service_kib']:.1f} KiB"
                               + (f" vs {old['caches_per_service_kib']:.1f}" if old else "")))
        report.add(Figure("time", "full proxy sync in Python (state + render, no nft)", new["full_sync_s"],
                          "s", old["full_sync_s"] if old else None, "previous shape, same run"))
    report.print(a.output == "json")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
