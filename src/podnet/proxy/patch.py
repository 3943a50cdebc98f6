"""Patching a RulesetState per Service, so that an incremental sync costs what changed, not the total.

`build_state` walks every service port. `StateIndex` remembers who claims what in the
state it was built for (frontend keys, pod names of endpoint IPs, health-check ports,
conntrack ids) with the claim's position in build order, `(service key, port index,
item index)`. `patch` then drops the claims of the changed Services, adds their new ones
and re-decides only the keys they touched, with build_state's rules: the first claimant
of a frontend or pod IP wins (the others are reported as conflicts), the last claimant of
a health-check port wins, new service ports get the smallest free ids in key order.
"""

from __future__ import annotations

import bisect
import heapq
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

from podnet.proxy.render import shared_counts
from podnet.proxy.serviceports import NodeFacts, ServicePortInfo, external_endpoints
from podnet.proxy.state import Frontend, FrontendKey, RulesetState, frontends_of

Pos = tuple[str, int, int]  # (service key, index of the port in the service, index of the item in the port)
Memo = dict[int, tuple[ServicePortInfo, int, tuple[Frontend, ...]]]
K = TypeVar("K")
V = TypeVar("V")


class ConsumedDict(dict[K, V]):
    """What a state patched in place (`consume=True`) keeps: the old values of the keys the patch
    touched, enough for render_delta and the conntrack cleanup. Walking it is an error (it is not
    the whole mapping any more), so a reader that would need the whole old state fails loudly."""

    def _refuse(self) -> NoReturn:
        raise RuntimeError("this RulesetState was patched in place: only its touched keys remain")

    def __iter__(self) -> NoReturn:
        self._refuse()

    def __len__(self) -> NoReturn:
        self._refuse()

    def keys(self) -> NoReturn:
        self._refuse()

    def values(self) -> NoReturn:
        self._refuse()

    def items(self) -> NoReturn:
        self._refuse()


def conflict_message(fe: Frontend, winner: Frontend) -> str:
    return (f"{fe.kind} {fe.ip}:{fe.port}/{fe.proto.upper()} of {fe.svc_key} is "
            f"already used by {winner.svc_key}: skipped")


def _claim(claims: dict[K, list[tuple[Pos, V]]], key: K, pos: Pos, value: V) -> None:
    cl = claims.get(key)
    if cl is None:
        claims[key] = [(pos, value)]
    elif cl[-1][0] < pos:
        cl.append((pos, value))
    else:
        bisect.insort(cl, (pos, value), key=lambda c: c[0])


def _unclaim(claims: dict[K, list[tuple[Pos, V]]], key: K, svc: str) -> list[Pos]:
    cl = claims.get(key)
    if cl is None:
        return []
    gone = [c[0] for c in cl if c[0][0] == svc]
    kept = [c for c in cl if c[0][0] != svc]
    if kept:
        claims[key] = kept
    else:
        del claims[key]
    return gone


@dataclass(slots=True)
class _Owned:
    """What one Service claims in the state (to undo it); tuples, as there is one per Service."""

    ports: list[ServicePortInfo]
    frontends: tuple[FrontendKey, ...] = ()
    pod_ips: tuple[str, ...] = ()
    hc_ports: tuple[int, ...] = ()


@dataclass
class StateIndex:
    owned: dict[str, _Owned] = field(default_factory=dict)
    fe_claims: dict[FrontendKey, list[tuple[Pos, Frontend]]] = field(default_factory=dict)
    pod_claims: dict[str, list[tuple[Pos, str]]] = field(default_factory=dict)
    hc_claims: dict[int, list[tuple[Pos, tuple[str, int]]]] = field(default_factory=dict)
    conflicts: dict[Pos, str] = field(default_factory=dict)
    free_ids: list[int] = field(default_factory=list)  # heap of unused ids below max_id
    max_id: int = 0
    backend_ks: Counter[int] = field(default_factory=Counter)
    bypass_ks: Counter[int] = field(default_factory=Counter)
    timeouts: Counter[int] = field(default_factory=Counter)

    @classmethod
    def of(cls, ports_by_svc: Iterable[tuple[str, list[ServicePortInfo]]], st: RulesetState,
           node: NodeFacts, memo: Memo | None = None) -> StateIndex:
        """The index of `st`, as build_state made it from these ports (services in build order)."""
        ix = cls()
        for svc, ports in ports_by_svc:
            ix._add(svc, ports, st.svc_ids, node, memo)
        for cl in ix.fe_claims.values():
            for pos, fe in cl[1:]:
                ix.conflicts[pos] = conflict_message(fe, cl[0][1])
        used = set(st.svc_ids.values())
        ix.max_id = max(used, default=0)
        ix.free_ids = [i for i in range(1, ix.max_id) if i not in used]
        for f in st.frontends.values():
            ix._count(f, 1)
        return ix

    def _count(self, f: Frontend, d: int) -> None:
        for counter, k in ((self.backend_ks, len(f.endpoints)), (self.bypass_ks, len(f.bypass)),
                           (self.timeouts, f.affinity_timeout)):
            if k:
                counter[k] += d
                if counter[k] <= 0:
                    del counter[k]

    def _add(self, svc: str, ports: list[ServicePortInfo], ids: Mapping[str, int], node: NodeFacts,
             memo: Memo | None) -> _Owned:
        frontends: set[FrontendKey] = set()
        pod_ips: set[str] = set()
        hc_ports: set[int] = set()
        for pi, sp in enumerate(ports):
            sid = ids[sp.key]
            hit = memo.get(id(sp)) if memo is not None else None
            fresh = hit is not None and hit[0] is sp and hit[1] == sid
            fes = hit[2] if hit is not None and fresh else frontends_of(sp, node, sid)
            if memo is not None:
                memo[id(sp)] = (sp, sid, fes)
            for ei, e in enumerate(sp.endpoints):
                if e.pod:
                    _claim(self.pod_claims, e.ip, (svc, pi, ei), e.pod)
                    pod_ips.add(e.ip)
            for fi, fe in enumerate(fes):
                _claim(self.fe_claims, fe.key, (svc, pi, fi), fe)
                frontends.add(fe.key)
            if sp.health_check_node_port and sp.etp_local:
                n_local = len(external_endpoints(sp, node.name))
                _claim(self.hc_claims, sp.health_check_node_port, (svc, pi, 0), (sp.svc_name, n_local))
                hc_ports.add(sp.health_check_node_port)
        own = _Owned(ports, tuple(frontends), tuple(pod_ips), tuple(hc_ports))
        if ports:
            self.owned[svc] = own
        return own

    def _next_id(self) -> int:
        if self.free_ids:
            return heapq.heappop(self.free_ids)
        self.max_id += 1
        return self.max_id

    def patch(self, old: RulesetState, changes: Mapping[str, list[ServicePortInfo]], node: NodeFacts,
              memo: Memo | None = None, consume: bool = False) -> RulesetState:
        """The state build_state would give for old's ports with each changed Service's ports replaced
        (an empty list: the Service is gone), with `old.svc_ids` as previous ids. Updates the index
        to the new state; `old` is left as it was.

        `consume=True` (the runner): the new state takes over old's dicts and changes them in place
        (copying them cost ~3 ms per dict at 100,000 Services), and `old` keeps only what
        render_delta(old, new) and the conntrack cleanup read: its derived caches and, in
        `ConsumedDict`s, the old values of the touched keys (`old.cache["consumed"]` is then True)."""
        if consume:
            # what render_delta reads of `old` besides the touched keys, computed before they change
            _ = old.backend_counts, old.bypass_counts, old.affinity_timeouts
            shared_counts(old)
            new = RulesetState(old.cluster_cidr, old.frontends, old.svc_ids, old.pods, old.health_checks,
                               service_cidr=old.service_cidr)
        else:
            new = RulesetState(old.cluster_cidr, dict(old.frontends), dict(old.svc_ids), dict(old.pods),
                               dict(old.health_checks), service_cidr=old.service_cidr)
        was_fe: ConsumedDict[FrontendKey, Frontend] = ConsumedDict()
        was_ids: ConsumedDict[str, int] = ConsumedDict()
        was_pods: ConsumedDict[str, str] = ConsumedDict()
        was_hc: ConsumedDict[int, tuple[str, int]] = ConsumedDict()
        olds = {s: self.owned.pop(s) for s in changes if s in self.owned}
        old_keys = {sp.key for o in olds.values() for sp in o.ports}
        new_keys = {sp.key for ps in changes.values() for sp in ps}
        for k in sorted(old_keys - new_keys):
            was_ids[k] = new.svc_ids[k]
            heapq.heappush(self.free_ids, new.svc_ids.pop(k))
        for k in sorted(new_keys - old_keys):
            new.svc_ids[k] = self._next_id()
        touched_fe: set[FrontendKey] = set()
        touched_pods: set[str] = set()
        touched_hc: set[int] = set()
        for s, o in olds.items():
            if memo is not None:
                for sp in o.ports:
                    memo.pop(id(sp), None)
            for key in o.frontends:
                for pos in _unclaim(self.fe_claims, key, s):
                    self.conflicts.pop(pos, None)
            for ip in o.pod_ips:
                _unclaim(self.pod_claims, ip, s)
            for port in o.hc_ports:
                _unclaim(self.hc_claims, port, s)
            touched_fe.update(o.frontends)
            touched_pods.update(o.pod_ips)
            touched_hc.update(o.hc_ports)
        for s, ps in changes.items():
            own = self._add(s, ps, new.svc_ids, node, memo)
            touched_fe.update(own.frontends)
            touched_pods.update(own.pod_ips)
            touched_hc.update(own.hc_ports)
        changed: list[tuple[Frontend | None, Frontend | None]] = []
        for key in sorted(touched_fe):
            fo = old.frontends.get(key)
            if fo is not None:
                was_fe[key] = fo
            cl = self.fe_claims.get(key)
            if cl:
                win = cl[0][1]
                new.frontends[key] = win
                self.conflicts.pop(cl[0][0], None)
                for pos, fe in cl[1:]:
                    self.conflicts[pos] = conflict_message(fe, win)
            else:
                new.frontends.pop(key, None)
            fn = new.frontends.get(key)
            if fo is not fn and fo != fn:
                changed.append((fo, fn))
                if fo is not None:
                    self._count(fo, -1)
                if fn is not None:
                    self._count(fn, 1)
        for ip in touched_pods:
            if ip in new.pods:
                was_pods[ip] = new.pods[ip]
            pcl = self.pod_claims.get(ip)
            if pcl:
                new.pods[ip] = pcl[0][1]
            else:
                new.pods.pop(ip, None)
        for port in touched_hc:
            if port in new.health_checks:
                was_hc[port] = new.health_checks[port]
            hcl = self.hc_claims.get(port)
            if hcl:
                new.health_checks[port] = hcl[-1][1]
            else:
                new.health_checks.pop(port, None)
        new.problems = [self.conflicts[p] for p in sorted(self.conflicts)]
        new.cache["changed"], new.cache["changed_from"] = changed, weakref.ref(old)  # not a chain of states
        new.cache["ks"] = set(self.backend_ks)
        new.cache["bypass_ks"] = set(self.bypass_ks)
        new.cache["timeouts"] = set(self.timeouts)
        if consume:
            old.frontends, old.svc_ids, old.pods, old.health_checks = was_fe, was_ids, was_pods, was_hc
            old.cache["consumed"] = True
        return new
