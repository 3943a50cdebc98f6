"""NetworkPolicy (networking.k8s.io/v1): defaulting and validation with Kubernetes' paths and messages.

Follows `SetDefaults_NetworkPolicy` / `SetDefaults_NetworkPolicyPort` (networking/v1 defaults) and
`ValidateNetworkPolicy` / `ValidateNetworkPolicyUpdate` (pkg/apis/networking/validation) as of v1.32.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from podnet.model import names
from podnet.model.errors import FieldError, GoValue, forbidden, go_quote, invalid, not_supported, required
from podnet.model.kinds import Obj
from podnet.model.validation_meta import (
    as_int,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _items(v: Any) -> list[dict[str, Any]]:
    return [x if isinstance(x, dict) else {} for x in v] if isinstance(v, list) else []


def default_network_policy(obj: Obj) -> None:
    """policyTypes from the rules present (Ingress always, Egress when egress rules exist);
    every port's protocol TCP; an absent podSelector is the empty selector."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    if spec.get("podSelector") is None:
        spec["podSelector"] = {}
    for direction in ("ingress", "egress"):
        for rule in _items(spec.get(direction)):
            for port in _items(rule.get("ports")):
                if not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def validate_port(port: dict[str, Any], path: str) -> list[FieldError]:
    """`ValidateNetworkPolicyPort`."""
    errs: list[FieldError] = []
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", proto, PROTOCOLS, keep_order=True))
    value, end = port.get("port"), port.get("endPort")
    if value is not None:
        num = as_int(value)
        if num is not None:
            errs.extend(invalid(f"{path}.port", num, m) for m in names.port_num_errors(num))
            if end is not None:
                end_num = as_int(end)
                if end_num is not None and end_num < num:
                    errs.append(invalid(f"{path}.endPort", end, "must be greater than or equal to `port`"))
                if end_num is not None:
                    errs.extend(invalid(f"{path}.endPort", end, m) for m in names.port_num_errors(end_num))
        else:
            if end is not None:
                errs.append(invalid(f"{path}.endPort", end,
                                    "may not be specified when `port` is non-numeric"))
            text = str(value)
            errs.extend(invalid(f"{path}.port", text, m) for m in names.port_name_errors(text))
    elif end is not None:
        errs.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    return errs


def _cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if names.cidr_errors(value):
        return None
    return ipaddress.ip_network(value, strict=False)


def validate_ip_block(ipb: dict[str, Any], path: str,
                      allowed: frozenset[str] = frozenset()) -> list[FieldError]:
    """`ValidateIPBlock`: cidr required and a CIDR, each except a strict subset of it. CIDRs the
    stored object already had are accepted on update without re-validation (as Kubernetes does)."""
    cidr = str(ipb.get("cidr") or "")
    if not cidr:
        return [required(f"{path}.cidr", "")]
    errs: list[FieldError] = []
    if cidr not in allowed:
        errs.extend(invalid(f"{path}.cidr", cidr, m) for m in names.cidr_errors(cidr))
    net = _cidr(cidr)
    if net is None:
        return errs
    for i, ex in enumerate(ipb.get("except") or []):
        ep = f"{path}.except[{i}]"
        ex = str(ex)
        if ex not in allowed:
            errs.extend(invalid(ep, ex, m) for m in names.cidr_errors(ex))
        exn = _cidr(ex)
        if exn is None:
            continue
        if exn.version != net.version or exn.network_address not in net or net.prefixlen >= exn.prefixlen:
            errs.append(invalid(ep, ex, "must be a strict subset of `cidr`"))
    return errs


def validate_peer(peer: dict[str, Any], path: str, allowed: frozenset[str]) -> list[FieldError]:
    """`ValidateNetworkPolicyPeer`."""
    errs: list[FieldError] = []
    count = 0
    if peer.get("podSelector") is not None:
        count += 1
        errs.extend(validate_label_selector(peer["podSelector"], f"{path}.podSelector"))
    if peer.get("namespaceSelector") is not None:
        count += 1
        errs.extend(validate_label_selector(peer["namespaceSelector"], f"{path}.namespaceSelector"))
    if peer.get("ipBlock") is not None:
        count += 1
        errs.extend(validate_ip_block(_d(peer["ipBlock"]), f"{path}.ipBlock", allowed))
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def validate_spec(spec: dict[str, Any], allowed: frozenset[str] = frozenset()) -> list[FieldError]:
    """`ValidateNetworkPolicySpec`."""
    errs = validate_label_selector(spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(_items(spec.get(direction))):
            rp = f"spec.{direction}[{i}]"
            for j, port in enumerate(_items(rule.get("ports"))):
                errs.extend(validate_port(port, f"{rp}.ports[{j}]"))
            for j, peer in enumerate(_items(rule.get(peers))):
                errs.extend(validate_peer(peer, f"{rp}.{peers}[{j}]", allowed))
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        shown = "[]networking.PolicyType{" + ", ".join(go_quote(str(t)) for t in types) + "}"
        errs.append(invalid("spec.policyTypes", GoValue(shown), "may not specify more than two policyTypes"))
        return errs
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            errs.append(not_supported(f"spec.policyTypes[{i}]", t, POLICY_TYPES, keep_order=True))
    return errs


def _cidrs_of(obj: Obj) -> frozenset[str]:
    spec = _d(obj.get("spec"))
    out: set[str] = set()
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rule in _items(spec.get(direction)):
            for peer in _items(rule.get(peers)):
                ipb = _d(peer.get("ipBlock"))
                if ipb.get("cidr"):
                    out.add(str(ipb["cidr"]))
                out.update(str(e) for e in ipb.get("except") or [])
    return frozenset(out)


def validate_network_policy(obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """`ValidateNetworkPolicy` (create) or `ValidateNetworkPolicyUpdate` (update from `old`)."""
    if old is None:
        errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
        return errs + validate_spec(_d(obj.get("spec")))
    errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return errs + validate_spec(_d(obj.get("spec")), _cidrs_of(old))
