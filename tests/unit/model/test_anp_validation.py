"""AdminNetworkPolicy / BaselineAdminNetworkPolicy validation: the rules of network-policy-api's v1alpha1
CRDs (OpenAPI schema + CEL), with the messages apiextensions-apiserver prints for them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podnet.api.strategy import apply_defaults as api_defaults
from podnet.model.validation import validate
from podnet.model.validation_anp import is_cidr

Obj = dict[str, Any]
GV = "policy.networking.k8s.io/v1alpha1"
SUBJECT: Obj = {"namespaces": {"matchLabels": {"team": "a"}}}
PEER: Obj = {"namespaces": {}}


def apply_defaults(obj: Obj) -> Obj:
    """What the API server does before validating: prune to the schema (as for a CRD), then default."""
    api_defaults(obj)
    return obj


def anp(spec: Obj, name: str = "p") -> Obj:
    return apply_defaults(
        {
            "apiVersion": GV,
            "kind": "AdminNetworkPolicy",
            "metadata": {"name": name},
            "spec": copy.deepcopy(spec),
        }
    )


def errors(obj: Obj) -> list[str]:
    return [e.error() for e in validate(obj)]


def test_a_full_valid_anp_and_its_defaults() -> None:
    obj = anp(
        {
            "priority": 1000,
            "subject": {"pods": {"namespaceSelector": {}, "podSelector": {}}},
            "ingress": [
                {
                    "name": "a",
                    "action": "Pass",
                    "from": [
                        PEER,
                        {"pods": {"namespaceSelector": {"matchLabels": {"k": "v"}}, "podSelector": {}}},
                    ],
                    "ports": [
                        {"portNumber": {"port": 80}},
                        {"namedPort": "http"},
                        {"portRange": {"protocol": "UDP", "start": 1, "end": 65535}},
                    ],
                }
            ],
            "egress": [
                {
                    "action": "Deny",
                    "to": [
                        {"networks": ["10.0.0.0/8", "fd00::/64"]},
                        {"nodes": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}},
                    ],
                }
            ],
        }
    )
    assert errors(obj) == []
    ports = obj["spec"]["ingress"][0]["ports"]
    assert ports[0]["portNumber"]["protocol"] == "TCP" and ports[2]["portRange"]["protocol"] == "UDP"


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({"subject": SUBJECT}, ["spec.priority: Required value"]),
        ({"priority": 0}, ["spec.subject: Required value"]),
        (
            {"priority": 1001, "subject": SUBJECT},
            [
                "spec.priority: Invalid value: 1001: spec.priority in body should be less than or "
                "equal to 1000"
            ],
        ),
        (
            {"priority": -1, "subject": SUBJECT},
            ["spec.priority: Invalid value: -1: spec.priority in body should be greater than or equal to 0"],
        ),
        (
            {"priority": "high", "subject": SUBJECT},
            ['spec.priority: Invalid value: "high": spec.priority in body must be of type integer: "string"'],
        ),
        (
            {"priority": 1, "subject": {}},
            ["spec.subject: Invalid value: 0: spec.subject in body should have at least 1 properties"],
        ),
        (
            {
                "priority": 1,
                "subject": {"namespaces": {}, "pods": {"namespaceSelector": {}, "podSelector": {}}},
            },
            ["spec.subject: Too many: 2: must have at most 1 items"],
        ),
        (
            {"priority": 1, "subject": {"pods": {"podSelector": {}}}},
            ["spec.subject.pods.namespaceSelector: Required value"],
        ),
        (
            {"priority": 1, "subject": SUBJECT, "ingress": [{"action": "Reject", "from": [PEER]}]},
            [
                'spec.ingress[0].action: Unsupported value: "Reject": supported values: "Allow", '
                '"Deny", "Pass"'
            ],
        ),
        (
            {"priority": 1, "subject": SUBJECT, "ingress": [{"action": "Allow"}]},
            ["spec.ingress[0].from: Required value"],
        ),
        (
            {"priority": 1, "subject": SUBJECT, "ingress": [{"action": "Allow", "from": []}]},
            [
                "spec.ingress[0].from: Invalid value: 0: spec.ingress[0].from in body should have at "
                "least 1 items"
            ],
        ),
        (
            {
                "priority": 1,
                "subject": SUBJECT,
                "ingress": [{"name": "n" * 101, "action": "Allow", "from": [PEER]}],
            },
            ["spec.ingress[0].name: Too long: must have at most 100 bytes"],
        ),
        (
            {"priority": 1, "subject": SUBJECT, "ingress": [{"action": "Allow", "from": [PEER]}] * 101},
            ["spec.ingress: Too many: 101: must have at most 100 items"],
        ),
        (
            {"priority": 1, "subject": SUBJECT, "ingress": [{"action": "Allow", "from": [{"nodes": {}}]}]},
            [
                "spec.ingress[0].from[0]: Invalid value: 0: spec.ingress[0].from[0] in body should "
                "have at least 1 "
                "properties"
            ],
        ),
        (
            {
                "priority": 1,
                "subject": SUBJECT,
                "ingress": [
                    {
                        "action": "Allow",
                        "from": [PEER],
                        "ports": [
                            {"portNumber": {"port": 0}},
                            {"portRange": {"start": 1}},
                            {"namedPort": "a", "portNumber": {"port": 1}},
                        ],
                    }
                ],
            },
            [
                "spec.ingress[0].ports[0].portNumber.port: Invalid value: 0: "
                "spec.ingress[0].ports[0].portNumber.port in "
                "body should be greater than or equal to 1",
                "spec.ingress[0].ports[1].portRange.end: Required value",
                "spec.ingress[0].ports[2]: Too many: 2: must have at most 1 items",
            ],
        ),
        (
            {
                "priority": 1,
                "subject": SUBJECT,
                "egress": [{"action": "Allow", "to": [{"networks": ["10.0.0.0/33"]}]}],
            },
            ['spec.egress[0].to[0].networks[0]: Invalid value: "string": Invalid CIDR format provided'],
        ),
        (
            {"priority": 1, "subject": SUBJECT, "egress": [{"action": "Allow", "to": [{"networks": []}]}]},
            [
                "spec.egress[0].to[0].networks: Invalid value: 0: spec.egress[0].to[0].networks in "
                "body should have at "
                "least 1 items"
            ],
        ),
        (
            {
                "priority": 1,
                "subject": SUBJECT,
                "egress": [{"action": "Allow", "to": [{"nodes": {}}], "ports": [{"namedPort": "http"}]}],
            },
            [
                'spec.egress[0]: Invalid value: "object": networks/nodes/domainNames peer cannot be '
                'set with namedPorts '
                "since there are no namedPorts for networks/nodes/domainNames"
            ],
        ),
    ],
)
def test_invalid_anps(spec: Obj, want: list[str]) -> None:
    assert errors(anp(spec)) == want


def test_unknown_fields_are_pruned_as_for_a_crd() -> None:
    obj = anp(
        {
            "priority": 1,
            "subject": SUBJECT,
            "bogus": 1,
            "egress": [{"action": "Allow", "to": [{"domainNames": ["*.example.com"]}]}],
        }
    )
    assert "bogus" not in obj["spec"]
    assert errors(obj) == [
        "spec.egress[0].to[0]: Invalid value: 0: spec.egress[0].to[0] in body should have "
        "at least 1 properties"
    ]


def test_banp_only_default_and_no_pass() -> None:
    def banp(name: str, action: str) -> Obj:
        return apply_defaults(
            {
                "apiVersion": GV,
                "kind": "BaselineAdminNetworkPolicy",
                "metadata": {"name": name},
                "spec": {"subject": SUBJECT, "ingress": [{"action": action, "from": [PEER]}]},
            }
        )

    assert errors(banp("default", "Deny")) == []
    assert errors(banp("other", "Pass")) == [
        'spec.ingress[0].action: Unsupported value: "Pass": supported values: "Allow", "Deny"',
        '<nil>: Invalid value: "object": Only one baseline admin network policy with metadata.name="default" '
        "can be created in the cluster",
    ]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("10.0.0.0/8", True),
        ("10.1.2.3/8", True),
        ("::/0", True),
        ("fd00::1/128", True),
        ("10.0.0.0/33", False),
        ("10.0.0.0", False),
        ("10.0.0.0/08", False),
        ("fd00::/129", False),
        ("bogus/8", False),
        ("/8", False),
    ],
)
def test_is_cidr_like_cel(text: str, ok: bool) -> None:
    assert is_cidr(text) is ok
