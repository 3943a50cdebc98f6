"""Service validation: `ValidateService` and `ValidateServiceUpdate` (pkg/apis/core/validation).

Runs on a defaulted object (see defaults.py). Allocation (clusterIP, nodePort range, "already
allocated") is the allocators' job; this module checks field syntax and combinations only.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from podnet.model import names
from podnet.model.errors import (
    FieldError,
    GoValue,
    duplicate,
    forbidden,
    go_quote,
    go_string_slice,
    invalid,
    not_supported,
    required,
)
from podnet.model.validation_meta import (
    as_int,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
MAX_AFFINITY_SECONDS = 86400
LB_ONLY = "may only be used when `type` is 'LoadBalancer'"
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode"
TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints"


def _spec(svc: dict[str, Any]) -> dict[str, Any]:
    spec = svc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _cluster_ips(spec: dict[str, Any]) -> list[str]:
    """clusterIPs as the REST layer sees them: mirrors `clusterIP` when only that was given."""
    ips = spec.get("clusterIPs")
    if isinstance(ips, list) and ips:
        return [str(x) for x in ips]
    if spec.get("clusterIP"):
        return [str(spec["clusterIP"])]
    return []


def _is_headless_spec(spec: dict[str, Any]) -> bool:
    ips = _cluster_ips(spec)
    return len(ips) == 1 and ips[0] == "None"


def externally_accessible(spec: dict[str, Any]) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def needs_health_check(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _int_or(value: Any, default: int = 0) -> int:
    v = as_int(value)
    return default if v is None else v


def go_service_port_key(protocol: str, port: Any) -> GoValue:
    """`%#v` of the `core.ServicePort{Protocol, Port}` key Kubernetes reports for duplicates."""
    return GoValue(
        f'core.ServicePort{{Name:"", Protocol:{go_quote(protocol)}, AppProtocol:(*string)(nil), '
        f'Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
    )


def _validate_port(sp: dict[str, Any], require_name: bool, seen: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = sp.get("name") or ""
    if require_name and not name:
        errs.append(required(f"{path}.name", ""))
    elif name:
        errs.extend(invalid(f"{path}.name", name, m) for m in names.dns1123_label_errors(str(name)))
        if name in seen:
            errs.append(duplicate(f"{path}.name", name))
        else:
            seen.add(str(name))
    port = sp.get("port")
    port_i = as_int(port)
    if port_i is None:
        errs.append(
            invalid(f"{path}.port", port if port is not None else 0, names.inclusive_range_error(1, 65535))
        )
    else:
        errs.extend(invalid(f"{path}.port", port_i, m) for m in names.port_num_errors(port_i))
    errs.extend(validate_port_protocol(sp.get("protocol"), f"{path}.protocol"))
    errs.extend(validate_port_num_or_name(sp.get("targetPort"), f"{path}.targetPort"))
    errs.extend(validate_app_protocol(sp.get("appProtocol"), f"{path}.appProtocol"))
    return errs


def validate_port_num_or_name(value: Any, path: str) -> list[FieldError]:
    """`ValidatePortNumOrName` on an IntOrString (numbers 1-65535, strings IANA_SVC_NAME)."""
    if isinstance(value, bool):
        return [invalid(path, value, "must be a port number or a port name")]
    if isinstance(value, int):
        return [invalid(path, value, m) for m in names.port_num_errors(value)]
    if isinstance(value, str):
        return [invalid(path, value, m) for m in names.port_name_errors(value)]
    if value is None:
        return [invalid(path, 0, names.inclusive_range_error(1, 65535))]
    return [invalid(path, GoValue(str(value)), "must be a port number or a port name")]


def validate_port_protocol(protocol: Any, path: str) -> list[FieldError]:
    """A Service, container or Endpoints port's `protocol`: required (empty counts as unset), and
    one of PROTOCOLS."""
    if not protocol:
        return [required(path, "")]
    if protocol not in PROTOCOLS:
        return [not_supported(path, protocol, PROTOCOLS)]
    return []


def validate_app_protocol(app_protocol: Any, path: str) -> list[FieldError]:
    """A port's optional `appProtocol`: a qualified name when set."""
    if app_protocol is None:
        return []
    return [invalid(path, app_protocol, m) for m in names.qualified_name_errors(str(app_protocol))]


def _validate_cluster_ips_related(spec: dict[str, Any]) -> list[FieldError]:
    """`ValidateServiceClusterIPsRelatedFields`."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cip = spec.get("clusterIP") or ""
    ips = _cluster_ips(spec)
    if cip:
        if ips[0] != cip:
            errs.append(
                invalid("spec.clusterIPs", go_string_slice(ips), "first value must match `clusterIP`")
            )
    elif ips:
        errs.append(
            invalid(
                "spec.clusterIPs", go_string_slice(ips), "must be empty when `clusterIP` is not specified"
            )
        )
    families = spec.get("ipFamilies") or []
    seen: set[str] = set()
    for i, fam in enumerate(families):
        if fam not in IP_FAMILIES:
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, IP_FAMILIES))
        if fam in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
        seen.add(str(fam))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))
    bad_ips = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad_ips = True
                errs.append(
                    invalid(
                        "spec.clusterIPs", go_string_slice(ips), "'None' must be the first and only value"
                    )
                )
            continue
        msgs = names.ip_errors(ip)
        if msgs:
            bad_ips = True
            errs.extend(invalid(f"spec.clusterIPs[{i}]", ip, m) for m in msgs)
    if len(ips) > 2:
        errs.append(invalid("spec.clusterIPs", go_string_slice(ips), "may only hold up to 2 values"))
    if bad_ips:
        return errs
    if len(ips) > 1:
        versions = {ipaddress.ip_address(ip).version for ip in ips}
        if len(versions) != len(ips):
            errs.append(
                invalid(
                    "spec.clusterIPs",
                    go_string_slice(ips),
                    "may specify no more than one IP for each IP family",
                )
            )
    if not _is_headless_spec(spec) and ips and families:
        for i, ip in enumerate(ips):
            if i > len(families) - 1:
                break
            v6 = ipaddress.ip_address(ip).version == 6
            if families[i] == "IPv4" and v6:
                errs.append(
                    invalid(
                        f"spec.clusterIPs[{i}]",
                        ip,
                        f"expected an IPv4 value as indicated by `ipFamilies[{i}]`",
                    )
                )
            if families[i] == "IPv6" and not v6:
                errs.append(
                    invalid(
                        f"spec.clusterIPs[{i}]",
                        ip,
                        f"expected an IPv6 value as indicated by `ipFamilies[{i}]`",
                    )
                )
    return errs


_LINK_LOCAL_MC4 = ipaddress.ip_network("224.0.0.0/24")
_LINK_LOCAL_MC6 = ipaddress.ip_network("ff02::/16")


@functools.lru_cache(maxsize=65536)
def _special_ip_messages(ip: str) -> tuple[str, ...]:
    addr = names.parse_ip(ip)
    if addr is None:
        raise ValueError(f"{ip!r} does not appear to be an IPv4 or IPv6 address")
    if addr.version == 4:
        # the ranges below as arithmetic on the address (ipaddress' properties test network
        # membership: slower, and every new pod IP passes through here)
        n = int(addr)
        if n != 0 and n >> 24 != 127 and n >> 16 != 0xA9FE and n >> 8 != 0xE00000:
            return ()
    msgs: list[str] = []
    if addr.is_unspecified:
        msgs.append(f"may not be unspecified ({ip})")
    if addr.is_loopback:
        msgs.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if addr.is_link_local:
        msgs.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    link_local_mc = (addr.version == 4 and addr in _LINK_LOCAL_MC4) or (
        addr.version == 6 and addr in _LINK_LOCAL_MC6
    )
    if link_local_mc:
        msgs.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    return tuple(msgs)


def _validate_non_special_ip(ip: str, path: str) -> list[FieldError]:
    return [invalid(path, ip, m) for m in _special_ip_messages(ip)]


def _validate_lb_class(old: dict[str, Any] | None, spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    cls = spec.get("loadBalancerClass")
    if (
        old is not None
        and old.get("type") == "LoadBalancer"
        and spec.get("type") == "LoadBalancer"
        and old.get("loadBalancerClass") != cls
    ):
        errs.append(invalid("spec.loadBalancerClass", cls, "may not change once set"))
    if spec.get("type") == "LoadBalancer":
        if cls is not None:
            errs.extend(
                invalid("spec.loadBalancerClass", cls, m) for m in names.qualified_name_errors(str(cls))
            )
    elif cls is not None:
        errs.append(forbidden("spec.loadBalancerClass", LB_ONLY))
    return errs


def _validate_traffic_policies(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    etp = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(spec):
        if etp:
            errs.append(
                invalid(
                    "spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"
                )
            )
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy", ""))
    elif etp not in TRAFFIC_POLICIES:
        errs.append(not_supported("spec.externalTrafficPolicy", etp, TRAFFIC_POLICIES))
    hc = _int_or(spec.get("healthCheckNodePort"))
    if not needs_health_check(spec):
        if hc != 0:
            errs.append(
                invalid(
                    "spec.healthCheckNodePort",
                    hc,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
    elif hc == 0:
        errs.append(required("spec.healthCheckNodePort", ""))
    else:
        errs.extend(invalid("spec.healthCheckNodePort", hc, m) for m in names.port_num_errors(hc))
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if spec.get("type") in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(required("spec.internalTrafficPolicy", ""))
    elif itp not in TRAFFIC_POLICIES:
        errs.append(not_supported("spec.internalTrafficPolicy", itp, TRAFFIC_POLICIES))
    td = spec.get("trafficDistribution")
    if td is not None and td != "PreferClose":
        errs.append(not_supported("spec.trafficDistribution", td, ["PreferClose"]))
    return errs


def validate_service(svc: dict[str, Any]) -> list[FieldError]:
    """`ValidateService` (create)."""
    meta = svc.get("metadata") if isinstance(svc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    errs = validate_object_meta(meta, True, names.name_is_dns1035_label)
    annotations = meta.get("annotations") or {}
    if (
        isinstance(annotations, dict)
        and TOPOLOGY_MODE_ANNOTATION in annotations
        and TOPOLOGY_HINTS_ANNOTATION in annotations
        and annotations[TOPOLOGY_MODE_ANNOTATION] != annotations[TOPOLOGY_HINTS_ANNOTATION]
    ):
        errs.append(
            invalid(
                f"metadata.annotations[{TOPOLOGY_MODE_ANNOTATION}]",
                annotations[TOPOLOGY_MODE_ANNOTATION],
                f"must match annotations[{TOPOLOGY_HINTS_ANNOTATION}] when both are specified",
            )
        )
    spec = _spec(svc)
    stype = spec.get("type") or ""
    ports = [p if isinstance(p, dict) else {} for p in (spec.get("ports") or [])]
    headless = _is_headless_spec(spec)
    ips = _cluster_ips(spec)
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports", ""))
    if stype in ("LoadBalancer", "NodePort") and headless:
        errs.append(invalid("spec.clusterIPs[0]", ips[0], f"may not be set to 'None' for {stype} services"))
    elif stype == "ExternalName":
        if ips:
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "")
        cname = cname[:-1] if cname.endswith(".") else cname
        if cname:
            errs.extend(invalid("spec.externalName", cname, m) for m in names.dns1123_subdomain_errors(cname))
        else:
            errs.append(required("spec.externalName", ""))
    seen_names: set[str] = set()
    for i, sp in enumerate(ports):
        errs.extend(_validate_port(sp, len(ports) > 1, seen_names, f"spec.ports[{i}]"))
    if spec.get("selector") is not None:
        errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    affinity = spec.get("sessionAffinity") or ""
    if not affinity:
        errs.append(required("spec.sessionAffinity", ""))
    elif affinity not in AFFINITIES:
        errs.append(not_supported("spec.sessionAffinity", affinity, AFFINITIES))
    cfg = spec.get("sessionAffinityConfig")
    if affinity == "ClientIP":
        errs.extend(_validate_client_ip_config(cfg))
    elif affinity == "None" and cfg is not None:
        errs.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    errs.extend(_validate_cluster_ips_related(spec))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        p = f"spec.externalIPs[{i}]"
        msgs = names.ip_errors(str(ip))
        if msgs:
            errs.extend(invalid(p, ip, m) for m in msgs)
        else:
            errs.extend(_validate_non_special_ip(str(ip), p))
    if not stype:
        errs.append(required("spec.type", ""))
    elif stype not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, SERVICE_TYPES))
    if stype == "ClusterIP":
        for i, sp in enumerate(ports):
            if _int_or(sp.get("nodePort")) != 0:
                errs.append(
                    forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
                )
    node_ports: set[tuple[str, int]] = set()
    for i, sp in enumerate(ports):
        np = _int_or(sp.get("nodePort"))
        if np == 0:
            continue
        key = (str(sp.get("protocol") or ""), np)
        if key in node_ports:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", np))
        node_ports.add(key)
    port_keys: set[tuple[str, Any]] = set()
    for i, sp in enumerate(ports):
        pkey = (str(sp.get("protocol") or ""), sp.get("port"))
        if pkey in port_keys:
            errs.append(duplicate(f"spec.ports[{i}]", go_service_port_key(pkey[0], _int_or(pkey[1]))))
        port_keys.add(pkey)
    errs.extend(_validate_source_ranges(spec, annotations if isinstance(annotations, dict) else {}))
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", LB_ONLY))
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts", ""))
    errs.extend(_validate_lb_class(None, spec))
    errs.extend(_validate_traffic_policies(spec))
    return errs


def _validate_client_ip_config(cfg: Any) -> list[FieldError]:
    why = "when session affinity type is ClientIP"
    path = "spec.sessionAffinityConfig"
    if not isinstance(cfg, dict):
        return [required(path, why)]
    cip = cfg.get("clientIP")
    if not isinstance(cip, dict):
        return [required(f"{path}.clientIP", why)]
    timeout = cip.get("timeoutSeconds")
    if timeout is None:
        return [required(f"{path}.clientIP.timeoutSeconds", why)]
    t = as_int(timeout)
    if t is None or t <= 0 or t > MAX_AFFINITY_SECONDS:
        return [
            invalid(
                f"{path}.clientIP.timeoutSeconds",
                timeout,
                f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}",
            )
        ]
    return []


def _validate_source_ranges(spec: dict[str, Any], annotations: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges:
        path = "spec.LoadBalancerSourceRanges"  # sic: Kubernetes spells this path with a capital L
        if spec.get("type") != "LoadBalancer":
            errs.append(forbidden(path, LB_ONLY))
        for i, value in enumerate(ranges):
            v = str(value).strip()
            errs.extend(invalid(f"{path}[{i}]", v, m) for m in names.cidr_errors(v))
    elif SOURCE_RANGES_ANNOTATION in annotations:
        path = f"metadata.annotations[{SOURCE_RANGES_ANNOTATION}]"
        if spec.get("type") != "LoadBalancer":
            errs.append(forbidden(path, LB_ONLY))
        val = str(annotations[SOURCE_RANGES_ANNOTATION] or "").strip()
        if val:
            for part in val.split(","):
                v = part.strip()
                errs.extend(invalid(path, v, m) for m in names.cidr_errors(v))
    return errs


def _validate_dual_stack_list_update(
    old: list[str], new: list[str], ipfamily_policy: Any, field: str, noun: str
) -> list[FieldError]:
    """The update rules Kubernetes applies alike to `spec.clusterIPs` and `spec.ipFamilies`: set
    entries may not change, the primary may not be unset, and dropping the secondary needs
    `ipFamilyPolicy: SingleStack`. `noun` names one entry in the messages ("clusterIP", "ipFamily")."""
    errs: list[FieldError] = []
    value = go_string_slice(new if new else None)
    if len(old) == len(new):
        for i, item in enumerate(old):
            if item != new[i]:
                errs.append(invalid(f"{field}[{i}]", value, "may not change once set"))
    elif len(old) > len(new):
        if not new:
            errs.append(invalid(f"{field}[0]", value, f"primary {noun} can not be unset"))
        if old and new and new[0] != old[0]:
            errs.append(invalid(f"{field}[0]", value, "may not change once set"))
        if len(new) == 1 and ipfamily_policy != "SingleStack":
            errs.append(
                invalid(
                    f"{field}[0]",
                    value,
                    f"must be set to 'SingleStack' when releasing the secondary {noun}",
                )
            )
    elif old and new[0] != old[0]:
        errs.append(invalid(f"{field}[0]", value, "may not change once set"))
    return errs


def _validate_cluster_ips_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    if new.get("type") == "ExternalName" or old.get("type") == "ExternalName":
        return []
    if _is_headless_spec(old) and _is_headless_spec(new):
        return []
    return _validate_dual_stack_list_update(
        _cluster_ips(old), _cluster_ips(new), new.get("ipFamilyPolicy"), "spec.clusterIPs", "clusterIP"
    )


def _validate_ip_families_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    if new.get("type") == "ExternalName" or old.get("type") == "ExternalName":
        return []
    ofam = [str(x) for x in old.get("ipFamilies") or []]
    nfam = [str(x) for x in new.get("ipFamilies") or []]
    return _validate_dual_stack_list_update(
        ofam, nfam, new.get("ipFamilyPolicy"), "spec.ipFamilies", "ipFamily"
    )


def validate_service_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """`ValidateServiceUpdate`: immutable meta and cluster IPs, then the full create rules."""
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    nspec, ospec = _spec(new), _spec(old)
    errs.extend(_validate_cluster_ips_update(ospec, nspec))
    errs.extend(_validate_ip_families_update(ospec, nspec))
    errs.extend(_validate_lb_class(ospec, nspec))
    if (
        needs_health_check(ospec)
        and needs_health_check(nspec)
        and _int_or(nspec.get("healthCheckNodePort")) != _int_or(ospec.get("healthCheckNodePort"))
    ):
        errs.append(forbidden("spec.healthCheckNodePort", "field is immutable"))
    # Like Kubernetes, the full create rules run too (label errors can appear twice in the list;
    # `aggregate()` drops the repeat from the message, as Kubernetes does).
    errs.extend(validate_service(new))
    return errs
