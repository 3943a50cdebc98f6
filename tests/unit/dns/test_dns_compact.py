"""The DNS server's compact caches (dns/compact.py): the index answers every name exactly as it does from
the objects as served, while the copies keep only names, IPs, ports and the fields that decide answers."""

from __future__ import annotations

import itertools
import json

from dns_fixtures import endpoint, endpoint_slice, pod, service

from podnet.dns.compact import dns_pod, dns_service, dns_slice
from podnet.dns.records import DnsIndex

NOISE = {"uid": "0b6f1c1e-3d2a-4f6b-9a57-4c1e1b2d3f4a", "creationTimestamp": "2026-12-06T11:00:00Z",
         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}" * 200},
         "resourceVersion": "42"}


def noisy(obj: dict) -> dict:  # type: ignore[type-arg]
    obj = json.loads(json.dumps(obj))
    obj["metadata"].update(NOISE)
    return obj


def objects() -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    ports = [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"},
             {"port": 8443, "protocol": "TCP"}]
    out = [
        ("Service", service("web", ports=ports)),
        ("Service", service("db", "data", cluster_ip="None")),  # headless
        ("Service", service("late", cluster_ip="None", publish_not_ready=True)),
        ("Service", service("ext", type_="ExternalName", external_name="example.org")),
        ("Service", service("alias", type_="ExternalName", external_name="web.default.svc.cluster.local")),
        ("Service", service("dual", cluster_ip="10.96.0.60")),
        ("EndpointSlice", endpoint_slice("web-a", "web", [endpoint("10.244.1.5"),
                                                          endpoint("10.244.2.7", ready=False)])),
        ("EndpointSlice", endpoint_slice("db-a", "db", [endpoint("10.244.1.9", hostname="db-0"),
                                                        endpoint("10.244.2.9", hostname="db-1", ready=None),
                                                        endpoint("10.244.3.9", ready=False)], "data")),
        ("EndpointSlice", endpoint_slice("late-a", "late", [endpoint("10.244.1.11", ready=False)])),
        ("EndpointSlice", endpoint_slice("fqdn", "web", [endpoint("example.org")], address_type="FQDN")),
        ("Pod", pod("p1", "10.244.1.5")),
        ("Pod", pod("p2", "10.244.2.7", "data")),
        ("Pod", pod("gone", "10.244.2.8", phase="Succeeded")),
        ("Pod", pod("host", "172.30.0.2", hostNetwork=True)),
        ("Pod", pod("pending", None)),
    ]
    out[5][1]["spec"]["clusterIPs"] = ["10.96.0.60", "fd00::60"]
    return out


SHAPES = {"Service": dns_service, "EndpointSlice": dns_slice, "Pod": dns_pod}


def _answers(idx: DnsIndex, names: list[str]) -> list[tuple[str, str, str, list[str]]]:
    out = []
    for name, qtype in itertools.product(names, ("A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "ANY")):
        a = idx.lookup(name, qtype)
        out.append((name, qtype, a.rcode, sorted(r.text() for r in a.answers + a.additional)))
    return out


def test_the_index_answers_the_same_from_compact_copies() -> None:
    full, compact = DnsIndex(pods="verified"), DnsIndex(pods="verified")
    for kind, obj in objects():
        full.apply("ADDED", noisy(obj), kind)
        compact.apply("ADDED", SHAPES[kind](noisy(obj)), kind)
    names = [*full.names(), "nope.default.svc.cluster.local.", "10-244-1-5.default.pod.cluster.local."]
    assert full.names() == compact.names() and len(names) > 20
    assert _answers(full, names) == _answers(compact, names)
    # and after changes: an endpoint becomes ready, a Service and a Pod go away
    changes = [("MODIFIED", "EndpointSlice", endpoint_slice("web-a", "web", [endpoint("10.244.1.5"),
                                                                             endpoint("10.244.2.7")])),
               ("DELETED", "Service", service("db", "data", cluster_ip="None")),
               ("DELETED", "Pod", pod("p1", "10.244.1.5"))]
    for etype, kind, obj in changes:
        full.apply(etype, noisy(obj), kind)
        compact.apply(etype, SHAPES[kind](noisy(obj)), kind)
    assert full.names() == compact.names()
    assert _answers(full, names) == _answers(compact, names)


def test_compact_copies_keep_only_what_dns_answers_with() -> None:
    svc = dns_service(noisy(service("web")))
    meta = {"namespace": "default", "resourceVersion": "42"}
    assert svc == {"kind": "Service", "metadata": {"name": "web", **meta},
                   "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.50", "clusterIPs": ("10.96.0.50",),
                            "ports": ({"name": "http", "port": 80, "protocol": "TCP"},)}}
    sl = dns_slice(noisy(endpoint_slice("web-a", "web", [endpoint("10.244.1.5", hostname="h")])))
    assert sl["metadata"]["labels"] == {"kubernetes.io/service-name": "web"}
    assert sl["endpoints"] == ({"addresses": ("10.244.1.5",), "conditions": {"ready": True},
                                "hostname": "h"},)
    p = dns_pod(noisy(pod("p1", "10.244.1.5", hostNetwork=True)))
    assert p == {"kind": "Pod", "metadata": {"name": "p1", **meta},
                 "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": ({"ip": "10.244.1.5"},)},
                 "spec": {"hostNetwork": True}}
    # the few condition maps are shared between endpoints; names are interned
    a = dns_slice(endpoint_slice("a", "s", [endpoint("10.0.0.1")]))
    b = dns_slice(endpoint_slice("b", "s", [endpoint("10.0.0.2")]))
    assert a["endpoints"][0]["conditions"] is b["endpoints"][0]["conditions"]
    assert a["metadata"]["labels"]["kubernetes.io/service-name"] is b["metadata"]["labels"][
        "kubernetes.io/service-name"]


def test_malformed_fields_do_not_raise() -> None:
    assert dns_service({"metadata": {"name": "x", "namespace": "d"}, "spec": {"ports": "80"}})["spec"] == {
        "ports": ()}
    assert dns_slice({"metadata": None, "endpoints": [None, {"addresses": None}]})["endpoints"] == (
        {}, {"addresses": ()})
    bad_pod = {"metadata": {"name": "p"}, "status": {"podIPs": [None, {"ip": "10.0.0.1"}]}}
    assert dns_pod(bad_pod)["status"] == {"podIPs": ({"ip": "10.0.0.1"},)}
