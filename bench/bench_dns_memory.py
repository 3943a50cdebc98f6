"""Memory per Service in the cluster DNS server: compact caches vs the objects as served, same run.

    .venv/bin/python bench/bench_dns_memory.py [--services 10000] [--endpoints 3] [--pods 3]

Each variant runs in its own fresh process: a `ClusterDns` (the server the DNS pods run, not started:
nothing listens, nothing is contacted) receives `--services` Services, one EndpointSlice each with
`--endpoints` endpoints, and `--pods` Pods per Service, as the API serves them (JSON decoded object by
object, as its informers receive them, with uids, timestamps, managedFields, owner references, a Pod's
spec and status); every event goes through the informer's transform and cache into the `DnsIndex`. It
reports the growth of its resident memory (VmRSS) divided by the number of Services, and checks that
both variants answer the same for a sample of names.

- `compact` (today): the informers cache `dns/compact.py` copies (names, IPs, ports, readiness).
- `full` (before): the same informers without a transform, caching the objects as served.

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

from bench_agent_memory import deliver, service_json, slice_json
from common import Figure, Report

from podnet.dns.server import ClusterDns

VARIANTS = ("compact", "full")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pod_json(i: int, k: int, endpoints: int) -> bytes:
    n = k % 3 + 1
    ip = f"10.244.{n}.{(i * endpoints + k) % 250 + 2}"
    name = f"svc-{i}-pod-{k}"
    meta = {"name": name, "namespace": "bench", "uid": f"pod-{i:08d}-{k}",
            "resourceVersion": str(500000 + i * 8 + k), "creationTimestamp": "2026-12-06T11:00:00Z",
            "generateName": f"svc-{i}-", "labels": {"app": f"bench-{i}", "pod-template-hash": "7c9f8d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"svc-{i}-7c9f8d",
                                 "uid": f"rs-{i:08d}", "controller": True, "blockOwnerDeletion": True}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                               "apiVersion": "v1", "time": "2026-12-06T11:00:00Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:spec": {"f:containers": {}}}}]}
    image = "registry.k8s.io/e2e-test-images/agnhost:2.53"
    container_status = {"name": "app", "ready": True, "restartCount": 0, "started": True, "image": image,
                        "imageID": "sha256:" + "ab" * 32, "containerID": f"podnet://{i:08d}{k}",
                        "state": {"running": {"startedAt": "2026-12-06T11:00:02Z"}}}
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": f"node-{n}", "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                 "schedulerName": "default-scheduler", "serviceAccountName": "default",
                 "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": "app", "image": image, "args": ["netexec", "--http-port=8080"],
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                 "resources": {}, "imagePullPolicy": "IfNotPresent",
                                 "terminationMessagePath": "/dev/termination-log",
                                 "terminationMessagePolicy": "File"}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": f"172.30.0.{n + 1}",
                   "qosClass": "BestEffort", "startTime": "2026-12-06T11:00:01Z",
                   "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                                   "lastTransitionTime": "2026-12-06T11:00:02Z"}
                                  for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                   "containerStatuses": [container_status]}}).encode()


def sample_answers(dns: ClusterDns, services: int) -> list[str]:
    out = []
    for i in range(0, services, max(1, services // 50)):
        for name, qtype in ((f"svc-{i}.bench.svc.cluster.local", "A"),
                            (f"_http._tcp.svc-{i}.bench.svc.cluster.local", "SRV"),
                            (f"10-244-1-{(i * 3) % 250 + 2}.bench.pod.cluster.local", "A")):
            a = dns.index.lookup(name, qtype)
            out.append(f"{name} {qtype} {a.rcode} " + " ".join(sorted(r.text() for r in a.answers)))
    return out


def measure(variant: str, services: int, endpoints: int, pods: int) -> dict[str, Any]:
    raw_services = [service_json(i) for i in range(services)]
    raw_slices = [slice_json(i, endpoints) for i in range(services)]
    raw_pods = [pod_json(i, k, endpoints) for i in range(services) for k in range(pods)]
    gc.collect()
    before = rss_kib()
    dns = ClusterDns("http://127.0.0.1:9", upstream="none", health_port=None, ready_port=None)
    svc_inf, slice_inf, pod_inf = dns.informers
    if variant == "full":
        for inf in dns.informers:
            inf.transform = None
    t = time.perf_counter()
    for i in range(services):
        deliver(svc_inf, raw_services[i])
        deliver(slice_inf, raw_slices[i])
        for k in range(pods):
            deliver(pod_inf, raw_pods[i * pods + k])
    took = time.perf_counter() - t
    gc.collect()
    after = rss_kib()
    counts = dns.index.counts()
    assert counts["services"] == services and counts["pods"] == services * pods, counts
    return {"variant": variant, "services": services, "rss_before_kib": before, "rss_after_kib": after,
            "per_service_kib": (after - before) / services, "apply_s": took, "counts": counts,
            "answers": sample_answers(dns, services)}


def child(args: argparse.Namespace) -> int:
    res = measure(args.variant, args.services, args.endpoints, args.pods)
    print(json.dumps(res))
    asyncio.run(ClusterDns("http://127.0.0.1:9", upstream="none").client.close())
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=3, help="endpoints per Service (one slice each)")
    ap.add_argument("--pods", type=int, default=3, help="Pods per Service (the DNS server watches every Pod)")
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    a = ap.parse_args(argv)
    if not 1 <= a.services <= 200000 or not 1 <= a.endpoints <= 100 or not 0 <= a.pods <= 100:
        ap.error("--services must be 1-200000, --endpoints 1-100, --pods 0-100")
    if a.variant:
        return child(a)
    report = Report(f"cluster DNS memory per Service ({a.services:,} Services x {a.endpoints} endpoints, "
                    f"{a.pods} Pods each)")
    results = {}
    for v in VARIANTS:
        p = subprocess.run([sys.executable, __file__, "--variant", v, "--services", str(a.services),
                            "--endpoints", str(a.endpoints), "--pods", str(a.pods)], capture_output=True,
                           text=True, timeout=1800, check=False)
        if p.returncode != 0:
            report.errors.append(f"{v}: {p.stderr.strip()[-500:]}")
            continue
        results[v] = json.loads(p.stdout.splitlines()[0])
    new, old = results.get("compact"), results.get("full")
    if new and old and new.pop("answers") != old.pop("answers"):
        report.errors.append("the compact and the full index answer differently")
    report.info["results"] = results
    if new:
        report.add(Figure("memory", "DNS server RSS per Service (Service + slice + its Pods), compact caches",
                          new["per_service_kib"], "KiB", old["per_service_kib"] if old else None,
                          "objects as served, same run"))
        report.add(Figure("time", f"apply {a.services:,} Services with slices and Pods", new["apply_s"], "s",
                          old["apply_s"] if old else None, "objects as served, same run"))
    report.print(a.output == "json")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
