"""Port rules of Endpoints and EndpointSlices: protocol (required, or one of SCTP/TCP/UDP) and
appProtocol (a qualified name), with Kubernetes' paths and messages."""

from __future__ import annotations

from typing import Any

from podnet.model.validation import validate

Obj = dict[str, Any]
QUALIFIED = 'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters'


def endpoints(*ports: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.244.1.2"}], "ports": list(ports)}]}


def endpoint_slice(*ports: Obj) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "namespace": "default"}, "addressType": "IPv4",
            "endpoints": [], "ports": list(ports)}


def test_endpoints_port_protocol_and_app_protocol() -> None:
    errs = [e.error() for e in validate(endpoints(
        {"name": "a", "port": 80},
        {"name": "b", "port": 81, "protocol": "tcp", "appProtocol": "a/b/c"},
        {"name": "c", "port": 82, "protocol": "UDP", "appProtocol": "example.com/dns"},
    ))]
    assert errs[:2] == [
        "subsets[0].ports[0].protocol: Required value",
        'subsets[0].ports[1].protocol: Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"',
    ]
    assert len(errs) == 3 and errs[2].startswith(f"subsets[0].ports[1].appProtocol: {QUALIFIED}")


def test_endpoint_slice_port_protocol_and_app_protocol() -> None:
    errs = [e.error() for e in validate(endpoint_slice(
        {"name": "x", "port": 80, "protocol": "TCP", "appProtocol": "a/b/c"},
        {"name": "y", "port": 81, "protocol": ""},  # present but empty: not "required" for slices
        {"name": "z", "port": 82},
    ))]
    assert len(errs) == 3 and errs[0].startswith(f"ports[0].appProtocol: {QUALIFIED}")
    assert errs[1:] == [
        'ports[1].protocol: Unsupported value: "": supported values: "SCTP", "TCP", "UDP"',
        "ports[2].protocol: Required value",
    ]
