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


# ---- the one-pass tree walk finds exactly what a walk per schema path finds --------------------

from typing import Any  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from podnet.model import wiretypes  # noqa: E402


def _reference(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """(concrete path, value) for every schema path, one `_walk` per path (the former `_check`)."""
    schema = wiretypes.SCHEMAS.get(str(obj.get("kind") or "")) or {}
    return sorted(((path, repr(v)) for spath in schema for path, v in
                   wiretypes._walk(obj, spath.split("."), "")), key=lambda p: p[0])


def _tree_pairs(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    tree = wiretypes._tree(str(obj.get("kind") or ""))
    out: list[tuple[str, str, str, Any]] = []
    if tree is not None:
        wiretypes._typed(obj, tree, "", out)
    return sorted(((path, repr(v)) for _, _, path, v in out), key=lambda p: p[0])


_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=3),
                  st.floats(allow_nan=False, allow_infinity=False))


def _shaped(schema: dict[str, str]) -> st.SearchStrategy[Any]:
    """Objects that follow (and sometimes break) a schema's shape: its keys, lists where `[]` says,
    random leaves and wrong containers."""
    keys = sorted({p.split(".")[0].removesuffix("[]") for p in schema})

    def under(prefix: str) -> dict[str, str]:
        return {p[len(prefix) + 1:]: t for p, t in schema.items() if p.startswith(prefix + ".")}

    fields: dict[str, st.SearchStrategy[Any]] = {}
    for k in keys:
        sub = under(k)
        sub_each = under(k + "[]")
        options: list[st.SearchStrategy[Any]] = [_leaf, st.lists(_leaf, max_size=2),
                                                 st.dictionaries(st.text(max_size=2), _leaf, max_size=2)]
        if sub:
            options.append(st.deferred(lambda sub=sub: _shaped(sub)))
        if sub_each:
            options.append(st.lists(st.deferred(lambda s=sub_each: _shaped(s)), max_size=3))
        fields[k] = st.one_of(*options)
    return st.fixed_dictionaries({}, optional=fields)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(wiretypes.SCHEMAS)).flatmap(
    lambda kind: _shaped(wiretypes.SCHEMAS[kind]).map(lambda o: {**o, "kind": kind})))
def test_tree_walk_equals_walk_per_path(obj: dict[str, Any]) -> None:
    assert _tree_pairs(obj) == _reference(obj)


def test_errors_sorted_by_field_for_an_endpointslice() -> None:
    s = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"},
         "addressType": "IPv4", "ports": [{"port": "80"}],
         "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}, {"addresses": [3]}]}
    assert [(e.field, e.detail) for e in type_errors(s)] == [
        ("endpoints[0].conditions.ready", "must be of type boolean"),
        ("endpoints[1].addresses", "must be of type string"),
        ("ports[0].port", "must be of type integer"),
    ]



@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(wiretypes.SCHEMAS)).flatmap(
    lambda kind: _shaped(wiretypes.SCHEMAS[kind]).map(lambda o: {**o, "kind": kind})))
def test_quick_check_agrees_with_the_full_walk(obj: dict[str, Any]) -> None:
    """The quick test for well-typed objects finds a problem exactly when the full walk does."""
    kind = obj["kind"]
    tree = wiretypes._tree(kind)
    assert tree is not None
    assert wiretypes._clean(obj, tree) == (not wiretypes._findings(obj, kind, tree))
