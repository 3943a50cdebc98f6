"""Incremental updates give the same answers as building the index from the final objects."""

from __future__ import annotations

from typing import Any

from dns_fixtures import endpoint, endpoint_slice, pod, service
from hypothesis import given, settings
from hypothesis import strategies as st

from podnet.dns.records import DnsIndex

SVC_NAMES = ["a", "b", "c"]
IPS = ["10.244.1.1", "10.244.1.2", "10.244.2.1"]

service_objs = st.builds(
    lambda name, kind, ip: service(name, cluster_ip={"ip": f"10.96.0.{ip}", "headless": "None"}.get(kind),
                                   type_="ExternalName" if kind == "ext" else "ClusterIP",
                                   external_name=f"{name}.example.org"),
    st.sampled_from(SVC_NAMES), st.sampled_from(["ip", "headless", "ext"]), st.integers(1, 3))


def _slice(n: int, svc: str, eps: list[tuple[str, bool, str]]) -> dict[str, Any]:
    return endpoint_slice(f"s{n}", svc, [endpoint(ip, ready=ready, hostname=h) for ip, ready, h in eps])


slice_objs = st.builds(
    _slice,
    st.integers(1, 3), st.sampled_from(SVC_NAMES),
    st.lists(st.tuples(st.sampled_from(IPS), st.booleans(), st.sampled_from(["", "h0", "h1"])), max_size=3))
pod_objs = st.builds(lambda n, ip: pod(f"p{n}", ip), st.integers(1, 3), st.sampled_from(IPS))
ops = st.lists(st.tuples(st.sampled_from(["put", "delete"]), st.one_of(service_objs, slice_objs, pod_objs)),
               max_size=25)


STATIC_PROBES = {"default.svc.cluster.local.", "default.pod.cluster.local.", "svc.cluster.local."}
for _svc in SVC_NAMES:
    _base = f"{_svc}.default.svc.cluster.local."
    STATIC_PROBES |= {_base, f"_tcp.{_base}", f"_http._tcp.{_base}", f"h0.{_base}", f"h1.{_base}"}
    STATIC_PROBES |= {f"{ip.replace('.', '-')}.{_base}" for ip in IPS}
for _ip in IPS:
    STATIC_PROBES |= {f"{_ip.replace('.', '-')}.default.pod.cluster.local.",
                      ".".join(reversed(_ip.split("."))) + ".in-addr.arpa."}
STATIC_PROBES |= {f"{i}.0.96.10.in-addr.arpa." for i in (1, 2, 3)}


def probe_names(idx: DnsIndex) -> set[str]:
    names = set(idx.names()) | STATIC_PROBES
    for n in list(names):
        labels = n.split(".")
        names.update(".".join(labels[i:]) for i in range(len(labels) - 1))
    return names


def snapshot(idx: DnsIndex, names: set[str]) -> dict[tuple[str, str], Any]:
    out = {}
    for n in sorted(names):
        for qtype in ("A", "SRV", "PTR", "CNAME", "TXT"):
            a = idx.lookup(n, qtype)
            out[(n, qtype)] = (a.rcode, a.authoritative, sorted(r.text() for r in a.answers))
    return out


@settings(max_examples=150, deadline=None)
@given(ops)
def test_incremental_equals_rebuild(operations: list[tuple[str, dict[str, Any]]]) -> None:
    inc = DnsIndex()
    final: dict[tuple[str, str], dict[str, Any]] = {}
    for op, obj in operations:
        key = (obj["kind"], obj["metadata"]["name"])
        if op == "put":
            inc.apply("MODIFIED" if key in final else "ADDED", obj)
            final[key] = obj
        elif key in final:
            inc.apply("DELETED", final.pop(key))
    fresh = DnsIndex()
    for obj in final.values():
        fresh.apply("ADDED", obj)
    names = probe_names(inc) | probe_names(fresh)
    assert inc.names() == fresh.names()
    assert snapshot(inc, names) == snapshot(fresh, names)
