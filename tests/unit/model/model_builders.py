"""Shared builders for model tests: valid objects in their defaulted wire shape; and the check of a
validation result against a case table row."""

from __future__ import annotations

import copy
from typing import Any

from podnet.model.defaults import apply_defaults
from podnet.model.errors import ErrorType, FieldError

Obj = dict[str, Any]


def valid_service() -> Obj:
    """Like Kubernetes' makeValidService: a defaulted ClusterIP Service with an allocated IP."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "valid",
            "namespace": "valid",
            "labels": {},
            "annotations": {},
            "resourceVersion": "1",
        },
        "spec": {
            "selector": {"key": "val"},
            "sessionAffinity": "None",
            "type": "ClusterIP",
            "clusterIP": "1.2.3.4",
            "clusterIPs": ["1.2.3.4"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "ports": [{"name": "p", "protocol": "TCP", "port": 8675, "targetPort": 8675}],
        },
    }


def valid_pod(name: str = "web") -> Obj:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
    }
    return apply_defaults(pod)


def valid_deployment(name: str = "web") -> Obj:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    return apply_defaults(dep)


def deep(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


def assert_field_errors(
    errs: list[FieldError], expected: list[tuple[str, ErrorType]], messages: list[str] | None
) -> None:
    """The errors are exactly `expected` (field, type) in order; when `messages` is given, the first
    messages read exactly so."""
    assert [(e.field, e.type) for e in errs] == expected, [e.error() for e in errs]
    if messages is not None:
        got = [e.error() for e in errs][: len(messages)]
        assert got == messages, f"messages {got!r} != expected {messages!r}"
