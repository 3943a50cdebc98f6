"""Deployment / ReplicaSet validation (apps/v1), plus Namespace, Endpoints, EndpointSlice basics."""

from __future__ import annotations

from typing import Any

from model_builders import deep, valid_deployment

from podnet.model.defaults import apply_defaults
from podnet.model.errors import ErrorType, aggregate
from podnet.model.validation import validate

Obj = dict[str, Any]


def fields(errs: list[Any]) -> list[tuple[str, ErrorType]]:
    return [(e.field, e.type) for e in errs]


def test_valid_deployment() -> None:
    assert validate(valid_deployment()) == []


def test_selector_must_match_template_labels() -> None:
    dep = valid_deployment()
    dep["spec"]["template"]["metadata"]["labels"] = {"app": "other", "tier": "front"}
    errs = validate(dep)
    assert [e.error() for e in errs] == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other", "tier":"front"}: '
        "`selector` does not match template `labels`"
    ]


def test_missing_selector_is_required() -> None:
    # As in Kubernetes, a nil selector selects nothing, so the template check fails as well.
    dep = valid_deployment()
    del dep["spec"]["selector"]
    assert [e.error() for e in validate(dep)] == [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web", "tier":"front"}: '
        "`selector` does not match template `labels`",
    ]


def test_unknown_strategy_type() -> None:
    dep = valid_deployment()
    dep["spec"]["strategy"] = {"type": "BlueGreen"}
    assert [e.error() for e in validate(dep)] == [
        'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
        'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"'
    ]


def test_max_surge_of_wrong_kind() -> None:
    dep = valid_deployment()
    dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = -1
    assert [e.error() for e in validate(dep)] == [
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_template_active_deadline_forbidden() -> None:
    dep = valid_deployment()
    dep["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 30
    assert [e.error() for e in validate(dep)] == [
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet "
        "is not Supported"
    ]


def test_empty_selector_is_invalid() -> None:
    dep = valid_deployment()
    dep["spec"]["selector"] = {}
    errs = validate(dep)
    assert fields(errs) == [("spec.selector", ErrorType.INVALID)]
    assert errs[0].error() == (
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    )


def test_match_expressions_select_template() -> None:
    dep = valid_deployment()
    dep["spec"]["selector"] = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}
    assert validate(dep) == []
    dep["spec"]["selector"]["matchExpressions"][0]["operator"] = "NotIn"
    assert fields(validate(dep)) == [("spec.template.metadata.labels", ErrorType.INVALID)]


def test_bad_match_expression_operator() -> None:
    dep = valid_deployment()
    dep["spec"]["selector"] = {"matchExpressions": [{"key": "tier", "operator": "Like", "values": ["f"]}]}
    assert fields(validate(dep)) == [
        ("spec.selector.matchExpressions[0].operator", ErrorType.INVALID),
        ("spec.selector", ErrorType.INVALID),
    ]
    assert validate(dep)[1].error().endswith(": invalid label selector")


def test_negative_replicas() -> None:
    dep = valid_deployment()
    dep["spec"]["replicas"] = -1
    assert [e.error() for e in validate(dep)] == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_template_restart_policy_must_be_always() -> None:
    dep = valid_deployment()
    dep["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert [e.error() for e in validate(dep)] == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    ]


def test_template_is_validated_as_a_pod() -> None:
    dep = valid_deployment()
    dep["spec"]["template"]["spec"]["containers"][0]["name"] = "Web"
    del dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert fields(validate(dep)) == [
        ("spec.template.spec.containers[0].name", ErrorType.INVALID),
        ("spec.template.spec.containers[0].image", ErrorType.REQUIRED),
    ]


def test_rolling_update_both_zero() -> None:
    dep = valid_deployment()
    dep["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": "0%"}
    assert [e.error() for e in validate(dep)] == [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0"
    ]


def test_rolling_update_bad_percent() -> None:
    dep = valid_deployment()
    dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = "25"
    errs = validate(dep)
    assert fields(errs) == [("spec.strategy.rollingUpdate.maxSurge", ErrorType.INVALID)]
    assert "a valid percent string must be a numeric string followed by an ending '%'" in errs[0].error()


def test_recreate_with_rolling_update_forbidden() -> None:
    dep = valid_deployment()
    dep["spec"]["strategy"]["type"] = "Recreate"
    assert fields(validate(dep)) == [("spec.strategy.rollingUpdate", ErrorType.FORBIDDEN)]


def test_progress_deadline_must_exceed_min_ready() -> None:
    dep = valid_deployment()
    dep["spec"]["minReadySeconds"] = 700
    assert [e.error() for e in validate(dep)] == [
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
    ]


def test_selector_is_immutable_on_update() -> None:
    old = valid_deployment()
    new = deep(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}}
    errs = validate(new, old)
    assert [e.error() for e in errs] == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", '
        '"tier":"front"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
    ]


def test_scale_and_image_update_allowed() -> None:
    old = valid_deployment()
    new = deep(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert validate(new, old) == []


def test_invalid_status_message_for_deployment() -> None:
    dep = valid_deployment()
    dep["metadata"]["name"] = "Web"
    dep["spec"]["replicas"] = -2
    assert aggregate(validate(dep)).startswith(
        '[metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of'
    )


def test_replicaset() -> None:
    rs = apply_defaults(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        }
    )
    assert rs["spec"]["replicas"] == 1
    assert validate(rs) == []
    rs["spec"]["template"]["metadata"]["labels"] = {}
    assert [e.error() for e in validate(rs)] == [
        "spec.template.metadata.labels: Invalid value: map[string]string{}: `selector` does not match "
        "template `labels`"
    ]


def test_namespace_names_are_dns_labels() -> None:
    ns = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}})
    assert [e.error() for e in validate(ns)] == [
        'metadata.name: Invalid value: "team.a": must not contain dots'
    ]
    ns = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert validate(ns) == []
    ns["metadata"]["namespace"] = "default"
    assert [e.error() for e in validate(ns)] == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_endpoints() -> None:
    ep = apply_defaults(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "d"},
            "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}],
        }
    )
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert validate(ep) == []
    ep["subsets"][0]["addresses"][0]["ip"] = "127.0.0.1"
    assert [e.error() for e in validate(ep)] == [
        'subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range '
        "(127.0.0.0/8, ::1/128)"
    ]
    ep["subsets"][0]["addresses"] = []
    assert fields(validate(ep)) == [("subsets[0]", ErrorType.REQUIRED)]


def test_endpointslice() -> None:
    es = apply_defaults(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-x1", "namespace": "d"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}}],
            "ports": [{"port": 80}],
        }
    )
    assert es["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    assert validate(es) == []
    es["addressType"] = "IPv5"
    es["endpoints"][0]["addresses"] = []
    assert [e.error() for e in validate(es)] == [
        'addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
        "endpoints[0].addresses: Required value: must contain at least 1 address",
    ]
    es["addressType"] = "IPv4"
    es["endpoints"][0]["addresses"] = ["fd00::1"]
    assert [e.error() for e in validate(es)] == [
        'endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address'
    ]


def test_missing_kind_or_unknown_kind() -> None:
    assert [e.error() for e in validate({"apiVersion": "v1"})] == ["kind: Required value"]
    assert validate({"apiVersion": "example.com/v1", "kind": "Widget"}) == []
