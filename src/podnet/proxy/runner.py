"""The proxy loop of a node agent: informers → change tracker → one nft transaction per sync.

The first sync (and any sync after an nft error) replaces the table atomically; later syncs
apply element deltas only. The informers' events go to a `ChangeTracker` (which Services changed,
their slices in cache order, trigger times); a sync takes its changes and the `StateBuilder`
recomputes only those Services and patches the previous state (`patch.StateIndex`); a node
change, a periodic full sync, an error or a tracker out of step with the caches take the full
path instead. Bad input is skipped per item and counted in the metrics; it never stops the sync
of everything else. The informers are the agent's own (shared with the rest of the agent) or,
standing alone, the runner's; they cache compact copies (`proxy/compact.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from podnet.client.client import ApiClient
from podnet.client.informer import Informer
from podnet.core.config import ClusterConfig
from podnet.core.lbpool import pool_networks
from podnet.core.waiting import wait_event
from podnet.model.kinds import ENDPOINTSLICES, NODES, SERVICES
from podnet.net.netlink_thread import in_netlink_thread
from podnet.proxy.builder import StateBuilder
from podnet.proxy.compact import compact_service, compact_slice
from podnet.proxy.health import proxy_healthy
from podnet.proxy.healthcheck import HealthChecks
from podnet.proxy.lbip import LBAddresses, lb_owner
from podnet.proxy.libnft import open_nft
from podnet.proxy.metrics import METRICS, ProxyMetrics
from podnet.proxy.nft import Nft, NftError
from podnet.proxy.render import changed_frontends, is_full, render_delta, render_full, shared_counts
from podnet.proxy.serviceports import NodeFacts, ServicePortInfo
from podnet.proxy.state import RulesetState
from podnet.proxy.tracker import Changes, ChangeTracker

log = logging.getLogger(__name__)

MIN_SYNC_INTERVAL = 0.02  # seconds between two syncs: changes arriving meanwhile are batched
RETRY_INTERVAL = 1.0
# seconds: a periodic full sync repairs rules changed behind our back; hourly, as kube-proxy's
# nftables mode (a full sync of 100,000 Services costs an agent ~15 s of CPU, and changes wait for it)
FULL_SYNC_INTERVAL = 3600.0

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


@dataclass
class ProxyInformers:
    """The informers a proxy reads; the agent shares its own (one informer per resource per agent)."""

    services: Informer
    slices: Informer
    nodes: Informer

    @classmethod
    def own(cls, client: ApiClient) -> ProxyInformers:
        return cls(Informer(client, SERVICES, transform=compact_service),
                   Informer(client, ENDPOINTSLICES, transform=compact_slice), Informer(client, NODES))

    def all(self) -> tuple[Informer, Informer, Informer]:
        return self.services, self.slices, self.nodes


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
    shared: ProxyInformers | None = None  # None: the runner makes, starts and stops its own

    def __post_init__(self) -> None:
        informers = self.shared or ProxyInformers.own(self.client)
        self.services, self.slices, self.nodes = informers.all()
        self.dirty = asyncio.Event()
        self.tracker = ChangeTracker(on_change=self._wake)
        self.builder = StateBuilder()
        self.state: RulesetState | None = None  # what the kernel holds
        self.need_full = True  # the next apply replaces the whole table
        self.synced_once = asyncio.Event()
        self.problems: list[str] = []
        self._logged_problems: set[str] = set()
        self.patched_syncs = 0  # syncs that took the incremental path (for tests and benchmarks)
        self._handlers = ((self.services, self.tracker.on_service), (self.slices, self.tracker.on_slice),
                          (self.nodes, self.tracker.on_node))
        for inf, h in self._handlers:
            inf.add_handler(h)

    def _wake(self) -> None:
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

    def lb_owned(self, ports: list[ServicePortInfo]) -> set[str]:
        nodes = self.nodes.list()
        me = self.node_name
        return {ip for sp in ports for ip in sp.lb_ips if lb_owner(ip, sp, nodes, me) == me}

    def compute(self, node: NodeFacts, changes: Changes) -> RulesetState:
        """The next state: patched from the tracker's changes when that is safe, else built in full."""
        services, slices = self.services.cache, self.slices.cache
        if not self.need_full and self.state is not None and not changes.full \
                and self.builder.can_patch(node):
            self.patched_syncs += 1
            if not changes.services:
                return self.state  # nothing changed (e.g. a node heartbeat): no copy of the state
            # in place: the state's dicts move to the new one (no copies of 100,000 entries); the old
            # one keeps what render_delta and the conntrack cleanup read
            return self.builder.patch(node, self.state, changes.services, services, slices, self.tracker,
                                      consume=True)
        new = self.builder.full(node, services, slices, self.state)
        self.tracker.reset(slices, services)
        return new

    # ---- syncing --------------------------------------------------------------------
    async def sync_once(self) -> None:
        """Compute the node's ruleset from the caches and apply it (delta when possible)."""
        start = time.monotonic()
        node = self.node_facts()
        changes = self.tracker.take(self.services.cache, self.slices.cache)
        old = self.state
        new: RulesetState | None = None
        try:
            new = self.compute(node, changes)
            return await self._apply(start, changes.triggers, new)
        except BaseException:
            self.builder.index = None  # the index may be ahead of self.state: rebuild it next time
            self.tracker.give_back(changes)
            if old is not None and old.cache.get("consumed"):
                # patched in place: the old state's dicts are the new one's now; the next sync is a
                # full one, with the new state's Service ids as the ones to keep
                self.state, self.need_full = new, True
            raise

    async def _apply(self, start: float, triggers: list[float], new: RulesetState) -> None:
        self.problems = self.builder.problems() + new.problems
        self.metrics.skipped_items = len(self.problems)
        for p in self.problems:
            if p not in self._logged_problems:  # each problem once, not at every sync
                log.warning("proxy: %s", p)
        self._logged_problems = set(self.problems)
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
                await in_netlink_thread(self.lb_addresses.sync, self.lb_owned(self.builder.lb_ports()))
            except OSError as e:
                log.warning("proxy: LoadBalancer addresses on %s: %s", self.lb_addresses.ifname, e)
        self.synced_once.set()

    async def run(self) -> None:
        informers = (self.services, self.slices, self.nodes)
        owned = self.shared is None
        tasks = [inf.start() for inf in informers] if owned else []
        try:
            await asyncio.gather(*(inf.synced.wait() for inf in informers))
            self.dirty.set()
            last = 0.0
            last_full = time.monotonic()
            while True:
                await wait_event(self.dirty, self.full_sync_interval)
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
            for inf, h in self._handlers:
                inf.remove_handler(h)
            if owned:
                for inf in informers:
                    await inf.stop()
            if self.health is not None:
                await self.health.close()
            for t in tasks:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t


async def run_proxy(client: ApiClient, *, node_name: str, node_ip: str, config: ClusterConfig,
                    nft: Nft | None = None, uplink: str | None = "eth0",
                    informers: ProxyInformers | None = None) -> None:
    """Run the service proxy of `node_name` forever in the current network namespace.

    `uplink` is the node's interface on the node network that carries LoadBalancer IPs
    (None: do not manage LoadBalancer addresses).
    """
    lb = LBAddresses(uplink, pool_networks(config.lb_pool)) if uplink and config.lb_pool != "none" else None
    if nft is None:
        nft = open_nft()
        log.info("proxy: applying rules through %s", type(nft).__name__)
    runner = ProxyRunner(client, node_name, node_ip, config, nft, lb_addresses=lb,
                         health=HealthChecks(healthy=lambda: proxy_healthy(METRICS, time.time())),
                         shared=informers)
    await runner.run()
