"""NetworkPolicy defaulting and validation, after TestValidateNetworkPolicy / TestValidateNetworkPolicyUpdate
(kubernetes pkg/apis/networking/validation/validation_test.go): each invalid case checks the exact
messages kubectl would print."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podnet.model.defaults import apply_defaults
from podnet.model.validation import validate

Obj = dict[str, Any]
PORT_RANGE = "must be between 1 and 65535, inclusive"
SUPPORTED = 'supported values: "TCP", "UDP", "SCTP"'
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def policy(spec: Obj, name: str = "foo") -> Obj:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": "bar"}, "spec": copy.deepcopy(spec)}
    return apply_defaults(obj)


def errors(spec: Obj) -> list[str]:
    return [e.error() for e in validate(policy(spec))]


def ingress_from(*peers: Obj) -> Obj:
    return {"podSelector": {}, "ingress": [{"from": list(peers)}]}


def ingress_ports(*ports: Obj) -> Obj:
    return {"podSelector": {}, "ingress": [{"ports": list(ports)}]}


def egress_to(*peers: Obj) -> Obj:
    return {"podSelector": {}, "egress": [{"to": list(peers)}]}


SUCCESS = [
    {"podSelector": {"matchLabels": {"a": "b"}}, "ingress": []},
    {"podSelector": {"matchLabels": {"a": "b"}}, "ingress": [{"from": [], "ports": []}]},
    ingress_ports({"port": 80}, {"protocol": "TCP"}, {"protocol": "TCP", "port": 443},
                  {"protocol": "UDP", "port": "dns"}),
    ingress_from({"podSelector": {"matchLabels": {"c": "d"}}}),
    ingress_from({"namespaceSelector": {"matchLabels": {"c": "d"}}}),
    ingress_from({"podSelector": {"matchLabels": {"e": "f"}},
                  "namespaceSelector": {"matchLabels": {"c": "d"}}}),
    ingress_from({"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.3.0/24", "192.168.4.0/24"]}}),
    egress_to({"namespaceSelector": {"matchLabels": {"c": "d"}}}),
    egress_to({"ipBlock": {"cidr": "fd00:192:168::/48", "except": ["fd00:192:168:3::/64"]}}),
    {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    {"podSelector": {}, "egress": [{"ports": [{"port": 30000, "endPort": 32768}]}]},
    {"podSelector": {}, "egress": [{"ports": [{"protocol": "SCTP", "port": 7777}]}]},
]


@pytest.mark.parametrize("spec", SUCCESS)
def test_valid_policies(spec: Obj) -> None:
    assert errors(spec) == []


INVALID_SELECTOR = {"matchLabels": {"NoUppercaseOrSpecialCharsLike=Equals": "b"}}
QN = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")

CASES: dict[str, tuple[Obj, list[str]]] = {
    "invalid spec.podSelector": (
        {"podSelector": INVALID_SELECTOR,
         "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"c": "d"}}}]}]},
        [f'spec.podSelector.matchLabels: Invalid value: "NoUppercaseOrSpecialCharsLike=Equals": {QN}']),
    "invalid ingress.ports.protocol": (
        ingress_ports({"protocol": "ICMP", "port": 80}),
        ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": ' + SUPPORTED]),
    "invalid ingress.ports.port (int)": (
        ingress_ports({"protocol": "TCP", "port": 123456789}),
        [f"spec.ingress[0].ports[0].port: Invalid value: 123456789: {PORT_RANGE}"]),
    "invalid ingress.ports.port (str)": (
        ingress_ports({"protocol": "TCP", "port": "!@#$"}),
        ['spec.ingress[0].ports[0].port: Invalid value: "!@#$": must contain only alpha-numeric characters '
         '(a-z, 0-9), and hyphens (-)',
         'spec.ingress[0].ports[0].port: Invalid value: "!@#$": must contain at least one letter (a-z)']),
    "invalid ingress.from.podSelector": (
        ingress_from({"podSelector": INVALID_SELECTOR}),
        [f'spec.ingress[0].from[0].podSelector.matchLabels: Invalid value: '
         f'"NoUppercaseOrSpecialCharsLike=Equals": {QN}']),
    "invalid egress.to.podSelector": (
        egress_to({"podSelector": INVALID_SELECTOR}),
        [f'spec.egress[0].to[0].podSelector.matchLabels: Invalid value: '
         f'"NoUppercaseOrSpecialCharsLike=Equals": {QN}']),
    "invalid egress.ports.protocol": (
        {"podSelector": {}, "egress": [{"ports": [{"protocol": "ICMP", "port": 80}]}]},
        ['spec.egress[0].ports[0].protocol: Unsupported value: "ICMP": ' + SUPPORTED]),
    "invalid ingress.from.namespaceSelector": (
        ingress_from({"namespaceSelector": INVALID_SELECTOR}),
        [f'spec.ingress[0].from[0].namespaceSelector.matchLabels: Invalid value: '
         f'"NoUppercaseOrSpecialCharsLike=Equals": {QN}']),
    "missing from and to type": (
        ingress_from({}), ["spec.ingress[0].from[0]: Required value: must specify a peer"]),
    "invalid ingress.from.ipBlock": (
        ingress_from({"ipBlock": {"cidr": "192.168.1.1", "except": ["192.168.2.1/24", "192.168.3.1/24"]}}),
        [f'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "192.168.1.1": {CIDR_MSG}']),
    "missing cidr field": (
        ingress_from({"ipBlock": {"except": ["192.168.8.0/24"]}}),
        ["spec.ingress[0].from[0].ipBlock.cidr: Required value"]),
    "except field is an empty string": (
        ingress_from({"ipBlock": {"cidr": "192.168.8.0/24", "except": [""]}}),
        [f'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "": {CIDR_MSG}']),
    "except IP is outside of CIDR range": (
        ingress_from({"ipBlock": {"cidr": "192.168.8.0/24", "except": ["192.168.9.1/24"]}}),
        ['spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.9.1/24": '
         "must be a strict subset of `cidr`"]),
    "except IP is not strictly within CIDR range": (
        ingress_from({"ipBlock": {"cidr": "192.168.0.0/24", "except": ["192.168.0.0/24"]}}),
        ['spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/24": '
         "must be a strict subset of `cidr`"]),
    "except IPv6 is outside of CIDR range": (
        egress_to({"ipBlock": {"cidr": "fd00:192:168:1::/64", "except": ["fd00:192:168:2::/64"]}}),
        ['spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "fd00:192:168:2::/64": '
         "must be a strict subset of `cidr`"]),
    "ipBlock and podSelector in one peer": (
        ingress_from({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}),
        ["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"]),
    "invalid policyTypes": (
        {"podSelector": {}, "policyTypes": ["foo"]},
        ['spec.policyTypes[0]: Unsupported value: "foo": supported values: "Ingress", "Egress"']),
    "too many policyTypes": (
        {"podSelector": {}, "policyTypes": ["foo", "Ingress", "Egress"]},
        ['spec.policyTypes: Invalid value: []networking.PolicyType{"foo", "Ingress", "Egress"}: '
         "may not specify more than two policyTypes"]),
    "multiple ports defined, one port range is invalid": (
        {"podSelector": {}, "egress": [{"ports": [{"port": 30000, "endPort": 32768},
                                                  {"port": 35000, "endPort": 32768}]}]},
        ["spec.egress[0].ports[1].endPort: Invalid value: 32768: must be greater than or equal to `port`"]),
    "endPort defined with named/string port": (
        {"podSelector": {}, "egress": [{"ports": [{"port": "dns", "endPort": 32768}]}]},
        ["spec.egress[0].ports[0].endPort: Invalid value: 32768: "
         "may not be specified when `port` is non-numeric"]),
    "endPort defined without port": (
        {"podSelector": {}, "egress": [{"ports": [{"endPort": 32768}]}]},
        ["spec.egress[0].ports[0].endPort: Invalid value: 32768: "
         "may not be specified when `port` is not specified"]),
    "port is greater than endPort": (
        {"podSelector": {}, "egress": [{"ports": [{"port": 21000, "endPort": 20500}]}]},
        ["spec.egress[0].ports[0].endPort: Invalid value: 20500: must be greater than or equal to `port`"]),
    "invalid endPort range": (
        {"podSelector": {}, "egress": [{"ports": [{"port": 22, "endPort": 65536}]}]},
        [f"spec.egress[0].ports[0].endPort: Invalid value: 65536: {PORT_RANGE}"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_policies(case: str) -> None:
    spec, want = CASES[case]
    assert errors(spec) == want


def test_name_and_namespace_rules() -> None:
    obj = policy({"podSelector": {}}, name="Bad_Name")
    msgs = [e.error() for e in validate(obj)]
    assert msgs and msgs[0].startswith(
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')


def test_defaults_policy_types_from_rules_and_tcp_ports() -> None:
    assert policy({"podSelector": {}})["spec"]["policyTypes"] == ["Ingress"]
    assert policy({"podSelector": {}, "egress": [{}]})["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy({"podSelector": {}, "policyTypes": ["Egress"]})["spec"]["policyTypes"] == ["Egress"]
    assert policy({})["spec"]["podSelector"] == {}
    obj = policy({"ingress": [{"ports": [{"port": 80}]}]})
    assert obj["spec"]["ingress"][0]["ports"][0] == {"port": 80, "protocol": "TCP"}


def test_update_keeps_existing_invalid_cidrs_but_checks_new_ones() -> None:
    old = policy(ingress_from({"ipBlock": {"cidr": "010.0.0.0/8"}}))
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    assert validate(new, old) == []
    new["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "not-a-cidr"}})
    assert [e.error() for e in validate(new, old)] == [
        f'spec.ingress[0].from[1].ipBlock.cidr: Invalid value: "not-a-cidr": {CIDR_MSG}']


def test_update_may_not_change_the_name() -> None:
    old = policy({"podSelector": {}})
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "baz"
    assert any("metadata.name" in e.error() for e in validate(new, old))
