"""ServiceHooks: the API server's Service allocation step (kube-apiserver `storage/alloc.go`).

Create: normalize clusterIP/clusterIPs, pick ipFamilies/ipFamilyPolicy, allocate the
cluster IP, NodePorts (one per service port number: 53/TCP and 53/UDP share) and the
healthCheckNodePort, and a LoadBalancer IP from the pool.
Update: keep what the client omitted (`patchAllocatedValues`), allocate for new ports
or a type change, refuse cluster IP changes, and free what the new object no longer
holds once the write is committed.

All allocator state lives in memory and is rebuilt by `load(store)` from the stored
Services: the Services are the record, so a restart never hands out a value twice.
Every method runs to completion without awaiting in between, so on the API server's
single event loop concurrent requests can never take the same value.

LoadBalancer IPs: the hook reserves the IP and records it in the annotation
`podnet.io/lb-ip` (and also sets `status.loadBalancer.ingress` on the object it
returns). The LoadBalancer status controller (podnet.controllers.lb_status) writes
`status.loadBalancer.ingress[0] = {ip, ipMode: VIP}` from that annotation through the
status subresource, which covers servers that reset status on create/update.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from podnet.allocators.cluster_ip import ClusterIPAllocator
from podnet.allocators.errors import AllocationError, RangeFull
from podnet.allocators.lb_pool import LB_IP_ANNOTATION, LoadBalancerPool, handles
from podnet.allocators.node_port import NodePortAllocator
from podnet.allocators.service_fields import (
    allocates_node_ports,
    as_int,
    cluster_ips,
    family_of,
    hc_node_port,
    needs_cluster_ip,
    needs_hc_node_port,
    needs_node_ports,
    node_port_numbers,
    normalize_cluster_ips,
    patch_allocated_values,
    ports_of,
    precheck_cluster_ips,
    spec_of,
    svc_type,
)
from podnet.api.errors import internal_error, invalid
from podnet.api.hooks import NoReservation, Reservation
from podnet.model.errors import FieldError, forbidden
from podnet.model.errors import invalid as invalid_field
from podnet.model.kinds import SERVICES, Obj, ResourceType
from podnet.model.services import NONE_IP, is_headless
from podnet.store.base import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class ServiceReservation:
    """What one create/update took (undone by release) and what it frees once committed."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._on_commit: list[Callable[[], None]] = []
        self._done = False

    def took(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def free_on_commit(self, fn: Callable[[], None]) -> None:
        self._on_commit.append(fn)

    def release(self) -> None:
        if self._done:
            return
        self._done = True
        for fn in reversed(self._undo):
            fn()

    def commit(self) -> None:
        if self._done:
            return
        self._done = True
        for fn in self._on_commit:
            fn()


def _name(svc: Obj) -> str:
    meta = svc.get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "")


class ServiceHooks:
    """`podnet.api.hooks.ResourceHooks` for Services; other resource types pass through."""

    def __init__(self, service_cidr: str, node_port_range: tuple[int, int], lb_pool: str = ""):
        self.service_cidr = service_cidr
        self.node_port_range = node_port_range
        self.lb_pool_spec = lb_pool
        self.family = "IPv6" if ipaddress.ip_network(service_cidr, strict=False).version == 6 else "IPv4"
        self._reset()

    def _reset(self) -> None:
        self.cluster_ips = ClusterIPAllocator(self.service_cidr)
        self.node_ports = NodePortAllocator(*self.node_port_range)
        self.lb_pool = LoadBalancerPool(self.lb_pool_spec)

    # ---- startup ----------------------------------------------------------
    async def load(self, store: Store) -> None:
        items, _ = await store.list(SERVICES.key)
        self.rebuild(items)

    def rebuild(self, services: list[Obj]) -> None:
        """Mark every value the given Services hold as taken (conflicts are logged, not fatal)."""
        self._reset()
        for svc in services:
            who = f"{(svc.get('metadata') or {}).get('namespace')}/{_name(svc)}"
            if needs_cluster_ip(svc):
                for ip in cluster_ips(svc):
                    if ip != NONE_IP and family_of(ip) == self.family:
                        self._take_quiet(self.cluster_ips.allocate, ip, who)
            if needs_node_ports(svc):
                for port in node_port_numbers(svc):
                    self._take_quiet(self.node_ports.allocate, port, who)
            if needs_hc_node_port(svc) and hc_node_port(svc):
                self._take_quiet(self.node_ports.allocate, hc_node_port(svc), who)
            ip = self._recorded_lb_ip(svc)
            if ip and handles(svc):
                self._take_quiet(self.lb_pool.allocate, ip, who)

    @staticmethod
    def _take_quiet(fn: Callable[[T], object], value: T, who: str) -> None:
        try:
            fn(value)
        except AllocationError as e:
            log.warning("service %s holds %s which cannot be re-reserved: %s", who, value, e)

    # ---- hooks ------------------------------------------------------------
    async def before_create(self, rt: ResourceType, obj: Obj) -> Reservation:
        if rt.key != SERVICES.key:
            return NoReservation()
        res = ServiceReservation()
        try:
            self._create(obj, res)
        except BaseException:
            res.release()
            raise
        return res

    async def before_update(self, rt: ResourceType, new: Obj, old: Obj) -> Reservation:
        if rt.key != SERVICES.key:
            return NoReservation()
        res = ServiceReservation()
        try:
            self._update(new, old, res)
        except BaseException:
            res.release()
            raise
        return res

    async def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.key != SERVICES.key:
            return
        self._release_all(obj)

    def _release_all(self, svc: Obj) -> None:
        if needs_cluster_ip(svc):
            for ip in cluster_ips(svc):
                if ip != NONE_IP:
                    self.cluster_ips.release(ip)
        if needs_node_ports(svc):
            for port in node_port_numbers(svc):
                self.node_ports.release(port)
        if needs_hc_node_port(svc) and hc_node_port(svc):
            self.node_ports.release(hc_node_port(svc))
        ip = self._recorded_lb_ip(svc)
        if ip and handles(svc):
            self.lb_pool.release(ip)

    # ---- create -----------------------------------------------------------
    def _create(self, svc: Obj, res: ServiceReservation) -> None:
        spec_of(svc)
        normalize_cluster_ips(svc, None)
        errs = precheck_cluster_ips(svc)
        if errs:
            raise invalid(SERVICES, _name(svc), errs)
        # a client cannot claim a pool IP by writing the record annotation itself
        ((svc.get("metadata") or {}).get("annotations") or {}).pop(LB_IP_ANNOTATION, None)
        if svc_type(svc) == "ExternalName":
            return
        self._init_ip_families(svc, None)
        if not is_headless(svc):
            self._alloc_cluster_ip(svc, res)
        if needs_node_ports(svc):
            self._init_node_ports(svc, res)
        else:
            self._forbid_node_ports_for_cluster_ip(svc, set())
        self._alloc_hc_node_port(svc, None, res)
        self._alloc_lb_ip(svc, None, res)

    def _init_ip_families(self, svc: Obj, old: Obj | None) -> None:
        """`initIPFamilyFields` on a single-stack cluster."""
        spec = spec_of(svc)
        name = _name(svc)
        if old is not None and needs_cluster_ip(old):
            ospec = old.get("spec") or {}
            if spec.get("ipFamilyPolicy") is None and ospec.get("ipFamilyPolicy") is not None:
                spec["ipFamilyPolicy"] = ospec["ipFamilyPolicy"]
            if not spec.get("ipFamilies") and ospec.get("ipFamilies"):
                spec["ipFamilies"] = list(ospec["ipFamilies"])
        headless_selectorless = spec.get("clusterIP") == NONE_IP and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else "SingleStack"
        errs: list[FieldError] = []
        policy = spec["ipFamilyPolicy"]
        fams = list(spec.get("ipFamilies") or [])
        cips = list(spec.get("clusterIPs") or [])
        if policy == "SingleStack":
            if len(cips) == 2:
                errs.append(invalid_field("spec.ipFamilyPolicy", policy,
                                          "must be 'RequireDualStack' or 'PreferDualStack' when multiple "
                                          "cluster IPs are specified"))
            if len(fams) == 2:
                errs.append(invalid_field("spec.ipFamilyPolicy", policy,
                                          "must be 'RequireDualStack' or 'PreferDualStack' when multiple "
                                          "IP families are specified"))
        for i, ip in enumerate(cips):  # infer families from the requested IPs
            if ip == NONE_IP:
                break
            fam = family_of(str(ip))
            if fam is not None and i >= len(fams):
                if fam != self.family:
                    errs.append(invalid_field(f"spec.clusterIPs[{i}]", cips,
                                              f"{fam} is not configured on this cluster"))
                else:
                    fams.append(fam)
        if errs:
            raise invalid(SERVICES, name, errs)
        if headless_selectorless:
            # upstream lets these carry both families even on a single-stack cluster
            if not fams:
                fams = [self.family]
            if len(fams) < 2 and policy != "SingleStack":
                fams.append("IPv6" if fams[0] == "IPv4" else "IPv4")
            spec["ipFamilies"] = fams
            return
        if policy == "RequireDualStack":
            errs.append(invalid_field("spec.ipFamilyPolicy", policy,
                                      "this cluster is not configured for dual-stack services"))
        for i, f in enumerate(fams):
            if f != self.family:
                errs.append(invalid_field(f"spec.ipFamilies[{i}]", f, "not configured on this cluster"))
        if errs:
            raise invalid(SERVICES, name, errs)
        spec["ipFamilies"] = fams or [self.family]

    def _alloc_cluster_ip(self, svc: Obj, res: ServiceReservation) -> None:
        spec = spec_of(svc)
        cips = list(spec.get("clusterIPs") or [])
        if cips:
            ip = str(cips[0])
            try:
                got = self.cluster_ips.allocate(ip)
            except AllocationError as e:
                raise invalid(SERVICES, _name(svc), [invalid_field(
                    "spec.clusterIPs", cips, f"failed to allocate IP {ip}: {e}")]) from None
        else:
            try:
                got = self.cluster_ips.allocate_next()
            except RangeFull as e:
                raise internal_error(f"failed to allocate a serviceIP: {e}") from None
        res.took(lambda: self.cluster_ips.release(got))
        spec["clusterIP"] = got
        spec["clusterIPs"] = [got]

    def _alloc_node_port(self, svc: Obj, field: str, want: int, res: ServiceReservation) -> int:
        if want:
            try:
                self.node_ports.allocate(want)
            except AllocationError as e:
                raise invalid(SERVICES, _name(svc), [invalid_field(field, want, str(e))]) from None
            got = want
        else:
            try:
                got = self.node_ports.allocate_next()
            except RangeFull as e:
                raise internal_error(f"failed to allocate a nodePort: {e}") from None
        res.took(lambda: self.node_ports.release(got))
        return got

    def _init_node_ports(self, svc: Obj, res: ServiceReservation,
                         keep: frozenset[int] = frozenset()) -> None:
        """`initNodePorts` (create, or a type change to NodePort/LoadBalancer) and, with `keep`,
        `updateNodePorts`: values in `keep` are already held by the old version of this Service.

        Ports with the same port number (53/TCP + 53/UDP) share one nodePort."""
        ports = ports_of(svc)
        auto = allocates_node_ports(svc)
        by_number: dict[int, int] = {}
        taken_here: set[int] = set()
        for i, p in enumerate(ports):
            field = f"spec.ports[{i}].nodePort"
            want = as_int(p.get("nodePort"))
            number = as_int(p.get("port"))
            if not want and not auto:
                continue
            shared = by_number.get(number, 0)
            if shared and want in (0, shared):
                p["nodePort"] = shared
                continue
            if not want and not shared:
                # `findRequestedNodePort`: a later port with the same number may name the value
                want = next((as_int(q.get("nodePort")) for q in ports
                             if as_int(q.get("port")) == number and as_int(q.get("nodePort"))), 0)
            if want:
                if want in taken_here:
                    raise invalid(SERVICES, _name(svc), [invalid_field(
                        field, want, "provided port is already allocated")])
                got = want if want in keep else self._alloc_node_port(svc, field, want, res)
            else:
                got = self._alloc_node_port(svc, field, 0, res)
            taken_here.add(got)
            p["nodePort"] = got
            by_number.setdefault(number, got)

    def _forbid_node_ports_for_cluster_ip(self, svc: Obj, old_ports: set[int]) -> None:
        """A ClusterIP Service may carry no nodePort, except old ones sent back on NodePort→ClusterIP
        (those are dropped)."""
        if svc_type(svc) == "ExternalName":
            for p in ports_of(svc):
                p.pop("nodePort", None)
            return
        for i, p in enumerate(ports_of(svc)):
            n = as_int(p.get("nodePort"))
            if not n:
                continue
            if n in old_ports:
                p.pop("nodePort", None)
            else:
                raise invalid(SERVICES, _name(svc), [forbidden(
                    f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")])

    def _alloc_hc_node_port(self, svc: Obj, old: Obj | None, res: ServiceReservation) -> None:
        spec = spec_of(svc)
        want = hc_node_port(svc)
        old_hc = hc_node_port(old) if needs_hc_node_port(old) else 0
        if needs_hc_node_port(svc):
            if old_hc:
                if want and want != old_hc:
                    raise invalid(SERVICES, _name(svc), [forbidden("spec.healthCheckNodePort",
                                                                   "field is immutable")])
                spec["healthCheckNodePort"] = old_hc
                return
            try:
                got = self.node_ports.allocate(want) if want else self.node_ports.allocate_next()
            except AllocationError as e:  # upstream returns these as internal errors (500)
                if want:
                    raise internal_error(f"failed to allocate requested HealthCheck NodePort {want}: {e}") \
                        from None
                raise internal_error(f"failed to allocate a HealthCheck NodePort 0: {e}") from None
            res.took(lambda: self.node_ports.release(got))
            spec["healthCheckNodePort"] = got
            return
        if old_hc:
            res.free_on_commit(lambda: self.node_ports.release(old_hc))
            if want in (0, old_hc):
                spec.pop("healthCheckNodePort", None)
                return
        if want:
            raise invalid(SERVICES, _name(svc), [invalid_field(
                "spec.healthCheckNodePort", want,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")])

    # ---- LoadBalancer IP --------------------------------------------------
    @staticmethod
    def _recorded_lb_ip(svc: Obj | None) -> str:
        if svc is None:
            return ""
        return str(((svc.get("metadata") or {}).get("annotations") or {}).get(LB_IP_ANNOTATION) or "")

    def _alloc_lb_ip(self, svc: Obj, old: Obj | None, res: ServiceReservation) -> None:
        meta = svc.setdefault("metadata", {})
        annotations = meta.get("annotations") or {}
        old_ip = self._recorded_lb_ip(old) if old is not None and handles(old) else ""
        annotations.pop(LB_IP_ANNOTATION, None)
        if not handles(svc):
            if old_ip:
                res.free_on_commit(lambda: self.lb_pool.release(old_ip))
            return
        want = str(spec_of(svc).get("loadBalancerIP") or "")
        ip = ""
        if want and want != old_ip:
            if self.lb_pool.enabled:
                try:
                    ip = self.lb_pool.allocate(want)
                except AllocationError as e:
                    raise invalid(SERVICES, _name(svc), [invalid_field("spec.loadBalancerIP", want,
                                                                       str(e))]) from None
                res.took(lambda: self.lb_pool.release(ip))
                if old_ip:
                    res.free_on_commit(lambda: self.lb_pool.release(old_ip))
        elif old_ip:
            ip = old_ip
        elif self.lb_pool.enabled:
            try:
                ip = self.lb_pool.allocate_next()
            except RangeFull:
                ip = ""  # pool exhausted: the Service stays <pending>; the controller retries
            else:
                got = ip
                res.took(lambda: self.lb_pool.release(got))
        if ip:
            annotations[LB_IP_ANNOTATION] = ip
            meta["annotations"] = annotations
            status = svc.setdefault("status", {})
            status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}

    # ---- update -----------------------------------------------------------
    def _update(self, svc: Obj, old: Obj, res: ServiceReservation) -> None:
        name = _name(svc)
        patch_allocated_values(svc, old)
        normalize_cluster_ips(svc, old)
        errs = precheck_cluster_ips(svc)
        if errs:
            raise invalid(SERVICES, name, errs)
        spec = spec_of(svc)
        old_ips = [ip for ip in cluster_ips(old) if ip != NONE_IP] if needs_cluster_ip(old) else []

        # cluster IP
        if needs_cluster_ip(svc):
            self._init_ip_families(svc, old)
            if needs_cluster_ip(old):
                self._check_cluster_ip_unchanged(svc, old)
            elif not is_headless(svc):
                self._alloc_cluster_ip(svc, res)
        elif needs_cluster_ip(old):
            self._drop_for_external_name(svc, old)
            for ip in old_ips:
                res.free_on_commit(partial(self.cluster_ips.release, ip))

        # node ports
        old_nps = set(node_port_numbers(old)) if needs_node_ports(old) else set()
        if needs_node_ports(svc):
            self._init_node_ports(svc, res, keep=frozenset(old_nps))
            still = set(node_port_numbers(svc))
        else:
            self._forbid_node_ports_for_cluster_ip(svc, old_nps)
            still = set()
        for port in old_nps - still:
            res.free_on_commit(partial(self.node_ports.release, port))

        self._alloc_hc_node_port(svc, old, res)
        if svc_type(svc) != "LoadBalancer" and svc_type(old) == "LoadBalancer":
            ospec = old.get("spec") or {}
            for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
                if key in spec and spec.get(key) == ospec.get(key):
                    spec.pop(key)
            if isinstance(svc.get("status"), dict):
                svc["status"]["loadBalancer"] = {}
        self._alloc_lb_ip(svc, old, res)

    def _check_cluster_ip_unchanged(self, svc: Obj, old: Obj) -> None:
        """`validateUpgradeDowngradeClusterIPs` for a single-stack cluster."""
        if is_headless(svc) and is_headless(old):
            return
        new_ips, old_ips = cluster_ips(svc), cluster_ips(old)
        if not old_ips:
            return
        if not new_ips:
            raise invalid(SERVICES, _name(svc), [invalid_field("spec.clusterIPs[0]", "",
                                                               "primary clusterIP can not be unset")])
        if new_ips[0] != old_ips[0]:
            raise invalid(SERVICES, _name(svc), [invalid_field("spec.clusterIPs[0]", new_ips[0],
                                                               "may not change once set")])

    def _drop_for_external_name(self, svc: Obj, old: Obj) -> None:
        """Type → ExternalName: unchanged clusterIP(s)/ipFamilies/ipFamilyPolicy are wiped; changed
        ones are refused as the validator does."""
        spec, ospec = spec_of(svc), old.get("spec") or {}
        errs: list[FieldError] = []
        checks = (("clusterIP", None), ("clusterIPs", "spec.clusterIPs"),
                  ("ipFamilies", "spec.ipFamilies"), ("ipFamilyPolicy", "spec.ipFamilyPolicy"))
        for key, path in checks:
            if key not in spec or spec[key] in (None, "", []):
                spec.pop(key, None)
                continue
            if spec[key] == ospec.get(key):
                spec.pop(key)
            elif path is not None:
                errs.append(forbidden(path, "may not be set for ExternalName services"))
        if errs:
            raise invalid(SERVICES, _name(svc), errs)


