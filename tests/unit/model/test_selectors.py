"""Label selectors (map, LabelSelector, query syntax) and field selectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podnet.model import selectors
from podnet.model.errors import ErrorType
from podnet.model.selectors import (
    Requirement,
    Selector,
    SelectorError,
    field_matches,
    field_value,
    from_label_selector,
    from_map,
    parse,
    parse_field_selector,
)


def test_service_selector_map() -> None:
    sel = from_map({"app": "web", "tier": "front"})
    assert sel.matches({"app": "web", "tier": "front", "extra": "x"})
    assert not sel.matches({"app": "web"})
    assert not sel.matches({"app": "db", "tier": "front"})
    assert str(sel) == "app=web,tier=front"


def test_empty_service_selector_selects_nothing() -> None:
    empties: list[dict[str, str] | None] = [None, {}]
    for empty in empties:
        sel = from_map(empty)
        assert not sel.matches({})
        assert not sel.matches({"app": "web"})
        assert not sel.is_empty()


def test_label_selector_match_labels_and_expressions() -> None:
    sel = from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.matches({"app": "web", "tier": "edge", "team": "a"})
    assert sel.matches({"app": "web", "tier": "front", "team": "a", "env": "dev"})
    assert not sel.matches({"app": "web", "tier": "front", "team": "a", "env": "prod"})
    assert not sel.matches({"app": "web", "tier": "back", "team": "a"})
    assert not sel.matches({"app": "web", "tier": "front"})
    assert not sel.matches({"app": "web", "tier": "front", "team": "a", "legacy": "1"})
    assert str(sel) == "app=web,env notin (prod),!legacy,team,tier in (edge,front)"


def test_label_selector_empty_and_none() -> None:
    assert from_label_selector({}).matches({"anything": "x"})
    assert from_label_selector({}).is_empty()
    assert not from_label_selector(None).matches({"anything": "x"})


@pytest.mark.parametrize(
    ("expr", "field", "etype", "message"),
    [
        (
            {"key": "a", "operator": "In", "values": []},
            "selector.matchExpressions[0].values",
            ErrorType.REQUIRED,
            "selector.matchExpressions[0].values: Required value: must be specified when `operator` is "
            "'In' or "
            "'NotIn'",
        ),
        (
            {"key": "a", "operator": "Exists", "values": ["x"]},
            "selector.matchExpressions[0].values",
            ErrorType.FORBIDDEN,
            "selector.matchExpressions[0].values: Forbidden: may not be specified when "
            "`operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            {"key": "a", "operator": "Like", "values": ["x"]},
            "selector.matchExpressions[0].operator",
            ErrorType.INVALID,
            'selector.matchExpressions[0].operator: Invalid value: "Like": not a valid selector operator',
        ),
        ({"key": "a b", "operator": "Exists"}, "selector.matchExpressions[0].key", ErrorType.INVALID, None),
    ],
)
def test_label_selector_errors(
    expr: dict[str, object], field: str, etype: ErrorType, message: str | None
) -> None:
    with pytest.raises(SelectorError) as info:
        from_label_selector({"matchExpressions": [expr]})
    err = info.value.errors[0]
    assert (err.field, err.type) == (field, etype)
    if message:
        assert err.error() == message
    assert isinstance(info.value, ValueError)


def test_parse_query_syntax() -> None:
    sel = parse("a=b,c!=d,e in (x,y),f notin (z),g,!h")
    assert sel.matches({"a": "b", "e": "x", "g": "1"})
    assert sel.matches({"a": "b", "c": "q", "e": "y", "f": "w", "g": ""})
    assert not sel.matches({"a": "b", "c": "d", "e": "x", "g": "1"})
    assert not sel.matches({"a": "b", "e": "x", "g": "1", "h": "1"})
    assert not sel.matches({"a": "b", "e": "x"})
    assert not sel.matches({"a": "b", "e": "x", "g": "1", "f": "z"})
    assert str(sel) == "a=b,c!=d,e in (x,y),f notin (z),g,!h"


def test_parse_details() -> None:
    assert parse("").is_empty() and parse("  ").matches({})
    assert parse("a==b").matches({"a": "b"}) and str(parse("a==b")) == "a==b"
    assert parse("a=").matches({"a": ""}) and not parse("a=").matches({})
    assert parse("app.kubernetes.io/name=web").matches({"app.kubernetes.io/name": "web"})
    assert parse("x>5").matches({"x": "6"}) and not parse("x>5").matches({"x": "5"})
    assert parse("x<5").matches({"x": "4"}) and not parse("x<5").matches({"x": "a"})
    assert parse(" a = b , c in ( x , y ) ").matches({"a": "b", "c": "y"})
    assert parse("a in ()").matches({"a": ""}) and not parse("a in ()").matches({"a": "x"})
    assert str(parse("a in ()")) == "a in ()"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a=b,", "expected a requirement"),
        ("a in x", "expected '(' after 'in'"),
        ("a in (x", "missing ')'"),
        ("=b", "expected a label key"),
        ("a b", "expected '=', '!=', 'in', 'notin' or ','"),
        ("a=b c", "expected ',' between requirements"),
        ("!", "expected a label key after '!'"),
        ("a=b=c", "expected ',' between requirements"),
        ("-bad-=x", "key '-bad-'"),
        ("a=-x-", "value '-x-'"),
        ("x>abc", "must be an integer"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="label selector") as info:
        parse(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


keys = st.from_regex(r"([a-z]{1,5}\.)?[a-z]{1,5}/?[a-z][a-z0-9]{0,5}", fullmatch=True).filter(
    lambda k: not k.endswith("/")
)
values = st.from_regex(r"([a-z0-9]([a-z0-9._-]{0,6}[a-z0-9])?)?", fullmatch=True)
requirements = st.one_of(
    st.builds(lambda k, v: Requirement(k, "=", (v,)), keys, values),
    st.builds(lambda k, v: Requirement(k, "!=", (v,)), keys, values),
    st.builds(
        lambda k, vs: Requirement(k, "in", tuple(sorted(set(vs)))),
        keys,
        st.lists(values.filter(bool), min_size=1, max_size=3),
    ),
    st.builds(
        lambda k, vs: Requirement(k, "notin", tuple(sorted(set(vs)))),
        keys,
        st.lists(values.filter(bool), min_size=1, max_size=3),
    ),
    st.builds(lambda k: Requirement(k, "exists"), keys),
    st.builds(lambda k: Requirement(k, "!"), keys),
)
label_sets = st.dictionaries(keys, values, max_size=4)


@settings(max_examples=150, deadline=None)
@given(st.lists(requirements, max_size=5), st.lists(label_sets, min_size=1, max_size=5))
def test_str_parses_back_to_an_equivalent_selector(
    reqs: list[Requirement], samples: list[dict[str, str]]
) -> None:
    sel = Selector(tuple(reqs))
    back = parse(str(sel))
    assert str(back) == str(sel)
    for labels in samples:
        assert back.matches(labels) == sel.matches(labels)


@settings(max_examples=100, deadline=None)
@given(label_sets)
def test_a_map_selector_matches_its_own_labels(labels: dict[str, str]) -> None:
    sel = from_map(labels)
    assert sel.matches(labels) is bool(labels)
    if labels:
        assert parse(str(sel)).matches(labels)


# ------------------------------------------------------------------------------------------ fields

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-a", "hostNetwork": True},
    "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]},
}


def test_parse_field_selector() -> None:
    assert parse_field_selector("") == []
    assert parse_field_selector("metadata.name=web-1,spec.nodeName!=node-b,status.phase==Running") == [
        ("metadata.name", "=", "web-1"),
        ("spec.nodeName", "!=", "node-b"),
        ("status.phase", "==", "Running"),
    ]
    assert parse_field_selector(r"metadata.name=a\,b") == [("metadata.name", "=", "a,b")]
    assert parse_field_selector("spec.nodeName=") == [("spec.nodeName", "=", "")]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metadata.name", "is not of the form"),
        ("=x", "missing field name"),
        ("a=b=c", "unescaped '='"),
        (r"a=b\x", "invalid escape"),
    ],
)
def test_field_selector_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="field selector") as info:
        parse_field_selector(text)
    assert fragment in str(info.value)


def test_field_value_and_matching() -> None:
    assert field_value(POD, "metadata.name") == "web-1"
    assert field_value(POD, "spec.nodeName") == "node-a"
    assert field_value(POD, "status.phase") == "Running"
    assert field_value(POD, "spec.hostNetwork") == "true"
    assert field_value(POD, "status.podIPs") == "10.244.1.5"
    assert field_value(POD, "spec.missing") == ""
    ev = {"involvedObject": {"kind": "Pod", "name": "web-1"}, "reason": "Started"}
    assert field_value(ev, "involvedObject.kind") == "Pod"
    assert field_matches(POD, parse_field_selector("spec.nodeName=node-a,status.phase!=Pending"))
    assert not field_matches(POD, parse_field_selector("spec.nodeName=node-b"))
    assert field_matches({"spec": {}}, parse_field_selector("spec.nodeName="))  # unscheduled pods
    assert field_value(POD, "spec.host") == "node-a"
    assert field_value({"source": {"component": "kubelet", "host": "n1"}}, "source") == "kubelet"


def test_field_selector_support_per_kind() -> None:
    selectors.check_field_selector("Pod", [("spec.nodeName", "=", "a"), ("spec.host", "=", "a")])
    with pytest.raises(ValueError, match=r"^field label not supported: spec\.nodeName$"):
        selectors.check_field_selector("Service", [("spec.nodeName", "=", "a")])
    assert "spec.type" in selectors.supported_fields("Service")
    assert selectors.supported_fields("ConfigMap") == ("metadata.name", "metadata.namespace")
