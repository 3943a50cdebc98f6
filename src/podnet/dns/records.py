"""Cluster DNS records, computed from Services, EndpointSlices and Pods. Pure: no I/O.

Follows the Kubernetes DNS specification (kubernetes/dns docs/specification.md,
schema 1.0.1) and CoreDNS's `kubernetes` plugin where the spec leaves room:

* `<svc>.<ns>.svc.<zone>`: A/AAAA -> ClusterIP(s); headless -> ready endpoint IPs
  (NXDOMAIN when a headless service has none); ExternalName -> CNAME.
* `<host>.<svc>.<ns>.svc.<zone>`: A per endpoint, `<host>` is the endpoint's
  hostname, else its IP with dashes (`10-244-1-5`).
* SRV `_<port>._<proto>.<svc>.<ns>.svc.<zone>` for named ports; SRV on the service
  name itself lists every port (as CoreDNS does). Headless: one per endpoint x port,
  target the endpoint's name. Weight `100 // n` as CoreDNS.
* PTR: ClusterIP -> service name; else ready endpoint IP -> endpoint name(s);
  else a pod IP -> `<a-b-c-d>.<ns>.pod.<zone>`. Unknown reverse names are not ours
  (`Answer.authoritative` False): the server passes them upstream, like CoreDNS's
  `fallthrough in-addr.arpa ip6.arpa`.
* `<a-b-c-d>.<ns>.pod.<zone>` -> A when a pod with that IP exists in that namespace
  (`pods="verified"`), for any well-formed address (`"insecure"`), or never (`"disabled"`).
* `dns-version.<zone>` TXT "1.0.1"; the zone apex has SOA and NS.

Names are case-insensitive. The index is kept current incrementally: each Service
(with its slices) and each Pod contributes a set of records, replaced as a unit.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from podnet.model.kinds import Obj
from podnet.model.services import SERVICE_NAME_LABEL, without_cluster_ip

NOERROR = "NOERROR"
NXDOMAIN = "NXDOMAIN"
SCHEMA_VERSION = "1.0.1"

PodsMode = Literal["verified", "insecure", "disabled"]

# Precedence of PTR sources: a ClusterIP wins over an endpoint, an endpoint over a bare pod.
_TIER_NORMAL, _TIER_ENDPOINT, _TIER_POD = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record. `name` is lower-case and absolute (trailing dot).

    `data` by type: A/AAAA `(ip,)`; CNAME/PTR/NS `(target,)`; TXT `(text,)`;
    SRV `(priority, weight, port, target)`; SOA `(mname, rname, serial, refresh, retry, expire, minimum)`.
    """

    name: str
    rtype: str
    ttl: int
    data: tuple[Any, ...]

    def text(self) -> str:
        """Zone-file presentation, e.g. `my-svc.default.svc.cluster.local. 5 IN A 10.96.0.50`."""
        rdata = " ".join(f'"{d}"' if self.rtype == "TXT" else str(d) for d in self.data)
        return f"{self.name} {self.ttl} IN {self.rtype} {rdata}"


@dataclass
class Answer:
    rcode: str  # NOERROR or NXDOMAIN
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    authoritative: bool = True  # False: the name is not ours; a server forwards it upstream


def fqdn(name: str) -> str:
    """Lower-case, absolute form of a name."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def dashed(ip: str) -> str:
    """`10.244.1.5` -> `10-244-1-5`; IPv6 `fd00::1` -> `fd00--1` (as CoreDNS names endpoints)."""
    return ip.replace(".", "-").replace(":", "-")


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        return None


def _addr_rtype(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return "A" if ip.version == 4 else "AAAA"


def _service_ips(svc: Obj) -> list[str]:
    spec = svc.get("spec") or {}
    ips = [str(i) for i in (spec.get("clusterIPs") or [])]
    first = spec.get("clusterIP")
    if first and first not in ips:
        ips.insert(0, str(first))
    return [i for i in ips if i != "None" and _ip(i) is not None]


@dataclass(frozen=True)
class _Endpoint:
    ip: str
    hostname: str  # the endpoint's label under the service: hostname or dashed IP
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)


class DnsIndex:
    """All cluster DNS records, updated by `apply(event_type, obj)` and queried by `lookup`."""

    def __init__(self, cluster_domain: str = "cluster.local", *, ttl: int = 5,
                 pods: PodsMode = "verified", dns_ip: str | None = None):
        if pods not in ("verified", "insecure", "disabled"):
            raise ValueError(f"pods mode {pods!r} is not supported: use verified, insecure or disabled")
        self.zone = fqdn(cluster_domain)
        if self.zone == ".":
            raise ValueError("cluster domain must not be empty")
        self.ttl = ttl
        self.pods_mode: PodsMode = pods
        self.dns_ip = dns_ip
        self.serial = int(time.time())
        self._services: dict[tuple[str, str], Obj] = {}
        self._slices: dict[tuple[str, str], Obj] = {}  # (ns, slice name) -> slice
        self._slices_by_svc: dict[tuple[str, str], set[str]] = {}
        self._pods: dict[tuple[str, str], Obj] = {}
        # name -> ((source, its records of that name), ...), in the order the sources came
        self._names: dict[str, tuple[tuple[tuple[str, ...], tuple[tuple[int, Record], ...]], ...]] = {}
        self._owned: dict[tuple[str, ...], tuple[tuple[int, Record], ...]] = {}  # source -> its records
        self._ancestors: Counter[str] = Counter()  # empty non-terminals and their use counts
        self._fixed_names = {self.zone, "svc." + self.zone, "pod." + self.zone}
        self._set_source(("zone",), self._zone_records())

    # ---- updates ---------------------------------------------------------
    def apply(self, event_type: str, obj: Obj, kind: str | None = None) -> None:
        """Apply one watch event (ADDED / MODIFIED / DELETED) for a Service, EndpointSlice or Pod."""
        kind = kind or str(obj.get("kind") or "")
        deleted = event_type == "DELETED"
        if kind == "Service":
            self._apply_service(obj, deleted)
        elif kind == "EndpointSlice":
            self._apply_slice(obj, deleted)
        elif kind == "Pod":
            self._apply_pod(obj, deleted)
        else:
            raise ValueError(f"DnsIndex cannot index kind {kind!r}: expected Service, EndpointSlice or Pod")

    def replace_all(self, services: Iterable[Obj], slices: Iterable[Obj], pods: Iterable[Obj]) -> None:
        """Rebuild from full lists (e.g. after a relist)."""
        for key in list(self._services):
            self._apply_service({"metadata": {"namespace": key[0], "name": key[1]}}, True)
        for key in list(self._slices):
            self._apply_slice(self._slices[key], True)
        for key in list(self._pods):
            self._apply_pod(self._pods[key], True)
        for o in services:
            self._apply_service(o, False)
        for o in slices:
            self._apply_slice(o, False)
        for o in pods:
            self._apply_pod(o, False)

    def _apply_service(self, svc: Obj, deleted: bool) -> None:
        key = _meta(svc)
        if deleted:
            self._services.pop(key, None)
        else:
            self._services[key] = svc
        self._refresh_service(key)

    def _apply_slice(self, sl: Obj, deleted: bool) -> None:
        ns, name = _meta(sl)
        old = self._slices.get((ns, name))
        affected: set[tuple[str, str]] = set()
        if old is not None:
            old_svc = (old.get("metadata") or {}).get("labels", {}).get(SERVICE_NAME_LABEL)
            if old_svc:
                self._slices_by_svc.get((ns, old_svc), set()).discard(name)
                affected.add((ns, old_svc))
        if deleted:
            self._slices.pop((ns, name), None)
        else:
            self._slices[(ns, name)] = sl
            svc_name = ((sl.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
            if svc_name:
                self._slices_by_svc.setdefault((ns, svc_name), set()).add(name)
                affected.add((ns, svc_name))
        for key in affected:
            if not self._slices_by_svc.get(key):
                self._slices_by_svc.pop(key, None)
            self._refresh_service(key)

    def _apply_pod(self, pod: Obj, deleted: bool) -> None:
        key = _meta(pod)
        if deleted:
            self._pods.pop(key, None)
        else:
            self._pods[key] = pod
        self._set_source(("pod", *key), [] if deleted else self._pod_records(pod))

    def _refresh_service(self, key: tuple[str, str]) -> None:
        svc = self._services.get(key)
        self._set_source(("svc", *key), [] if svc is None else self._service_records(svc))

    def _set_source(self, source: tuple[str, ...], entries: list[tuple[int, Record]]) -> None:
        new = tuple(entries)
        old = self._owned.pop(source, ())
        if old == new:
            if new:
                self._owned[source] = new
            return
        for name in {r.name for _, r in old}:
            pairs = self._names.get(name)
            if pairs is None:
                continue
            kept = tuple(p for p in pairs if p[0] != source)
            if len(kept) != len(pairs):
                if kept:
                    self._names[name] = kept
                else:
                    del self._names[name]
                self._count_ancestors(name, -1)
        grouped: dict[str, list[tuple[int, Record]]] = {}
        for entry in new:
            grouped.setdefault(entry[1].name, []).append(entry)
        for name, group in grouped.items():
            # most names have one source: a tuple of (source, records) pairs, not a dict per name
            self._names[name] = (*self._names.get(name, ()), (source, tuple(group)))
            self._count_ancestors(name, +1)
        if new:
            self._owned[source] = new
        self.serial += 1

    def _count_ancestors(self, name: str, delta: int) -> None:
        labels = name.split(".")
        for i in range(1, len(labels) - 1):
            parent = ".".join(labels[i:])
            self._ancestors[parent] += delta
            if self._ancestors[parent] <= 0:
                del self._ancestors[parent]

    # ---- record computation -----------------------------------------------
    def _rec(self, name: str, rtype: str, *data: Any) -> Record:
        return Record(name, rtype, self.ttl, tuple(data))

    def _zone_records(self) -> list[tuple[int, Record]]:
        recs = [self._rec("dns-version." + self.zone, "TXT", SCHEMA_VERSION),
                self._rec(self.zone, "NS", "ns.dns." + self.zone)]
        ip = _ip(self.dns_ip) if self.dns_ip else None
        if ip is not None:
            recs.append(self._rec("ns.dns." + self.zone, _addr_rtype(ip), str(ip)))
        return [(_TIER_NORMAL, r) for r in recs]

    def soa(self) -> Record:
        return Record(self.zone, "SOA", self.ttl, ("ns.dns." + self.zone, "hostmaster." + self.zone,
                                                    self.serial, 7200, 1800, 86400, self.ttl))

    def _ready_endpoints(self, svc: Obj, key: tuple[str, str]) -> list[_Endpoint]:
        publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        seen: set[tuple[str, str]] = set()
        out: list[_Endpoint] = []
        for slice_name in sorted(self._slices_by_svc.get(key, ())):
            sl = self._slices.get((key[0], slice_name)) or {}
            if sl.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
                continue
            ports = tuple((str(p.get("name") or ""), str(p.get("protocol") or "TCP"), int(p["port"]))
                          for p in (sl.get("ports") or []) if p.get("port") is not None)
            for ep in sl.get("endpoints") or []:
                ready = (ep.get("conditions") or {}).get("ready")
                if ready is False and not publish:
                    continue
                hostname = str(ep.get("hostname") or "").lower()
                for addr in ep.get("addresses") or []:
                    ip = _ip(addr)
                    if ip is None:
                        continue
                    label = hostname or dashed(str(ip))
                    if (str(ip), label) in seen:
                        continue
                    seen.add((str(ip), label))
                    out.append(_Endpoint(str(ip), label, ports))
        return out

    def _service_records(self, svc: Obj) -> list[tuple[int, Record]]:
        ns, name = _meta(svc)
        spec = svc.get("spec") or {}
        base = f"{name}.{ns}.svc.{self.zone}".lower()
        out: list[tuple[int, Record]] = []
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").strip()
            if target:
                out.append((_TIER_NORMAL, self._rec(base, "CNAME", fqdn(target))))
            return out
        ports = [(str(p.get("name") or ""), str(p.get("protocol") or "TCP"), int(p["port"]))
                 for p in (spec.get("ports") or []) if p.get("port") is not None]
        endpoints = self._ready_endpoints(svc, (ns, name))
        # Endpoint names (<host>.<svc>...) exist for every service with endpoints, as in CoreDNS.
        for ep in endpoints:
            ip = ipaddress.ip_address(ep.ip)
            ep_name = f"{ep.hostname}.{base}"
            out.append((_TIER_NORMAL, self._rec(ep_name, _addr_rtype(ip), ep.ip)))
            out.append((_TIER_ENDPOINT, self._rec(fqdn(ip.reverse_pointer), "PTR", ep_name)))
        if without_cluster_ip(svc):
            srv_targets: dict[str, list[tuple[int, str]]] = {}  # srv name -> [(port, target)]
            for ep in endpoints:
                out.append((_TIER_NORMAL, self._rec(base, _addr_rtype(ipaddress.ip_address(ep.ip)), ep.ip)))
                for pname, proto, port in ep.ports:
                    target = f"{ep.hostname}.{base}"
                    srv_targets.setdefault(base, []).append((port, target))
                    if pname:
                        srv_targets.setdefault(f"_{pname}._{proto}.{base}".lower(), []).append((port, target))
            out.extend(self._srv(srv_targets))
            return out
        ips = _service_ips(svc)
        srv_targets = {}
        for ip_text in ips:
            ip = ipaddress.ip_address(ip_text)
            out.append((_TIER_NORMAL, self._rec(base, _addr_rtype(ip), ip_text)))
            out.append((_TIER_NORMAL, self._rec(fqdn(ip.reverse_pointer), "PTR", base)))
        if ips:
            for pname, proto, port in ports:
                srv_targets.setdefault(base, []).append((port, base))
                if pname:
                    srv_targets.setdefault(f"_{pname}._{proto}.{base}".lower(), []).append((port, base))
        out.extend(self._srv(srv_targets))
        return out

    def _srv(self, targets: dict[str, list[tuple[int, str]]]) -> list[tuple[int, Record]]:
        out: list[tuple[int, Record]] = []
        for name, items in targets.items():
            unique = list(dict.fromkeys(items))
            weight = max(1, 100 // len(unique))
            out.extend((_TIER_NORMAL, self._rec(name, "SRV", 0, weight, port, target))
                       for port, target in unique)
        return out

    def _pod_ips(self, pod: Obj) -> list[str]:
        status = pod.get("status") or {}
        ips = [str(p.get("ip")) for p in (status.get("podIPs") or []) if p.get("ip")]
        if status.get("podIP") and status["podIP"] not in ips:
            ips.insert(0, str(status["podIP"]))
        if status.get("phase") in ("Succeeded", "Failed"):
            return []
        if (pod.get("spec") or {}).get("hostNetwork"):
            return []  # a host-network pod's IP is its node's: no pod records
        return [i for i in ips if _ip(i) is not None]

    def _pod_records(self, pod: Obj) -> list[tuple[int, Record]]:
        ns, _ = _meta(pod)
        out: list[tuple[int, Record]] = []
        for ip_text in self._pod_ips(pod):
            ip = ipaddress.ip_address(ip_text)
            name = f"{dashed(ip_text)}.{ns}.pod.{self.zone}".lower()
            if self.pods_mode == "verified":
                out.append((_TIER_NORMAL, self._rec(name, _addr_rtype(ip), ip_text)))
            if self.pods_mode != "disabled":
                out.append((_TIER_POD, self._rec(fqdn(ip.reverse_pointer), "PTR", name)))
        return out

    # ---- queries -----------------------------------------------------------
    def in_zone(self, name: str) -> bool:
        name = fqdn(name)
        return name == self.zone or name.endswith("." + self.zone)

    def _entries(self, name: str) -> list[tuple[int, Record]]:
        return [e for _, group in self._names.get(name, ()) for e in group]

    def _exists(self, name: str) -> bool:
        return name in self._names or name in self._ancestors or name in self._fixed_names

    def _insecure_pod(self, name: str) -> Record | None:
        if self.pods_mode != "insecure":
            return None
        labels = name[: -len(self.zone) - 1].split(".") if self.in_zone(name) else []
        if len(labels) != 3 or labels[2] != "pod":
            return None
        text = labels[0]
        ip = _ip(text.replace("-", ".")) if text.count("-") == 3 else _ip(text.replace("-", ":"))
        return None if ip is None else self._rec(name, _addr_rtype(ip), str(ip))

    def _records_at(self, name: str, qtype: str) -> list[Record]:
        entries = self._entries(name)
        insecure = self._insecure_pod(name)
        if insecure is not None:
            entries.append((_TIER_NORMAL, insecure))
        if qtype != "ANY":
            entries = [e for e in entries if e[1].rtype == qtype]
        if not entries:
            return []
        best = min(t for t, _ in entries)
        return list(dict.fromkeys(r for t, r in entries if t == best))

    def lookup(self, qname: str, qtype: str) -> Answer:
        """Answer one question. Names outside the cluster domain and unknown reverse names
        come back with `authoritative=False` and no records."""
        name = fqdn(qname)
        qtype = qtype.upper()
        if not self.in_zone(name):
            if name.endswith((".in-addr.arpa.", ".ip6.arpa.")):
                recs = self._records_at(name, qtype) if qtype in ("PTR", "ANY") else []
                if recs or name in self._names:
                    return Answer(NOERROR, recs, [] if recs else [self.soa()])
            return Answer(NOERROR, authoritative=False)
        if qtype == "SOA" and name == self.zone:
            return Answer(NOERROR, [self.soa()])
        recs = self._records_at(name, qtype)
        if recs:
            return self._with_additional(recs)
        cname = self._records_at(name, "CNAME") if qtype != "CNAME" else []
        if cname:
            return self._chase(cname[0], qtype)
        if self._exists(name) or self._insecure_pod(name) is not None:
            return Answer(NOERROR, [], [self.soa()])
        return Answer(NXDOMAIN, [], [self.soa()])

    def _with_additional(self, recs: list[Record]) -> Answer:
        extra: list[Record] = []
        for r in recs:
            if r.rtype == "SRV":
                extra.extend(self._records_at(r.data[3], "A") + self._records_at(r.data[3], "AAAA"))
            elif r.rtype == "NS":
                extra.extend(self._records_at(r.data[0], "A"))
        return Answer(NOERROR, recs, [], list(dict.fromkeys(extra)))

    def _chase(self, cname: Record, qtype: str) -> Answer:
        """A CNAME answer; if its target is in the zone, follow it (up to 8 hops)."""
        chain = [cname]
        target = str(cname.data[0])
        for _ in range(8):
            if not self.in_zone(target):
                break
            nxt = self._records_at(target, "CNAME")
            if nxt:
                chain.append(nxt[0])
                target = str(nxt[0].data[0])
                continue
            chain.extend(self._records_at(target, qtype))
            break
        return Answer(NOERROR, chain)

    def cname_target_outside(self, answer: Answer) -> str | None:
        """If `answer` ends in a CNAME to a name outside the zone, that name (for the server to resolve)."""
        if answer.answers and answer.answers[-1].rtype == "CNAME":
            target = str(answer.answers[-1].data[0])
            return None if self.in_zone(target) else target
        return None

    # ---- introspection -------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._names)

    def counts(self) -> dict[str, int]:
        return {"services": len(self._services), "endpointslices": len(self._slices),
                "pods": len(self._pods), "names": len(self._names)}
