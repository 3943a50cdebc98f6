"""The data a node's ruleset holds, computed from service ports: frontends, backends, sets.

A *frontend* is one (address, protocol, port) the node answers for: a ClusterIP
port, a NodePort on each node IP, an external IP or a LoadBalancer ingress IP.
Each frontend has its own endpoint list (traffic policies differ per path), so
the ruleset is plain data keyed by frontend; `render` turns it into nft text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podnet.core.gcpause import without_gc
from podnet.proxy.serviceports import EndpointInfo, NodeFacts, ServicePortInfo, external_endpoints

FrontendKey = tuple[str, str, int]  # (ip, "tcp"/"udp"/"sctp", port)


@dataclass(frozen=True, slots=True)
class Frontend:
    ip: str
    proto: str  # nft spelling: tcp / udp / sctp
    port: int
    svc_key: str  # ServicePortInfo.key
    svc_id: int  # conntrack mark carried by every connection of this service port
    kind: str  # clusterIP / nodePort / externalIP / loadBalancer
    endpoints: tuple[tuple[str, int], ...]  # (ip, port) candidates, sorted
    masquerade: bool = False  # external traffic with externalTrafficPolicy Cluster: SNAT to the node
    no_endpoints: str = "reject"  # what happens without endpoints: reject (Cluster) or drop (Local)
    affinity_timeout: int = 0
    source_ranges: tuple[str, ...] = ()
    # externalTrafficPolicy Local: traffic from pods or from the node itself is not "external":
    # it goes to every ready endpoint of the service, as kube-proxy does
    bypass: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> FrontendKey:
        return (self.ip, self.proto, self.port)


@dataclass
class RulesetState:
    """Everything render_full/render_delta need; equal states render to the same text."""

    cluster_cidr: str
    frontends: dict[FrontendKey, Frontend] = field(default_factory=dict)
    svc_ids: dict[str, int] = field(default_factory=dict)
    pods: dict[str, str] = field(default_factory=dict)  # endpoint ip → pod name (comments)
    health_checks: dict[int, tuple[str, int]] = field(default_factory=dict)  # hc port → (svc, local eps)
    problems: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # derived data
    service_cidr: str = ""  # "" = no rule for unallocated service IPs

    @property
    def backend_counts(self) -> set[int]:
        got: set[int] | None = self.cache.get("ks")
        if got is None:
            got = self.cache["ks"] = {len(f.endpoints) for f in self.frontends.values() if f.endpoints}
        return got

    @property
    def bypass_counts(self) -> set[int]:
        got: set[int] | None = self.cache.get("bypass_ks")
        if got is None:
            got = self.cache["bypass_ks"] = {len(f.bypass) for f in self.frontends.values() if f.bypass}
        return got

    @property
    def affinity_timeouts(self) -> set[int]:
        got: set[int] | None = self.cache.get("timeouts")
        if got is None:
            got = self.cache["timeouts"] = {f.affinity_timeout for f in self.frontends.values()
                                            if f.affinity_timeout}
        return got


def assign_ids(keys: Iterable[str], previous: Mapping[str, int]) -> dict[str, int]:
    """Stable small ids (conntrack marks) for service ports: kept while a key lives, reused after."""
    ids: dict[str, int] = {}
    missing: set[str] = set()
    for k in keys:
        v = previous.get(k)
        if v is None:
            missing.add(k)
        else:
            ids[k] = v
    used = set(ids.values())
    nxt = 1
    for k in sorted(missing):
        while nxt in used:
            nxt += 1
        ids[k] = nxt
        used.add(nxt)
    return ids


def _proto(p: str) -> str:
    return p.lower()


def _targets(eps: tuple[EndpointInfo, ...], node: str, local_only: bool) -> tuple[tuple[str, int], ...]:
    """The (ip, port) DNAT targets of one traffic path, sorted: serviceports.categorize's choice
    (ready, else serving and terminating; this node's only if asked), without sorting the
    endpoint objects (the hot loop of a full sync of 100,000 Services)."""
    got = {(e.ip, e.port) for e in eps if e.ready and (not local_only or e.node_name == node)}
    if not got:
        got = {(e.ip, e.port) for e in eps
               if e.serving and e.terminating and (not local_only or e.node_name == node)}
    return tuple(sorted(got))


def frontends_of(sp: ServicePortInfo, node: NodeFacts, sid: int) -> tuple[Frontend, ...]:
    """The frontends of one service port on `node` (pure; memoized by build_state)."""
    proto = _proto(sp.protocol)
    eps = sp.endpoints
    int_eps = _targets(eps, node.name, sp.itp_local)
    ext_eps: tuple[tuple[str, int], ...] = ()
    if sp.node_port or sp.external_ips or sp.lb_ips:
        ext_eps = int_eps if sp.etp_local == sp.itp_local else _targets(eps, node.name, sp.etp_local)
    ext_masq = not sp.etp_local
    ext_none = "drop" if sp.etp_local else "reject"
    bypass: tuple[tuple[str, int], ...] = ()
    if sp.etp_local:
        bypass = int_eps if not sp.itp_local else _targets(eps, node.name, False)
    key, aff = sp.key, sp.affinity_timeout
    out: list[Frontend] = []
    if sp.cluster_ip:
        out.append(Frontend(sp.cluster_ip, proto, sp.port, key, sid, "clusterIP", int_eps,
                            no_endpoints="drop" if sp.itp_local else "reject", affinity_timeout=aff))
    if sp.node_port:
        out += [Frontend(ip, proto, sp.node_port, key, sid, "nodePort", ext_eps, ext_masq, ext_none, aff,
                         bypass=bypass) for ip in node.ips]
    out += [Frontend(ip, proto, sp.port, key, sid, "externalIP", ext_eps, ext_masq, ext_none, aff,
                     bypass=bypass) for ip in sp.external_ips]
    out += [Frontend(ip, proto, sp.port, key, sid, "loadBalancer", ext_eps, ext_masq, ext_none, aff,
                     sp.source_ranges, bypass) for ip in sp.lb_ips]
    return tuple(out)


@without_gc
def build_state(ports: Iterable[ServicePortInfo], node: NodeFacts,
                previous_ids: Mapping[str, int] | None = None,
                memo: dict[int, tuple[ServicePortInfo, int, tuple[Frontend, ...]]] | None = None
                ) -> RulesetState:
    """The ruleset data of `node` for these service ports (pure).

    `memo` (kept by the caller between syncs) skips recomputing service ports that are the very
    same objects as last time (the runner re-uses them for unchanged Services); the caller
    must clear it when `node` changes.
    """
    ports = list(ports)
    st = RulesetState(cluster_cidr=str(ipaddress.ip_network(node.cluster_cidr, strict=False)),
                      service_cidr=str(ipaddress.ip_network(node.service_cidr, strict=False))
                      if node.service_cidr else "")
    st.svc_ids = assign_ids((p.key for p in ports), previous_ids or {})
    fresh: dict[int, tuple[ServicePortInfo, int, tuple[Frontend, ...]]] = {}
    fes = st.frontends
    for sp in ports:
        sid = st.svc_ids[sp.key]
        hit = memo.get(id(sp)) if memo is not None else None
        fresh_hit = hit is not None and hit[0] is sp and hit[1] == sid
        got = hit[2] if hit is not None and fresh_hit else frontends_of(sp, node, sid)
        fresh[id(sp)] = (sp, sid, got)
        for e in sp.endpoints:
            if e.pod:
                st.pods.setdefault(e.ip, e.pod)
        for fe in got:
            prev = fes.get(fe.key)
            if prev is not None:
                st.problems.append(f"{fe.kind} {fe.ip}:{fe.port}/{fe.proto.upper()} of {fe.svc_key} is "
                                   f"already used by {prev.svc_key}: skipped")
                continue
            fes[fe.key] = fe
        if sp.health_check_node_port and sp.etp_local:
            n_local = len(external_endpoints(sp, node.name))
            st.health_checks[sp.health_check_node_port] = (sp.svc_name, n_local)
    if memo is not None:
        memo.clear()
        memo.update(fresh)
    return st
