"""Validation for Namespace, Node, Endpoints, EndpointSlice, ConfigMap and Event."""

from __future__ import annotations

import re
from typing import Any

from podnet.model import names
from podnet.model.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
    too_many,
)
from podnet.model.validation_meta import (
    FIELD_IMMUTABLE_MSG,
    NameFn,
    as_int,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from podnet.model.validation_service import (
    PROTOCOLS,
    _validate_non_special_ip,
    validate_app_protocol,
    validate_port_protocol,
)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _items(v: Any) -> list[dict[str, Any]]:
    return [x if isinstance(x, dict) else {} for x in v] if isinstance(v, list) else []


def _meta(
    obj: dict[str, Any], old: dict[str, Any] | None, namespaced: bool, name_fn: NameFn
) -> list[FieldError]:
    if old is None:
        return validate_object_meta(obj.get("metadata"), namespaced, name_fn)
    return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


# --------------------------------------------------------------------------- Namespace


def validate_namespace(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, False, names.name_is_dns_label)
    for i, fin in enumerate(_d(obj.get("spec")).get("finalizers") or []):
        path = f"spec.finalizers[{i}]"
        fin = str(fin)
        msgs = names.qualified_name_errors(fin)
        errs.extend(invalid(path, fin, m) for m in msgs)
        if not msgs and "/" not in fin and fin != "kubernetes":
            errs.append(
                invalid(path, fin, "name is neither a standard finalizer name nor is it fully qualified")
            )
    phase = _d(obj.get("status")).get("phase")
    if phase and phase not in ("Active", "Terminating"):
        errs.append(not_supported("status.phase", phase, ["Active", "Terminating"], keep_order=True))
    return errs


# --------------------------------------------------------------------------- Node


def validate_node(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, False, names.name_is_dns_subdomain)
    spec = _d(obj.get("spec"))
    cidrs = [str(c) for c in spec.get("podCIDRs") or []]
    for i, c in enumerate(cidrs):
        errs.extend(invalid(f"spec.podCIDRs[{i}]", c, m) for m in names.cidr_errors(c))
    if spec.get("podCIDR") and cidrs and spec["podCIDR"] != cidrs[0]:
        errs.append(invalid("spec.podCIDRs", cidrs[0], "must match `podCIDR`"))
    if len(cidrs) > 2:
        errs.append(
            invalid("spec.podCIDRs", len(cidrs), "may specify no more than one CIDR for each IP family")
        )
    if old is not None:  # ValidateNodeUpdate: the node IPAM controller may set it once, from "" only
        old_spec = _d(old.get("spec"))
        old_cidrs = [str(c) for c in old_spec.get("podCIDRs") or []] or \
            ([str(old_spec["podCIDR"])] if old_spec.get("podCIDR") else [])
        new_cidrs = cidrs or ([str(spec["podCIDR"])] if spec.get("podCIDR") else [])
        if old_cidrs and new_cidrs != old_cidrs:
            errs.append(forbidden("spec.podCIDRs",
                                  'node updates may not change podCIDR except from "" to valid'))
    for i, taint in enumerate(_items(spec.get("taints"))):
        p = f"spec.taints[{i}]"
        key = str(taint.get("key") or "")
        if not key:
            errs.append(required(f"{p}.key", ""))
        else:
            errs.extend(invalid(f"{p}.key", key, m) for m in names.qualified_name_errors(key))
        effect = taint.get("effect") or ""
        if not effect:
            errs.append(required(f"{p}.effect", ""))
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(
                not_supported(
                    f"{p}.effect", effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"], keep_order=True
                )
            )
    for i, addr in enumerate(_items(_d(obj.get("status")).get("addresses"))):
        if not addr.get("type"):
            errs.append(required(f"status.addresses[{i}].type", ""))
    return errs


# --------------------------------------------------------------------------- Endpoints


def _validate_endpoint_address(addr: dict[str, Any], path: str) -> list[FieldError]:
    ip = str(addr.get("ip") or "")
    errs = [invalid(f"{path}.ip", ip, m) for m in names.ip_errors(ip)]
    hostname = addr.get("hostname")
    if hostname:
        errs.extend(
            invalid(f"{path}.hostname", hostname, m) for m in names.dns1123_label_errors(str(hostname))
        )
    node = addr.get("nodeName")
    if node is not None:
        errs.extend(invalid(f"{path}.nodeName", node, m) for m in names.dns1123_subdomain_errors(str(node)))
    if names.is_ip(ip):
        errs.extend(_validate_non_special_ip(ip, f"{path}.ip"))
    else:
        errs.append(invalid(f"{path}.ip", ip, "must be a valid IP address"))
    return errs


def _validate_endpoint_port(port: dict[str, Any], require_name: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = str(port.get("name") or "")
    if require_name and not name:
        errs.append(required(f"{path}.name", ""))
    elif name:
        errs.extend(invalid(f"{path}.name", name, m) for m in names.dns1123_label_errors(name))
    num = as_int(port.get("port")) or 0
    errs.extend(invalid(f"{path}.port", num, m) for m in names.port_num_errors(num))
    errs.extend(validate_port_protocol(port.get("protocol"), f"{path}.protocol"))
    errs.extend(validate_app_protocol(port.get("appProtocol"), f"{path}.appProtocol"))
    return errs


def validate_endpoints(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, True, names.name_is_dns_subdomain)
    for i, ss in enumerate(_items(obj.get("subsets"))):
        p = f"subsets[{i}]"
        if not ss.get("addresses") and not ss.get("notReadyAddresses"):
            errs.append(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for j, addr in enumerate(_items(ss.get("addresses"))):
            errs.extend(_validate_endpoint_address(addr, f"{p}.addresses[{j}]"))
        for j, addr in enumerate(_items(ss.get("notReadyAddresses"))):
            errs.extend(_validate_endpoint_address(addr, f"{p}.notReadyAddresses[{j}]"))
        ports = _items(ss.get("ports"))
        for j, port in enumerate(ports):
            errs.extend(_validate_endpoint_port(port, len(ports) > 1, f"{p}.ports[{j}]"))
    return errs


# --------------------------------------------------------------------------- EndpointSlice

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def _fqdn_errors(value: str) -> list[str]:
    name = value[:-1] if value.endswith(".") else value
    msgs = names.dns1123_subdomain_errors(name)
    if msgs:
        return msgs
    if len(name.split(".")) < 2:
        return ["should be a domain with at least two segments separated by dots"]
    return []


def validate_endpointslice(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateEndpointSlice`; on update the same plus an immutable addressType (Kubernetes re-runs the
    create rules for slices, metadata included)."""
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    at = obj.get("addressType") or ""
    if not at:
        errs.append(required("addressType", ""))
    elif at not in ADDRESS_TYPES:
        errs.append(not_supported("addressType", at, ADDRESS_TYPES))
    endpoints = _items(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.append(too_many("endpoints", len(endpoints), 1000))
        endpoints = []
    for i, ep in enumerate(endpoints):
        p = f"endpoints[{i}]"
        addrs = [str(a) for a in ep.get("addresses") or []]
        if not addrs:
            errs.append(required(f"{p}.addresses", "must contain at least 1 address"))
        elif len(addrs) > 100:
            errs.append(too_many(f"{p}.addresses", len(addrs), 100))
        for j, a in enumerate(addrs):
            ap = f"{p}.addresses[{j}]"
            if at in ("IPv4", "IPv6"):
                want = 4 if at == "IPv4" else 6
                parsed = names.parse_ip(a)
                ok = parsed is not None and parsed.version == want
                if not ok:
                    errs.append(invalid(ap, a, f"must be a valid {at} address"))
                else:
                    errs.extend(_validate_non_special_ip(a, ap))
            elif at == "FQDN":
                errs.extend(invalid(ap, a, m) for m in _fqdn_errors(a))
        node = ep.get("nodeName")
        if node is not None:
            errs.extend(invalid(f"{p}.nodeName", node, m) for m in names.dns1123_subdomain_errors(str(node)))
        errs.extend(validate_labels(ep.get("deprecatedTopology"), f"{p}.deprecatedTopology"))
        hostname = ep.get("hostname")
        if hostname is not None:
            errs.extend(
                invalid(f"{p}.hostname", hostname, m) for m in names.dns1123_label_errors(str(hostname))
            )
    ports = _items(obj.get("ports"))
    if len(ports) > 20000:
        errs.append(too_many("ports", len(ports), 20000))
        ports = []
    seen: set[str] = set()
    for i, port in enumerate(ports):
        p = f"ports[{i}]"
        name = str(port.get("name") or "")
        if name:
            errs.extend(invalid(f"{p}.name", name, m) for m in names.dns1123_label_errors(name))
        if name in seen:
            errs.append(duplicate(f"{p}.name", name))
        seen.add(name)
        proto = port.get("protocol")
        if proto is None:
            errs.append(required(f"{p}.protocol", ""))
        elif proto not in PROTOCOLS:
            errs.append(not_supported(f"{p}.protocol", proto, PROTOCOLS))
        errs.extend(validate_app_protocol(port.get("appProtocol"), f"{p}.appProtocol"))
    if old is not None and old.get("addressType") and at != old.get("addressType"):
        errs.append(invalid("addressType", at, FIELD_IMMUTABLE_MSG))
    return errs


# --------------------------------------------------------------------------- ConfigMap / Event

CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
MAX_CONFIGMAP_BYTES = 1024 * 1024


def config_key_errors(key: str) -> list[str]:
    errs: list[str] = []
    if len(key) > 253:
        errs.append(names.max_len_error(253))
    if not re.fullmatch(CONFIG_KEY_FMT, key):
        errs.append(names.regex_error(CONFIG_KEY_MSG, CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def validate_configmap(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, True, names.name_is_dns_subdomain)
    total = 0
    data = _d(obj.get("data"))
    binary = _d(obj.get("binaryData"))
    for key, value in data.items():
        errs.extend(invalid(f"data[{key}]", key, m) for m in config_key_errors(str(key)))
        total += len(str(value))
    for key, value in binary.items():
        errs.extend(invalid(f"binaryData[{key}]", key, m) for m in config_key_errors(str(key)))
        if key in data:
            errs.append(invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
        total += len(str(value))
    if total > MAX_CONFIGMAP_BYTES:
        errs.append(too_long("", MAX_CONFIGMAP_BYTES))
    if (
        old is not None
        and _d(old).get("immutable") is True
        and (obj.get("data") != old.get("data") or obj.get("binaryData") != old.get("binaryData"))
    ):
        errs.append(forbidden("data", "field is immutable when `immutable` is set"))
    return errs


def validate_event(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _meta(obj, old, True, names.name_is_dns_subdomain)
    inv = _d(obj.get("involvedObject"))
    ns = _d(obj.get("metadata")).get("namespace")
    if inv.get("namespace") and ns and inv.get("namespace") != ns:
        errs.append(
            invalid("involvedObject.namespace", inv.get("namespace"), "does not match event.namespace")
        )
    return errs
