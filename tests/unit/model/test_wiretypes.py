"""Wrong JSON types are reported (as Kubernetes' decoder would) instead of confusing validation errors."""

from __future__ import annotations

from podnet.model.errors import ErrorType
from podnet.model.validation import validate
from podnet.model.wiretypes import decode_error, type_errors


def test_string_port_is_a_type_error() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a", "namespace": "d"},
        "spec": {"ports": [{"port": "80", "targetPort": "http"}]},
    }
    errs = validate(svc)
    assert [(e.field, e.type) for e in errs] == [("spec.ports[0].port", ErrorType.TYPE_INVALID)]
    assert errs[0].error() == 'spec.ports[0].port: Invalid value: "80": must be of type integer'
    assert decode_error(svc) == (
        'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal '
        "string into Go struct field ServicePort.spec.ports.port of type int32"
    )


def test_label_values_must_be_strings() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"version": 2}}}
    assert decode_error(pod) == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number '
        "into Go struct field ObjectMeta.metadata.labels of type string"
    )


def test_nested_pod_template_types() -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": "3",
            "template": {
                "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80.5}]}]}
            },
        },
    }
    assert [e.field for e in type_errors(dep)] == [
        "spec.replicas",
        "spec.template.spec.containers[0].ports[0].containerPort",
    ]
    msg = decode_error(dep)
    assert msg is not None and msg.startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: '
    )


def test_out_of_range_int32_and_fine_types() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a"},
        "spec": {"ports": [{"port": 2**31}], "allocateLoadBalancerNodePorts": "yes"},
    }
    assert [e.error() for e in type_errors(svc)] == [
        'spec.allocateLoadBalancerNodePorts: Invalid value: "yes": must be of type boolean',
        "spec.ports[0].port: Invalid value: 2147483648: must be of type integer",
    ]
    ok = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a", "labels": None},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"a": "b"}, "futureField": [1]},
    }
    assert type_errors(ok) == [] and decode_error(ok) is None
