"""Pure helpers on a Service's allocation-related fields (no allocator state).

Ports of kube-apiserver's `storage/alloc.go` helpers: which types need what,
`normalizeClusterIPs`, `patchAllocatedValues`, and the clusterIP pre-check
(`ValidateServiceClusterIPsRelatedFields`) that runs before allocation.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from podnet.model.errors import FieldError, duplicate, invalid, not_supported, required
from podnet.model.kinds import Obj
from podnet.model.services import NONE_IP

FAMILIES = ("IPv4", "IPv6")
POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")


def spec_of(svc: Obj) -> dict[str, Any]:
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        svc["spec"] = spec
    return spec


def svc_type(svc: Obj | None) -> str:
    if svc is None:
        return ""
    return str((svc.get("spec") or {}).get("type") or "ClusterIP")


def ports_of(svc: Obj) -> list[dict[str, Any]]:
    ports = (svc.get("spec") or {}).get("ports") or []
    return [p for p in ports if isinstance(p, dict)]


def as_int(v: Any) -> int:
    """A port-ish value as int; 0 for absent or non-numeric (validation reports those)."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return 0


def needs_cluster_ip(svc: Obj | None) -> bool:
    return svc is not None and svc_type(svc) != "ExternalName"


def needs_node_ports(svc: Obj | None) -> bool:
    return svc is not None and svc_type(svc) in ("NodePort", "LoadBalancer")


def allocates_node_ports(svc: Obj) -> bool:
    """`shouldAllocateNodePorts`: NodePort always; LoadBalancer unless allocateLoadBalancerNodePorts false."""
    t = svc_type(svc)
    if t == "NodePort":
        return True
    if t == "LoadBalancer":
        return (svc.get("spec") or {}).get("allocateLoadBalancerNodePorts") is not False
    return False


def needs_hc_node_port(svc: Obj | None) -> bool:
    if svc is None:
        return False
    spec = svc.get("spec") or {}
    return svc_type(svc) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def node_port_numbers(svc: Obj | None) -> list[int]:
    if svc is None:
        return []
    out: list[int] = []
    for p in ports_of(svc):
        n = as_int(p.get("nodePort"))
        if n and n not in out:
            out.append(n)
    return out


def hc_node_port(svc: Obj | None) -> int:
    if svc is None:
        return 0
    return as_int((svc.get("spec") or {}).get("healthCheckNodePort"))


def cluster_ips(svc: Obj | None) -> list[str]:
    if svc is None:
        return []
    ips = (svc.get("spec") or {}).get("clusterIPs") or []
    return [str(i) for i in ips]


def normalize_cluster_ips(new: Obj, old: Obj | None) -> None:
    """`normalizeClusterIPs`: reconcile the singular and plural fields the way the registry does."""
    spec = spec_of(new)
    cip = spec.get("clusterIP") or ""
    cips = list(spec.get("clusterIPs") or [])
    if old is None:
        if cip and not cips:
            spec["clusterIPs"] = [cip]
        return
    ospec = old.get("spec") or {}
    ocip = ospec.get("clusterIP") or ""
    ocips = list(ospec.get("clusterIPs") or [])
    if ocips and not cips and ocip == cip:
        spec["clusterIPs"] = cips = ocips
    if ocip != cip:
        same = cips == ocips
        if ocip and not cip:
            if same:
                spec.pop("clusterIPs", None)
        elif same:
            spec["clusterIPs"] = [cip]


def patch_allocated_values(new: Obj, old: Obj) -> None:
    """`patchAllocatedValues`: an update that omits allocated values keeps the old ones.

    This is what lets `kubectl apply`/`replace` of a manifest without clusterIP/nodePort work.
    """
    spec, ospec = spec_of(new), old.get("spec") or {}
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not spec.get("clusterIP") and ospec.get("clusterIP"):
            spec["clusterIP"] = ospec["clusterIP"]
        if not spec.get("clusterIPs") and ospec.get("clusterIPs"):
            spec["clusterIPs"] = list(ospec["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(new):
        used = set(node_port_numbers(old)) & set(node_port_numbers(new))
        by_name = {str(p.get("name") or ""): as_int(p.get("nodePort")) for p in ports_of(old)}
        for p in ports_of(new):
            if not as_int(p.get("nodePort")):
                prev = by_name.get(str(p.get("name") or ""), 0)
                if prev and prev not in used:
                    p["nodePort"] = prev
                    used.add(prev)
    if needs_hc_node_port(old) and needs_hc_node_port(new) and not hc_node_port(new) and hc_node_port(old):
        spec["healthCheckNodePort"] = hc_node_port(old)


def family_of(ip: str) -> str | None:
    try:
        return "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"
    except ValueError:
        return None


def precheck_cluster_ips(svc: Obj) -> list[FieldError]:
    """`ValidateServiceClusterIPsRelatedFields` (the part the allocator runs first); skipped for
    ExternalName."""
    if svc_type(svc) == "ExternalName":
        return []
    spec = svc.get("spec") or {}
    errs: list[FieldError] = []
    cip = spec.get("clusterIP") or ""
    cips = spec.get("clusterIPs") or []
    if not isinstance(cips, list):
        return [invalid("spec.clusterIPs", cips, "must be a list of IP addresses")]
    if cip and not cips:
        errs.append(required("spec.clusterIPs"))
    elif cips and cips[0] != cip:
        if not cip:
            errs.append(invalid("spec.clusterIPs", cips, "must be empty when `clusterIP` is not specified"))
        else:
            errs.append(invalid("spec.clusterIPs", cips, "first value must match `clusterIP`"))
    fams = spec.get("ipFamilies") or []
    if not isinstance(fams, list):
        fams = []
    seen: set[str] = set()
    for i, f in enumerate(fams):
        if f not in FAMILIES:
            errs.append(not_supported(f"spec.ipFamilies[{i}]", f, FAMILIES))
        elif f in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", f))
        seen.add(str(f))
    if len(fams) > 2:
        errs.append(invalid("spec.ipFamilies", fams, "may only hold up to 2 values"))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, POLICIES))
    if NONE_IP in cips and (len(cips) != 1 or cips[0] != NONE_IP):
        errs.append(invalid("spec.clusterIPs", cips, "'None' must be the first and only value"))
        return errs
    if cips == [NONE_IP]:
        return errs
    ip_fams: list[str] = []
    for i, ip in enumerate(cips):
        fam = family_of(str(ip))
        if fam is None:
            errs.append(invalid(f"spec.clusterIPs[{i}]", ip,
                                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
            continue
        ip_fams.append(fam)
        if i < len(fams) and fams[i] in FAMILIES and fams[i] != fam:
            errs.append(invalid(f"spec.clusterIPs[{i}]", ip,
                                f"expected an {fams[i]} value as indicated by `ipFamilies[{i}]`"))
    if len(cips) > 2:
        errs.append(invalid("spec.clusterIPs", cips, "may only hold up to 2 values"))
    elif len(ip_fams) == 2 and ip_fams[0] == ip_fams[1]:
        errs.append(invalid("spec.clusterIPs", cips, "may specify no more than one IP for each IP family"))
    return errs
