"""The policy loop of a node agent: informers (NetworkPolicies, AdminNetworkPolicies, the
BaselineAdminNetworkPolicy, pods, namespaces, nodes) → one nft
transaction per sync, into the table `ip podnet-policy` of the node's namespace.

The first sync after a start replaces the table atomically (the previous agent's rules stay in the
kernel until then, so a restart leaves no gap); later syncs add and delete set/map elements, unless
the structure changed (a policy added, a new class of pods), which takes a full replace.

No window: the pod runtime calls `admit(pod, ip)` after the pod's network exists and before its
containers start; the pod's IP is then in its class maps (and in every set it belongs to) before
anything in it can answer. If a transaction fails, the rules in the kernel stay as they were, and
the policies that make nft fail are found and left without allow rules (their pods stay isolated),
so one bad policy never takes the others down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from podnet.client.client import ApiClient
from podnet.client.informer import Informer
from podnet.core.waiting import wait_event
from podnet.model.kinds import (
    ADMINNETWORKPOLICIES,
    BASELINEADMINNETWORKPOLICIES,
    NAMESPACES,
    NETWORKPOLICIES,
    NODES,
    PODS,
    Obj,
)
from podnet.policy.compile import PolicyState, build_state, pod_info, policy_key
from podnet.policy.nft import PolicyNft, PolicyNftError, RealPolicyNft
from podnet.policy.render import carry_over, is_full, render_delta, render_full

log = logging.getLogger(__name__)

MIN_SYNC_INTERVAL = 0.02
RETRY_INTERVAL = 1.0
FULL_SYNC_INTERVAL = 300.0
ADMIT_TIMEOUT = 30.0


@dataclass
class PolicyMetrics:
    syncs: int = 0
    full_syncs: int = 0
    failed_syncs: int = 0
    last_sync_seconds: float = 0.0
    last_error: str = ""
    broken: list[str] = field(default_factory=list)


@dataclass
class PolicyRunner:
    client: ApiClient
    node_name: str
    nft: PolicyNft
    min_interval: float = MIN_SYNC_INTERVAL
    full_sync_interval: float = FULL_SYNC_INTERVAL
    check_nft: PolicyNft | None = None  # `nft -c`: finds the policies nft refuses after a failed sync

    def __post_init__(self) -> None:
        self.policies = Informer(self.client, NETWORKPOLICIES)
        self.pods = Informer(self.client, PODS)
        self.namespaces = Informer(self.client, NAMESPACES)
        self.anps = Informer(self.client, ADMINNETWORKPOLICIES)
        self.banps = Informer(self.client, BASELINEADMINNETWORKPOLICIES)
        self.nodes = Informer(self.client, NODES)
        self.anps.add_handler(self._on_admin)
        self.banps.add_handler(self._on_admin)
        self.nodes.add_handler(self._on_node)
        self.policies.add_handler(self._on_change)
        self.namespaces.add_handler(self._on_namespace)
        self.pods.add_handler(self._on_pod)
        self.dirty = asyncio.Event()
        self.state: PolicyState | None = None
        self.need_full = True
        self.admitted: dict[str, Obj] = {}  # IP → pod, for local pods whose status has no IP yet
        self.broken: set[str] = set()  # policies nft refused: no allow rules until they change
        self.synced_once = asyncio.Event()
        self.metrics = PolicyMetrics()
        self._lock = asyncio.Lock()

    # ---- events ----------------------------------------------------------------------
    def _on_change(self, etype: str, obj: Obj, old: Obj | None) -> None:
        if obj.get("kind") == "NetworkPolicy" or etype == "DELETED":
            self.broken.discard(policy_key(obj))
        self.dirty.set()

    def _on_admin(self, etype: str, obj: Obj, old: Obj | None) -> None:
        if old is not None and etype == "MODIFIED" and old.get("spec") == obj.get("spec"):
            return  # status or metadata only
        self.dirty.set()

    def _on_node(self, etype: str, obj: Obj, old: Obj | None) -> None:
        def facts(n: Obj | None) -> object:  # what an ANP `nodes` peer looks at: labels, InternalIPs
            n = n or {}
            return ((n.get("metadata") or {}).get("labels"),
                    [a for a in (n.get("status") or {}).get("addresses") or [] if isinstance(a, dict)
                     and a.get("type") == "InternalIP"])
        if etype == "MODIFIED" and facts(old) == facts(obj):
            return  # heartbeats
        if not self.anps.list():
            return  # only ANP egress `nodes` peers look at nodes
        self.dirty.set()

    def admin_policies(self) -> list[Obj]:
        return [*self.anps.list(), *self.banps.list()]

    def _on_namespace(self, etype: str, obj: Obj, old: Obj | None) -> None:
        if old is not None and etype != "DELETED" and \
                (old.get("metadata") or {}).get("labels") == (obj.get("metadata") or {}).get("labels"):
            return
        self.dirty.set()

    def _on_pod(self, etype: str, obj: Obj, old: Obj | None) -> None:
        if etype == "MODIFIED" and old is not None and pod_info(old) == pod_info(obj):
            return  # a status change policy does not look at (conditions, container states)
        self.dirty.set()

    # ---- syncing ---------------------------------------------------------------------
    async def compute(self) -> PolicyState:
        """The node's state from snapshots of the caches, computed on a thread so the agent's event
        loop (heartbeats, probes, status) keeps running meanwhile."""
        pods = self.pods.list()
        listed = {str((p.get("status") or {}).get("podIP") or "") for p in pods
                  if (p.get("spec") or {}).get("nodeName") == self.node_name}
        for ip in [ip for ip in self.admitted if ip in listed]:
            del self.admitted[ip]  # the informer knows the pod's IP now
        return await asyncio.to_thread(build_state, self.policies.list(), pods, self.namespaces.list(),
                                       self.node_name, dict(self.admitted), broken=set(self.broken),
                                       admins=self.admin_policies(), nodes=self.nodes.list())

    async def sync_once(self) -> None:
        async with self._lock:
            start = time.monotonic()
            new = await self.compute()
            old = None if self.need_full else self.state
            if old is not None:
                new = carry_over(old, new)
            text = render_full(new) if old is None else render_delta(old, new)
            try:
                if text:
                    await asyncio.to_thread(self.nft.apply, text)
            except PolicyNftError as e:
                self.metrics.failed_syncs += 1
                self.metrics.last_error = str(e)
                self.need_full = True
                log.error("policy: nft sync failed: %s", e)
                if await self._isolate_broken():
                    new = await self.compute()
                    await asyncio.to_thread(self.nft.apply, render_full(new))
                    text = "full"
                else:
                    raise
            for p in new.problems:
                log.warning("policy: %s", p)
            self.state, self.need_full = new, False
            self.metrics.syncs += 1
            self.metrics.full_syncs += 1 if (text == "full" or is_full(text)) else 0
            self.metrics.last_sync_seconds = time.monotonic() - start
            self.metrics.broken = sorted(self.broken)
            self.synced_once.set()

    async def _isolate_broken(self) -> bool:
        """Check each policy alone with `nft -c`; mark those nft refuses. True if any was found."""
        if self.check_nft is None:
            return False
        found = False
        pods, nss = self.pods.list(), self.namespaces.list()
        for np in sorted(self.policies.list(), key=policy_key):
            key = policy_key(np)
            if key in self.broken:
                continue
            st = build_state([np], pods, nss, self.node_name, self.admitted)  # alone, without admin policies
            try:
                await asyncio.to_thread(self.check_nft.apply, render_full(st))
            except PolicyNftError as e:
                log.error("policy: NetworkPolicy %s cannot be programmed (%s): its pods stay isolated "
                          "without its allow rules", key, e)
                self.broken.add(key)
                found = True
        return found

    async def admit(self, pod: Obj, ip: str, timeout: float = ADMIT_TIMEOUT) -> None:
        """Program a local pod's policy state before its containers start (raises on failure)."""
        await asyncio.wait_for(self.synced_once.wait(), timeout)
        self.admitted[ip] = pod
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.sync_once()
                return
            except PolicyNftError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RETRY_INTERVAL)

    def forget(self, ip: str) -> None:
        self.admitted.pop(ip, None)
        self.dirty.set()

    async def run(self) -> None:
        informers = (self.policies, self.pods, self.namespaces, self.anps, self.banps, self.nodes)
        tasks = [inf.start() for inf in informers]
        try:
            await asyncio.gather(*(inf.synced.wait() for inf in informers))
            self.dirty.set()
            last = 0.0
            last_full = time.monotonic()
            while True:
                await wait_event(self.dirty, self.full_sync_interval)
                if time.monotonic() - last_full >= self.full_sync_interval:
                    self.need_full = True  # repair drift (someone flushed the table)
                    last_full = time.monotonic()
                wait = last + self.min_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.dirty.clear()
                last = time.monotonic()
                try:
                    await self.sync_once()
                except Exception as e:  # never stop enforcing: keep the kernel's rules, retry in full
                    if not isinstance(e, PolicyNftError):
                        log.exception("policy: sync failed")
                    self.metrics.last_error = f"{type(e).__name__}: {e}"
                    self.need_full = True
                    await asyncio.sleep(RETRY_INTERVAL)
                    self.dirty.set()
        finally:
            for t in tasks:
                await _cancel(t)
            for inf in informers:
                inf._task = None


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel and wait, cancelling again if a cancellation got lost (asyncio.wait_for in Python 3.11
    can swallow one when its inner future finishes at the same moment)."""
    for _ in range(20):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
            return


class CheckOnlyNft(RealPolicyNft):
    """`nft -c -f`: parses and checks a transaction against the kernel without applying it."""

    def apply(self, text: str) -> None:
        self._run(["-c", "-f", "-"], stdin=text)


def make_runner(client: ApiClient, node_name: str) -> PolicyRunner:
    return PolicyRunner(client, node_name, RealPolicyNft(), check_nft=CheckOnlyNft())
