"""Garbage in, field errors out: defaulting and validation never raise on odd JSON shapes."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from podnet.model.defaults import apply_defaults
from podnet.model.validation import validate

KINDS = [
    ("v1", "Service"),
    ("v1", "Pod"),
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "Endpoints"),
    ("v1", "ConfigMap"),
    ("v1", "Event"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
]
FIELDS = [
    "metadata",
    "spec",
    "status",
    "name",
    "namespace",
    "labels",
    "ports",
    "port",
    "targetPort",
    "type",
    "selector",
    "containers",
    "image",
    "template",
    "clusterIP",
    "clusterIPs",
    "matchLabels",
    "matchExpressions",
    "subsets",
    "addresses",
    "endpoints",
    "sessionAffinityConfig",
    "clientIP",
    "timeoutSeconds",
    "readinessProbe",
    "httpGet",
    "env",
    "valueFrom",
    "strategy",
    "rollingUpdate",
    "volumes",
    "volumeMounts",
    "resources",
    "limits",
    "requests",
    "tolerations",
    "dnsConfig",
    "data",
]

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-70000, 70000),
        st.floats(allow_nan=False),
        st.sampled_from(["", "None", "TCP", "ClientIP", "LoadBalancer", "a", "1.2.3.4", "25%", "x/y"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    api_version, kind = draw(st.sampled_from(KINDS))
    body = draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5))
    return {"apiVersion": api_version, "kind": kind, **body}


@settings(max_examples=150, deadline=None)
@given(objects(), st.one_of(st.none(), objects()))
def test_never_raises(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    new = apply_defaults(copy.deepcopy(obj))
    if old is not None:
        old = apply_defaults(copy.deepcopy(old))
        old["kind"], old["apiVersion"] = new["kind"], new["apiVersion"]
    for err in validate(new, old):
        assert err.error()  # renders
