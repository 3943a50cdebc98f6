"""The proxy loop of a node agent: informers → change batching → one nft transaction per sync.

The first sync (and any sync after an nft error) replaces the table atomically;
later syncs apply element deltas only. The informers' events mark Services dirty and
mirror the slice cache by Service, so a sync recomputes only the dirty Services and
patches the previous state (`patch.StateIndex`); a node change, a periodic full sync,
an error or replaced caches (an Informer relist) take the full path instead. Bad input
is skipped per item and counted in the metrics; it never stops the sync of everything else.
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
from podnet.client.informer import Informer, obj_key
from podnet.core.config import ClusterConfig
from podnet.core.lbpool import pool_networks
from podnet.model.kinds import ENDPOINTSLICES, NODES, SERVICES, Obj
from podnet.model.services import HEADLESS_LABEL, SERVICE_NAME_LABEL
from podnet.net.netlink_thread import in_netlink_thread
from podnet.proxy.health import proxy_healthy
from podnet.proxy.healthcheck import HealthChecks
from podnet.proxy.lbip import LBAddresses, lb_owner
from podnet.proxy.metrics import METRICS, ProxyMetrics
from podnet.proxy.nft import Nft, NftError, RealNft
from podnet.proxy.patch import StateIndex
from podnet.proxy.render import changed_frontends, is_full, render_delta, render_full, shared_counts
from podnet.proxy.serviceports import (
    NodeFacts,
    ServicePortInfo,
    service_ports_for,
    slices_by_service,
)
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
    if gone:  # still used by another UDP frontend? then keep its flows (its endpoint counter says so)
        in_use = shared_counts(new)["ep-counters"]
        gone = {(ip, port) for ip, port in gone if f"{ip} . udp . {port}" not in in_use}
    for ip, port in sorted(gone):
        cmds.append(["-p", "udp", "--reply-src", ip, "--reply-port-src", str(port)])
    for fo, fn in changed:
        if fn is not None and fn.proto == "udp" and fn.endpoints and (fo is None or not fo.endpoints):
            cmds.append(["-p", "udp", "--orig-dst", fn.ip, "--dport", str(fn.port)])
    return cmds


def _trigger_time(obj: Obj) -> float | None:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    v = ann.get(TRIGGER_ANNOTATION)
    if not v:
        return None
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _slice_service(sl: Obj) -> str | None:
    """The `namespace/service` key a slice is grouped under, as slices_by_service groups it."""
    meta = sl.get("metadata") or {}
    labels = meta.get("labels") or {}
    svc = labels.get(SERVICE_NAME_LABEL)
    if not svc or HEADLESS_LABEL in labels:
        return None
    return f"{meta.get('namespace', '')}/{svc}"


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
        # incremental bookkeeping, kept from the informers' events (see _on_slice_event)
        self.dirty_services: set[str] = set()  # service keys whose object or slices changed since the state
        self.service_keys: set[str] = set()  # the service cache's keys, as its events told them
        self.patched_syncs = 0  # syncs that took the incremental path (for tests and benchmarks)
        self.slice_seq: dict[str, int] = {}  # slice key → its position in the informer cache's order
        self.slice_group: dict[str, str] = {}  # slice key → the service key it serves
        self.group_slices: dict[str, set[str]] = {}  # service key → its slice keys
        self.next_seq = 0
        self.index: StateIndex | None = None  # who claims what in self.state (None: rebuild)
        self.indexed_caches: tuple[dict[str, Obj], dict[str, Obj]] | None = None  # caches mirrored
        self.problem_services: set[str] = set()  # services whose ports have problems
        self.lb_services: set[str] = set()  # services with LoadBalancer ingress IPs
        self.services.add_handler(self._on_service_event)
        self.slices.add_handler(self._on_slice_event)
        self.nodes.add_handler(self._on_event)

    def _on_service_event(self, etype: str, obj: Obj, old: Obj | None) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("namespace"):
            key = obj_key(obj)
            self.dirty_services.add(key)
            if etype == "DELETED":
                self.service_keys.discard(key)
            else:
                self.service_keys.add(key)
        else:
            self.index = None  # not a shape the incremental path knows: next sync is a full one
        self._on_event(etype, obj, old)

    def _on_slice_event(self, etype: str, obj: Obj, old: Obj | None) -> None:
        """Mirror the slice cache: its order (a dict's insertion order) and its grouping by Service."""
        key = obj_key(obj)
        prev = self.slice_group.pop(key, None)
        if prev is not None:
            group = self.group_slices.get(prev)
            if group is not None:
                group.discard(key)
                if not group:
                    del self.group_slices[prev]
            self.dirty_services.add(prev)
        if etype == "DELETED":
            self.slice_seq.pop(key, None)
        else:
            if key not in self.slice_seq:
                self.slice_seq[key] = self.next_seq
                self.next_seq += 1
            svc = _slice_service(obj)
            if svc is not None:
                self.slice_group[key] = svc
                self.group_slices.setdefault(svc, set()).add(key)
                self.dirty_services.add(svc)
        self._on_event(etype, obj, old)

    def _on_event(self, etype: str, obj: Obj, old: Obj | None) -> None:
        t = _trigger_time(obj)
        if t is None and obj.get("kind") in ("EndpointSlice", "Service"):
            t = time.time()  # no trigger-time annotation: measure from the event's arrival
        if t is not None:
            self.pending_triggers.append(t)
        if not self.dirty.is_set():
            self.metrics.queued(time.time())
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
                         tuple(sorted(set(cidrs))), tuple(sorted(set(all_ips))), self.config.service_cidr)

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

    def can_patch(self, node: NodeFacts) -> bool:
        """True when the previous state, its index and the informer mirrors are all current."""
        return (not self.need_full and self.state is not None and self.index is not None
                and node == self.memo_node
                and self.indexed_caches is not None  # the very dicts: an Informer relist replaces them
                and self.indexed_caches[0] is self.services.cache
                and self.indexed_caches[1] is self.slices.cache
                and len(self.slices.cache) == len(self.slice_seq)
                and len(self.services.cache) == len(self.service_keys))

    def full_state(self, node: NodeFacts) -> RulesetState:
        """The state from every Service (memoized per object), and fresh incremental bookkeeping."""
        if node != self.memo_node:
            self.port_memo.clear()
            self.frontend_memo.clear()
            self.memo_node = node
        ports, _ = self.service_ports(node)
        new = build_state(ports, node, self.state.svc_ids if self.state else None, self.frontend_memo)
        self.slice_seq, self.slice_group, self.group_slices = {}, {}, {}
        for i, (key, sl) in enumerate(self.slices.cache.items()):
            self.slice_seq[key] = i
            svc = _slice_service(sl)
            if svc is not None:
                self.slice_group[key] = svc
                self.group_slices.setdefault(svc, set()).add(key)
        self.next_seq = len(self.slice_seq)
        self.indexed_caches = (self.services.cache, self.slices.cache)
        self.service_keys = set(self.services.cache)
        self.dirty_services.clear()
        self.problem_services = {s for s, m in self.port_memo.items() if m[2]}
        self.lb_services = {s for s, m in self.port_memo.items() if any(sp.lb_ips for sp in m[1])}
        self.index = StateIndex.of(((s, self.port_memo[s][1]) for s in sorted(self.port_memo)), new, node,
                                   self.frontend_memo)
        return new

    def patched_state(self, node: NodeFacts, dirty: set[str]) -> RulesetState:
        """The previous state with only the `dirty` Services recomputed (same result as full_state)."""
        assert self.state is not None and self.index is not None
        self.patched_syncs += 1
        if not dirty:
            return self.state  # nothing changed (e.g. a node heartbeat): no copy of the state
        changes: dict[str, list[ServicePortInfo]] = {}
        for name in sorted(dirty):
            svc = self.services.cache.get(name)
            self.problem_services.discard(name)
            self.lb_services.discard(name)
            if svc is None:
                self.port_memo.pop(name, None)
                changes[name] = []
                continue
            keys = sorted(self.group_slices.get(name, ()), key=self.slice_seq.__getitem__)
            slices = [self.slices.cache[k] for k in keys]
            key = (svc["metadata"].get("resourceVersion"),
                   *(s["metadata"].get("resourceVersion") for s in slices))
            probs: list[str] = []
            ports = service_ports_for(svc, {name: slices}, node, probs)
            self.port_memo[name] = (key, ports, probs)
            if probs:
                self.problem_services.add(name)
            if any(sp.lb_ips for sp in ports):
                self.lb_services.add(name)
            changes[name] = ports
        return self.index.patch(self.state, changes, node, self.frontend_memo)

    # ---- syncing --------------------------------------------------------------------
    async def sync_once(self) -> None:
        """Compute the node's ruleset from the caches and apply it (delta when possible)."""
        start = time.monotonic()
        triggers, self.pending_triggers = self.pending_triggers, []
        node = self.node_facts()
        dirty, self.dirty_services = self.dirty_services, set()
        try:
            new = self.patched_state(node, dirty) if self.can_patch(node) else self.full_state(node)
            return await self._apply(start, triggers, new)
        except BaseException:
            self.index = None  # the index may be ahead of self.state: rebuild it at the next sync
            raise

    async def _apply(self, start: float, triggers: list[float], new: RulesetState) -> None:
        problems = [p for s in sorted(self.problem_services) for p in self.port_memo[s][2]]
        self.problems = problems + new.problems
        self.metrics.skipped_items = len(self.problems)
        for p in self.problems:
            if p not in self.logged_problems:  # each problem once, not at every sync
                log.warning("proxy: %s", p)
        self.logged_problems = set(self.problems)
        old_state = None if self.need_full else self.state
        if old_state is new:
            text = ""
        else:
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
        if old is not new:
            await self.conntrack(udp_conntrack_commands(old, new))
        if self.health is not None:
            await self.health.sync(new.health_checks)
        if self.lb_addresses is not None:
            try:
                lb_ports = [sp for s in sorted(self.lb_services) for sp in self.port_memo[s][1]]
                await in_netlink_thread(self.lb_addresses.sync, self.lb_owned(lb_ports))
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
    lb = LBAddresses(uplink, pool_networks(config.lb_pool)) if uplink and config.lb_pool != "none" else None
    runner = ProxyRunner(client, node_name, node_ip, config, nft or RealNft(), lb_addresses=lb,
                         health=HealthChecks(healthy=lambda: proxy_healthy(METRICS, time.time())))
    await runner.run()
