"""The proxy loop of a node agent: informers → change batching → one nft transaction per sync.

The first sync (and any sync after an nft error) replaces the table atomically;
later syncs apply element deltas only. Bad input is skipped per item and
counted in the metrics; it never stops the sync of everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from podnet.client.client import ApiClient
from podnet.client.informer import Informer
from podnet.cluster.config import ClusterConfig
from podnet.model.kinds import ENDPOINTSLICES, NODES, SERVICES, Obj
from podnet.proxy.healthcheck import HealthChecks
from podnet.proxy.lbip import LBAddresses, lb_owner
from podnet.proxy.metrics import METRICS, ProxyMetrics
from podnet.proxy.model import NodeFacts, ServicePortInfo, service_ports_for, slices_by_service
from podnet.proxy.nft import Nft, NftError, RealNft
from podnet.proxy.render import changed_frontends, is_full, render_delta, render_full
from podnet.proxy.state import Frontend, RulesetState, build_state

log = logging.getLogger(__name__)

MIN_SYNC_INTERVAL = 0.02  # seconds between two syncs: changes arriving meanwhile are batched
RETRY_INTERVAL = 1.0
FULL_SYNC_INTERVAL = 300.0  # seconds: a periodic full sync repairs rules changed behind our back
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"

ConntrackFlush = Callable[[list[list[str]]], Awaitable[None]]


async def conntrack_flush(commands: list[list[str]]) -> None:
    """Run `conntrack -D ...` for each argument list (exit 1 = nothing matched: fine)."""
    for args in commands:
        try:
            proc = await asyncio.create_subprocess_exec("conntrack", "-D", *args,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            await asyncio.wait_for(proc.wait(), 5)
        except (OSError, TimeoutError) as e:
            log.warning("conntrack -D %s failed: %s", " ".join(args), e)


def udp_conntrack_commands(old: RulesetState | None, new: RulesetState) -> list[list[str]]:
    """Stale UDP flows: to endpoints that went away, and to frontends that just got endpoints."""
    if old is None:
        return []
    cmds: list[list[str]] = []
    changed = changed_frontends(old, new)
    gone: set[tuple[str, int]] = set()
    for fo, fn in changed:
        if fo is not None and fo.proto == "udp":
            gone |= set(fo.endpoints) - set(fn.endpoints if fn is not None else ())
    if gone:  # still used by another UDP frontend? then keep its flows
        gone -= {ep for f in new.frontends.values() if f.proto == "udp" for ep in f.endpoints}
    for ip, port in sorted(gone):
        cmds.append(["-p", "udp", "--reply-src", ip, "--reply-port-src", str(port)])
    for fo, fn in changed:
        if fn is not None and fn.proto == "udp" and fn.endpoints and (fo is None or not fo.endpoints):
            cmds.append(["-p", "udp", "--orig-dst", fn.ip, "--dport", str(fn.port)])
    return cmds


def parse_pool(pool: str) -> list[str]:
    """`a.b.c.d-e.f.g.h` or CIDR(s), comma separated → CIDRs; "" / "none" → []."""
    out: list[str] = []
    for part in (p.strip() for p in pool.split(",")):
        if not part or part == "none":
            continue
        try:
            if "-" in part:
                lo, _, hi = part.partition("-")
                out += [str(n) for n in ipaddress.summarize_address_range(ipaddress.IPv4Address(lo.strip()),
                                                                          ipaddress.IPv4Address(hi.strip()))]
            else:
                out.append(str(ipaddress.IPv4Network(part, strict=False)))
        except ValueError:
            log.warning("LoadBalancer pool %r is not a range or CIDR: ignored", part)
    return out


def _trigger_time(obj: Obj) -> float | None:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    v = ann.get(TRIGGER_ANNOTATION)
    if not v:
        return None
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class ProxyRunner:
    client: ApiClient
    node_name: str
    node_ip: str
    config: ClusterConfig
    nft: Nft
    metrics: ProxyMetrics = field(default_factory=lambda: METRICS)
    conntrack: ConntrackFlush = conntrack_flush
    lb_addresses: LBAddresses | None = None
    health: HealthChecks | None = None
    min_interval: float = MIN_SYNC_INTERVAL
    full_sync_interval: float = FULL_SYNC_INTERVAL

    def __post_init__(self) -> None:
        self.services = Informer(self.client, SERVICES)
        self.slices = Informer(self.client, ENDPOINTSLICES)
        self.nodes = Informer(self.client, NODES)
        self.dirty = asyncio.Event()
        self.state: RulesetState | None = None
        self.need_full = True
        self.pending_triggers: list[float] = []
        self.synced_once = asyncio.Event()
        self.problems: list[str] = []
        self.logged_problems: set[str] = set()
        self.port_memo: dict[str, tuple[tuple[object, ...], list[ServicePortInfo], list[str]]] = {}
        self.frontend_memo: dict[int, tuple[ServicePortInfo, int, tuple[Frontend, ...]]] = {}
        self.memo_node: NodeFacts | None = None
        for inf in (self.services, self.slices, self.nodes):
            inf.add_handler(self._on_event)

    def _on_event(self, etype: str, obj: Obj, old: Obj | None) -> None:
        t = _trigger_time(obj)
        if t is None and obj.get("kind") in ("EndpointSlice", "Service"):
            t = time.time()  # no trigger-time annotation: measure from the event's arrival
        if t is not None:
            self.pending_triggers.append(t)
        if not self.dirty.is_set():
            self.metrics.last_queued = time.time()
        self.dirty.set()

    # ---- computing -----------------------------------------------------------------
    def node_facts(self) -> NodeFacts:
        ips = [self.node_ip] if self.node_ip else []
        pod_cidr = ""
        cidrs: list[str] = []
        all_ips: list[str] = []
        for n in self.nodes.list():
            spec = n.get("spec") or {}
            cidrs += [c for c in (spec.get("podCIDRs") or [spec.get("podCIDR")]) if c]
            all_ips += [str(a.get("address")) for a in (n.get("status") or {}).get("addresses") or []
                        if a.get("type") == "InternalIP"]
            if n["metadata"]["name"] == self.node_name:
                pod_cidr = spec.get("podCIDR") or ""
                for a in (n.get("status") or {}).get("addresses") or []:
                    if a.get("type") == "InternalIP" and a.get("address") and a["address"] not in ips:
                        try:
                            ips.append(str(ipaddress.IPv4Address(a["address"])))
                        except ValueError:
                            continue
        return NodeFacts(self.node_name, tuple(ips), self.config.pod_cidr, pod_cidr,
                         tuple(sorted(set(cidrs))), tuple(sorted(set(all_ips))))

    def service_ports(self, node: NodeFacts) -> tuple[list[ServicePortInfo], list[str]]:
        """Every service port, recomputed only for Services whose object or slices changed."""
        by_svc = slices_by_service(self.slices.list())
        memo: dict[str, tuple[tuple[object, ...], list[ServicePortInfo], list[str]]] = {}
        ports: list[ServicePortInfo] = []
        problems: list[str] = []
        cache = self.services.cache
        for name in sorted(cache):
            svc = cache[name]
            slices = by_svc.get(name, [])
            key = (svc["metadata"].get("resourceVersion"),
                   *(s["metadata"].get("resourceVersion") for s in slices))
            hit = self.port_memo.get(name)
            if hit is not None and hit[0] == key and key[0] is not None:
                memo[name] = hit
            else:
                probs: list[str] = []
                memo[name] = (key, service_ports_for(svc, by_svc, node, probs), probs)
            ports += memo[name][1]
            problems += memo[name][2]
        self.port_memo = memo
        return ports, problems

    def lb_owned(self, ports: list[ServicePortInfo]) -> set[str]:
        nodes = self.nodes.list()
        me = self.node_name
        return {ip for sp in ports for ip in sp.lb_ips if lb_owner(ip, sp, nodes, me) == me}

    # ---- syncing --------------------------------------------------------------------
    async def sync_once(self) -> None:
        """Compute the node's ruleset from the caches and apply it (delta when possible)."""
        start = time.monotonic()
        triggers, self.pending_triggers = self.pending_triggers, []
        node = self.node_facts()
        if node != self.memo_node:
            self.port_memo.clear()
            self.frontend_memo.clear()
            self.memo_node = node
        ports, problems = self.service_ports(node)
        new = build_state(ports, node, self.state.svc_ids if self.state else None, self.frontend_memo)
        self.problems = problems + new.problems
        self.metrics.skipped_items = len(self.problems)
        for p in self.problems:
            if p not in self.logged_problems:  # each problem once, not at every sync
                log.warning("proxy: %s", p)
        self.logged_problems = set(self.problems)
        old_state = None if self.need_full else self.state
        text = render_full(new) if old_state is None else render_delta(old_state, new)
        full = is_full(text)
        try:
            if text:
                await asyncio.to_thread(self.nft.apply, text)
        except NftError as e:
            log.error("proxy: nft %s sync failed: %s", "full" if full else "incremental", e)
            self.metrics.sync_failed(str(e))
            self.need_full = True
            self.pending_triggers = triggers + self.pending_triggers
            raise
        old, self.state, self.need_full = self.state, new, False
        if full and self.lb_addresses is not None:
            self.lb_addresses.checked = False  # re-inspect the uplink too
        self.metrics.observe_sync(time.monotonic() - start, full)
        now = time.time()
        for t in triggers:
            self.metrics.observe_programming(now - t)
        await self.conntrack(udp_conntrack_commands(old, new))
        if self.health is not None:
            await self.health.sync(new.health_checks)
        if self.lb_addresses is not None:
            try:
                await asyncio.to_thread(self.lb_addresses.sync, self.lb_owned(ports))
            except OSError as e:
                log.warning("proxy: LoadBalancer addresses on %s: %s", self.lb_addresses.ifname, e)
        self.synced_once.set()

    async def run(self) -> None:
        tasks = [inf.start() for inf in (self.services, self.slices, self.nodes)]
        try:
            await asyncio.gather(*(inf.synced.wait() for inf in (self.services, self.slices, self.nodes)))
            self.dirty.set()
            last = 0.0
            last_full = time.monotonic()
            while True:
                try:
                    await asyncio.wait_for(self.dirty.wait(), self.full_sync_interval)
                except TimeoutError:
                    pass
                if time.monotonic() - last_full >= self.full_sync_interval:
                    self.need_full = True  # repair drift (e.g. someone flushed the ruleset)
                    last_full = time.monotonic()
                wait = last + self.min_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.dirty.clear()
                last = time.monotonic()
                try:
                    await self.sync_once()
                except NftError:
                    await asyncio.sleep(RETRY_INTERVAL)
                    self.dirty.set()
                except Exception as e:  # a bug must not stop the proxy: log, then retry with a full sync
                    log.exception("proxy: sync failed")
                    self.metrics.sync_failed(f"{type(e).__name__}: {e}")
                    self.need_full = True
                    await asyncio.sleep(RETRY_INTERVAL)
                    self.dirty.set()
        finally:
            for inf in (self.services, self.slices, self.nodes):
                await inf.stop()
            if self.health is not None:
                await self.health.close()
            for t in tasks:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t


async def run_proxy(client: ApiClient, *, node_name: str, node_ip: str, config: ClusterConfig,
                    nft: Nft | None = None, uplink: str | None = "eth0") -> None:
    """Run the service proxy of `node_name` forever in the current network namespace.

    `uplink` is the node's interface on the node network that carries LoadBalancer IPs
    (None: do not manage LoadBalancer addresses).
    """
    lb = LBAddresses(uplink, parse_pool(config.lb_pool)) if uplink and config.lb_pool != "none" else None
    runner = ProxyRunner(client, node_name, node_ip, config, nft or RealNft(), lb_addresses=lb,
                         health=HealthChecks())
    await runner.run()
