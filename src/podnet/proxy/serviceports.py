"""The proxy's view of the cluster: Services + EndpointSlices + this node's facts → service ports.

Pure functions, no I/O. Endpoint selection follows kube-proxy's CategorizeEndpoints:
ready endpoints; if none, serving-and-terminating ones as a fallback; `Local`
traffic policies keep only endpoints on this node (with the same fallback), and
never fall back to other nodes. Topology hints are ignored.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from podnet.model.kinds import Obj
from podnet.model.services import (
    ENDPOINTSLICE_CONTROLLER,
    HEADLESS_LABEL,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_SLICE_PORTS = 100  # discovery/v1 validation: at most 100 ports per EndpointSlice
MAX_SLICE_ENDPOINTS = 1000
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
POD_KEY = "podnet.pod"  # in compact endpoints: "<namespace>/<name>" of targetRef


@dataclass(frozen=True)
class NodeFacts:
    """What the proxy knows about the node it runs on and the cluster around it."""

    name: str
    ips: tuple[str, ...]
    cluster_cidr: str = "10.244.0.0/16"
    pod_cidr: str = ""  # this node's podCIDR ("" when not yet assigned)
    all_pod_cidrs: tuple[str, ...] = ()  # every node's podCIDR; empty = only cluster_cidr is checked
    all_node_ips: tuple[str, ...] = ()  # every node's InternalIP (host-network pods use them)
    service_cidr: str = ""  # the cluster's service range: traffic to its unallocated IPs is dropped


@dataclass(frozen=True, order=True, slots=True)
class EndpointInfo:
    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    pod: str = ""  # "<namespace>/<name>" of the target pod, for people

    def is_local(self, node: str) -> bool:
        return self.node_name == node


@dataclass(frozen=True, slots=True)
class ServicePortInfo:
    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP / UDP / SCTP
    port: int
    cluster_ip: str = ""  # "" or "None" → no cluster IP frontend
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    etp_local: bool = False
    itp_local: bool = False
    affinity_timeout: int = 0  # seconds; 0 = no session affinity
    source_ranges: tuple[str, ...] = ()
    health_check_node_port: int = 0
    svc_type: str = "ClusterIP"
    endpoints: tuple[EndpointInfo, ...] = ()
    # `ns/name:port-name/PROTO` (port name may be empty): stable identity of a service port
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}:{self.port_name}/{self.protocol}")

    @property
    def svc_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.lb_ips)


@dataclass
class BuildResult:
    ports: list[ServicePortInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # items skipped, one human line each


def categorize(endpoints: Iterable[EndpointInfo], node: str, local_only: bool) -> tuple[EndpointInfo, ...]:
    """CategorizeEndpoints for one traffic path: ready, else serving+terminating; local only if asked."""
    eps = [e for e in endpoints if not local_only or e.is_local(node)]
    ready = [e for e in eps if e.ready]
    if ready:
        return tuple(sorted(ready))
    return tuple(sorted(e for e in eps if e.serving and e.terminating))


def cluster_endpoints(sp: ServicePortInfo, node: str) -> tuple[EndpointInfo, ...]:
    """Endpoints for traffic from inside the cluster (ClusterIP): internalTrafficPolicy applies."""
    return categorize(sp.endpoints, node, sp.itp_local)


def external_endpoints(sp: ServicePortInfo, node: str) -> tuple[EndpointInfo, ...]:
    """Endpoints for traffic to NodePort / LoadBalancer / external IPs: externalTrafficPolicy applies."""
    return categorize(sp.endpoints, node, sp.etp_local)


# ---- building from API objects ----------------------------------------------------
def _ipv4(value: object) -> str | None:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        return None


def _special(ip: str) -> str:
    """Why an address can never be an endpoint ("" when it can)."""
    a = ipaddress.IPv4Address(ip)
    if a.is_unspecified:
        return "is unspecified"
    if a.is_loopback:
        return "is in the loopback range"
    if a.is_link_local:
        return "is in the link-local range"
    if a.is_multicast:
        return "is multicast"
    return ""


def _in_pod_cidrs(ip: str, node: NodeFacts) -> bool:
    if ip in node.all_node_ips:
        return True  # a host-network pod
    addr = ipaddress.IPv4Address(ip)
    nets = node.all_pod_cidrs or (node.cluster_cidr,)
    for n in nets:
        try:
            if addr in ipaddress.ip_network(n, strict=False):
                return True
        except ValueError:
            continue
    return False


def _slice_endpoints(sl: Obj, port_name: str, protocol: str, node: NodeFacts,
                     problems: list[str]) -> list[EndpointInfo]:
    meta = sl.get("metadata") or {}
    where = f"EndpointSlice {meta.get('namespace', '')}/{meta.get('name', '')}"
    if sl.get("addressType", "IPv4") != "IPv4":
        return []
    ports = sl.get("ports") or []
    if len(ports) > MAX_SLICE_PORTS:
        problems.append(f"{where}: {len(ports)} ports, at most {MAX_SLICE_PORTS} allowed: slice skipped")
        return []
    number = 0
    for p in ports:
        if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol:
            number = p.get("port") or 0
            break
    else:
        return []  # this slice does not serve that port (e.g. named port not resolved for its pods)
    if not isinstance(number, int) or not 1 <= number <= 65535:
        problems.append(f"{where}: port {port_name!r} has number {number!r}, must be 1-65535: skipped")
        return []
    # slices of the EndpointSlice controller hold pod IPs; others (the `kubernetes` Service,
    # hand-made slices of selectorless Services) may point anywhere routable
    managed = (meta.get("labels") or {}).get(MANAGED_BY_LABEL) == ENDPOINTSLICE_CONTROLLER
    eps = sl.get("endpoints") or []
    if len(eps) > MAX_SLICE_ENDPOINTS:
        problems.append(f"{where}: {len(eps)} endpoints, at most {MAX_SLICE_ENDPOINTS} allowed: "
                        "slice skipped")
        return []
    out: list[EndpointInfo] = []
    for e in eps:
        addrs = e.get("addresses") or []
        if not addrs:
            continue
        ip = _ipv4(addrs[0])
        ip = sys.intern(ip) if ip is not None else None  # the same pod IP in many frontends
        if ip is None:
            problems.append(f"{where}: endpoint address {addrs[0]!r} is not an IPv4 address: skipped")
            continue
        why = _special(ip)
        if why:
            problems.append(f"{where}: endpoint address {ip} {why}: skipped")
            continue
        if managed and not _in_pod_cidrs(ip, node):
            problems.append(f"{where}: endpoint address {ip} is outside every pod CIDR: skipped")
            continue
        cond = e.get("conditions") or {}
        ready = cond.get("ready") is not False
        serving = cond["serving"] if cond.get("serving") is not None else ready
        terminating = bool(cond.get("terminating"))
        pod = e.get(POD_KEY) or ""  # a compact cache copy (proxy/compact.py) holds it ready
        if not pod:
            ref = e.get("targetRef") or {}
            pod = sys.intern(f"{ref.get('namespace', '')}/{ref.get('name', '')}") if ref.get("name") else ""
        out.append(EndpointInfo(ip, number, str(e.get("nodeName") or ""), ready, bool(serving),
                                terminating, pod))
    return out


def _source_ranges(spec: Obj, meta: Obj) -> tuple[str, ...]:
    ranges = spec.get("loadBalancerSourceRanges") or []
    if not ranges:
        anns = meta.get("annotations") or {}
        ann = anns.get("service.beta.kubernetes.io/load-balancer-source-ranges", "")
        ranges = [r for r in str(ann).split(",") if r.strip()]
    out = []
    for r in ranges:
        try:
            out.append(str(ipaddress.IPv4Network(str(r).strip(), strict=False)))
        except ValueError:
            continue
    return tuple(out)


def build_service_ports(services: Iterable[Obj], slices: Iterable[Obj], node: NodeFacts) -> BuildResult:
    """Every proxied service port with its endpoints; bad items are skipped and listed in `problems`."""
    res = BuildResult()
    by_svc = slices_by_service(slices)
    for svc in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
        res.ports.extend(_service_ports(svc, by_svc, node, res.problems))
    return res


def slices_by_service(slices: Iterable[Obj]) -> dict[str, list[Obj]]:
    """EndpointSlices grouped by `namespace/service-name` (headless and unlabelled ones left out)."""
    by_svc: dict[str, list[Obj]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        labels = meta.get("labels") or {}
        svc = labels.get(SERVICE_NAME_LABEL)
        if not svc or HEADLESS_LABEL in labels:
            continue
        by_svc.setdefault(f"{meta.get('namespace', '')}/{svc}", []).append(sl)
    return by_svc


def service_ports_for(svc: Obj, by_svc: dict[str, list[Obj]], node: NodeFacts,
                      problems: list[str]) -> list[ServicePortInfo]:
    """The service ports of one Service (for callers that cache per Service)."""
    return _service_ports(svc, by_svc, node, problems)


def _service_ports(svc: Obj, by_svc: dict[str, list[Obj]], node: NodeFacts,
                   problems: list[str]) -> list[ServicePortInfo]:
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    ns, name = meta.get("namespace", "default"), meta.get("name", "")
    if PROXY_NAME_LABEL in (meta.get("labels") or {}):
        return []
    stype = spec.get("type") or "ClusterIP"
    if stype == "ExternalName":
        return []
    cip = spec.get("clusterIP") or ""
    cluster_ip = "" if cip in ("", "None") else (_ipv4(cip) or "")
    if cip not in ("", "None") and not cluster_ip:
        problems.append(f"Service {ns}/{name}: clusterIP {cip!r} is not an IPv4 address: skipped")
        return []
    external_ips = tuple(ip for ip in (_ipv4(x) for x in spec.get("externalIPs") or []) if ip)
    lb_ips: tuple[str, ...] = ()
    if stype == "LoadBalancer":
        ing = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(ip for ip in (_ipv4(i.get("ip")) for i in ing if i.get("ip")) if ip)
    etp_local = spec.get("externalTrafficPolicy") == "Local"
    itp_local = spec.get("internalTrafficPolicy") == "Local"
    timeout = 0
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        t = cfg.get("timeoutSeconds")
        timeout = t if isinstance(t, int) and 0 < t <= 86400 else 10800
    hc = spec.get("healthCheckNodePort") or 0
    ranges = _source_ranges(spec, meta) if stype == "LoadBalancer" else ()
    slices = by_svc.get(f"{ns}/{name}", [])
    out: list[ServicePortInfo] = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        port = p.get("port")
        pname = p.get("name") or ""
        if proto not in PROTOCOLS or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.append(f"Service {ns}/{name}: port {pname or port!r} ({proto}) is not valid: skipped")
            continue
        eps: dict[tuple[str, int], EndpointInfo] = {}
        for sl in slices:
            for e in _slice_endpoints(sl, pname, proto, node, problems):
                eps.setdefault((e.ip, e.port), e)
        node_port = p.get("nodePort") or 0 if stype in ("NodePort", "LoadBalancer") else 0
        out.append(ServicePortInfo(
            namespace=ns, name=name, port_name=pname, protocol=proto, port=port, cluster_ip=cluster_ip,
            node_port=node_port if isinstance(node_port, int) else 0, external_ips=external_ips,
            lb_ips=lb_ips, etp_local=etp_local, itp_local=itp_local, affinity_timeout=timeout,
            source_ranges=ranges, health_check_node_port=hc if isinstance(hc, int) else 0,
            svc_type=stype, endpoints=tuple(sorted(eps.values()))))
    return out
