"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1).

Upstream these are CustomResourceDefinitions (kubernetes-sigs/network-policy-api, the v1alpha1
CRDs of its experimental channel, release v0.1.x), so their rules are the CRD's OpenAPI schema and
its CEL rules, and their messages are apiextensions-apiserver's. podnet serves them as built-in
kinds but validates them the same way: the schema below (types, required fields, enum, minimum and
maximum, maxLength, minItems/maxItems, minProperties/maxProperties, the `protocol: TCP` defaults)
goes through `openapi_schema` like any CRD's, and the three CEL rules are written out here:
`isCIDR(self)` on networks, no namedPort with networks/nodes peers, and a BANP named `default`.
`domainNames` peers (an experimental FQDN field) are not part of podnet's schema and are pruned.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from podnet.model import openapi_schema
from podnet.model.errors import FieldError, invalid
from podnet.model.kinds import Obj

GROUP_VERSION = "policy.networking.k8s.io/v1alpha1"
ANP_KIND = "AdminNetworkPolicy"
BANP_KIND = "BaselineAdminNetworkPolicy"
BANP_NAME = "default"

_STR: dict[str, Any] = {"type": "string"}
_SELECTOR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": _STR},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {"key": _STR, "operator": _STR, "values": {"type": "array", "items": _STR}},
            },
        },
    },
}
_NAMESPACED_POD: dict[str, Any] = {
    "type": "object",
    "required": ["namespaceSelector", "podSelector"],
    "properties": {"namespaceSelector": _SELECTOR, "podSelector": _SELECTOR},
}
_PORT_NUM: dict[str, Any] = {"type": "integer", "format": "int32", "minimum": 1, "maximum": 65535}
_PORT: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "portNumber": {
            "type": "object",
            "required": ["port", "protocol"],
            "properties": {"port": _PORT_NUM, "protocol": {"type": "string", "default": "TCP"}},
        },
        "namedPort": _STR,
        "portRange": {
            "type": "object",
            "required": ["end", "start"],
            "properties": {
                "start": _PORT_NUM,
                "end": _PORT_NUM,
                "protocol": {"type": "string", "default": "TCP"},
            },
        },
    },
}
_PORTS: dict[str, Any] = {"type": "array", "minItems": 1, "maxItems": 100, "items": _PORT}
_INGRESS_PEER: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {"namespaces": _SELECTOR, "pods": _NAMESPACED_POD},
}
_EGRESS_PEER: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "namespaces": _SELECTOR,
        "pods": _NAMESPACED_POD,
        "nodes": _SELECTOR,
        "networks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 25,
            "items": {"type": "string", "maxLength": 43},
        },
    },
}
_SUBJECT: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {"namespaces": _SELECTOR, "pods": _NAMESPACED_POD},
}


def _rules(actions: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    action = {"type": "string", "enum": actions}
    name = {"type": "string", "maxLength": 100}
    ingress = {
        "type": "array",
        "maxItems": 100,
        "items": {
            "type": "object",
            "required": ["action", "from"],
            "properties": {
                "name": name,
                "action": action,
                "ports": _PORTS,
                "from": {"type": "array", "minItems": 1, "maxItems": 100, "items": _INGRESS_PEER},
            },
        },
    }
    egress = {
        "type": "array",
        "maxItems": 100,
        "items": {
            "type": "object",
            "required": ["action", "to"],
            "properties": {
                "name": name,
                "action": action,
                "ports": _PORTS,
                "to": {"type": "array", "minItems": 1, "maxItems": 100, "items": _EGRESS_PEER},
            },
        },
    }
    return ingress, egress


_CONDITIONS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "conditions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {k: _STR for k in ("type", "status", "reason", "message", "lastTransitionTime")}
                | {"observedGeneration": {"type": "integer", "format": "int64"}},
            },
        }
    },
}


def _schema(actions: list[str], with_priority: bool) -> dict[str, Any]:
    ingress, egress = _rules(actions)
    spec: dict[str, Any] = {
        "type": "object",
        "required": ["priority", "subject"] if with_priority else ["subject"],
        "properties": {"subject": _SUBJECT, "ingress": ingress, "egress": egress},
    }
    if with_priority:
        spec["properties"]["priority"] = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 1000}
    return {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": spec,
            "status": _CONDITIONS,
        },
    }


ANP_SCHEMA = _schema(["Allow", "Deny", "Pass"], True)
BANP_SCHEMA = _schema(["Allow", "Deny"], False)
openapi_schema.register(GROUP_VERSION, ANP_KIND, ANP_SCHEMA, False)
openapi_schema.register(GROUP_VERSION, BANP_KIND, BANP_SCHEMA, False)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _items(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def default_admin_policy(obj: Obj) -> None:
    """The CRD's defaults: `protocol: TCP` in portNumber and portRange."""
    spec = _d(obj.get("spec"))
    for direction in ("ingress", "egress"):
        for rule in _items(spec.get(direction)):
            for port in _items(rule.get("ports")):
                for key in ("portNumber", "portRange"):
                    p = port.get(key)
                    if isinstance(p, dict) and "protocol" not in p:
                        p["protocol"] = "TCP"


def is_cidr(text: str) -> bool:
    """CEL's `isCIDR`: an IPv4 or IPv6 address with a prefix length (host bits may be set)."""
    if "/" not in text or "%" in text:
        return False
    addr, _, bits = text.partition("/")
    if not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        return False
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None and "." in addr:
        return False
    return int(bits) <= ip.max_prefixlen


def _cel_rules(obj: Obj, kind: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if kind == BANP_KIND and _d(obj.get("metadata")).get("name") != BANP_NAME:
        errs.append(
            invalid(
                "<nil>",
                "object",
                "Only one baseline admin network policy with "
                'metadata.name="default" can be created in the cluster',
            )
        )
    spec = _d(obj.get("spec"))
    no_named = (
        (
            "networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts "
            "for networks/nodes/domainNames"
        )
        if kind == ANP_KIND
        else "networks/nodes peer cannot be set with namedPorts since there are no namedPorts for "
        "networks/nodes"
    )
    for i, rule in enumerate(_items(spec.get("egress"))):
        peers = _items(rule.get("to"))
        for j, peer in enumerate(peers):
            for k, net in enumerate(
                peer.get("networks") or [] if isinstance(peer.get("networks"), list) else []
            ):
                if isinstance(net, str) and len(net) <= 43 and not is_cidr(net):
                    errs.append(
                        invalid(
                            f"spec.egress[{i}].to[{j}].networks[{k}]",
                            "string",
                            "Invalid CIDR format provided",
                        )
                    )
        if any("networks" in p or "nodes" in p for p in peers) and any(
            "namedPort" in p for p in _items(rule.get("ports"))
        ):
            errs.append(invalid(f"spec.egress[{i}]", "object", no_named))
    return errs


def validate_admin_network_policy(obj: Obj, old: Obj | None = None) -> list[FieldError]:
    errs = openapi_schema.validate_custom(obj, old)
    return errs + _cel_rules(obj, ANP_KIND)


def validate_baseline_admin_network_policy(obj: Obj, old: Obj | None = None) -> list[FieldError]:
    errs = openapi_schema.validate_custom(obj, old)
    return errs + _cel_rules(obj, BANP_KIND)
