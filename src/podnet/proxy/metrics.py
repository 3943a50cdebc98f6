"""kube-proxy-style Prometheus metrics of the proxy (text exposition format 0.0.4)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

# kube-proxy's buckets for sync durations (metrics.SyncProxyRulesLatency: exponential 0.001 x 2^i, 15 buckets)
SYNC_BUCKETS = tuple(0.001 * 2**i for i in range(15))
# NetworkProgrammingLatency buckets (seconds), as kube-proxy: 0.25 .. 5 x0.25, 6..60, then 5m
PROGRAMMING_BUCKETS = (0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4,
                       4.25, 4.5, 4.75, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 25, 30, 35, 40, 45, 50,
                       55, 60, 75, 90, 105, 120, 135, 150, 165, 180, 195, 210, 225, 240, 255, 270, 285, 300)


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def observe(self, v: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1
        self.total += v
        self.n += 1

    def render(self) -> list[str]:
        counts = self.counts or [0] * len(self.buckets)
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        out += [f'{self.name}_bucket{{le="{_num(b)}"}} {c}'
                for b, c in zip(self.buckets, counts, strict=True)]
        out += [f'{self.name}_bucket{{le="+Inf"}} {self.n}', f"{self.name}_sum {_num(self.total)}",
                f"{self.name}_count {self.n}"]
        return out


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else str(int(v))


class ProxyMetrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sync_duration = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                       "SyncProxyRules latency in seconds", SYNC_BUCKETS)
        self.full_sync_duration = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                            "SyncProxyRules latency in seconds for full resyncs",
                                            SYNC_BUCKETS)
        self.partial_sync_duration = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                               "SyncProxyRules latency in seconds for partial resyncs",
                                               SYNC_BUCKETS)
        self.programming = Histogram("kubeproxy_network_programming_duration_seconds",
                                     "In Cluster Network Programming Latency in seconds", PROGRAMMING_BUCKETS)
        self.last_sync = 0.0
        self.last_queued = 0.0
        self.oldest_pending = 0.0  # when the oldest change not yet synced was queued (0: none)
        self.failed_syncs = 0
        self.full_syncs = 0
        self.partial_syncs = 0
        self.skipped_items = 0
        self.last_error = ""

    def queued(self, now: float) -> None:
        """A change arrived that the next sync must apply (kube-proxy's QueuedUpdate)."""
        with self.lock:
            self.last_queued = now
            if not self.oldest_pending:
                self.oldest_pending = now

    def observe_sync(self, seconds: float, full: bool) -> None:
        with self.lock:
            self.oldest_pending = 0.0
            self.sync_duration.observe(seconds)
            (self.full_sync_duration if full else self.partial_sync_duration).observe(seconds)
            self.last_sync = time.time()
            if full:
                self.full_syncs += 1
            else:
                self.partial_syncs += 1

    def observe_programming(self, seconds: float) -> None:
        with self.lock:
            self.programming.observe(max(seconds, 0.0))

    def sync_failed(self, error: str) -> None:
        with self.lock:
            self.failed_syncs += 1
            self.last_error = error

    def render(self) -> str:
        with self.lock:
            lines: list[str] = []
            hists = (self.sync_duration, self.full_sync_duration, self.partial_sync_duration,
                     self.programming)
            for h in hists:
                lines += h.render()
            gauges = [
                ("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge",
                 "The last time proxy rules were successfully synced", _num(self.last_sync)),
                ("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "gauge",
                 "The last time a sync of proxy rules was queued", _num(self.last_queued)),
                ("podnet_proxy_sync_failures_total", "counter",
                 "Syncs whose nft transaction failed (a full sync follows)", str(self.failed_syncs)),
                ("podnet_proxy_full_syncs_total", "counter", "Full syncs applied", str(self.full_syncs)),
                ("podnet_proxy_partial_syncs_total", "counter", "Incremental syncs applied",
                 str(self.partial_syncs)),
                ("podnet_proxy_skipped_items", "gauge",
                 "Services/endpoints skipped in the last sync because of bad input", str(self.skipped_items)),
            ]
            for name, typ, help_, val in gauges:
                lines += [f"# HELP {name} {help_}", f"# TYPE {name} {typ}", f"{name} {val}"]
            return "\n".join(lines) + "\n"


METRICS = ProxyMetrics()
