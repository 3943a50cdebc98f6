"""DnsIndex: the Kubernetes DNS specification's records, from Services, EndpointSlices and Pods."""

from __future__ import annotations

import pytest
from dns_fixtures import endpoint, endpoint_slice, pod, service

from podnet.dns.records import NOERROR, NXDOMAIN, DnsIndex

Z = "cluster.local."


def texts(answer_records: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(r.text() for r in answer_records)


@pytest.fixture
def idx() -> DnsIndex:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", service("my-svc", ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                                              {"name": "dns", "port": 53, "protocol": "UDP"}]))
    return i


def test_clusterip_service_a_record(idx: DnsIndex) -> None:
    a = idx.lookup("my-svc.default.svc.cluster.local", "A")
    assert a.rcode == NOERROR
    assert texts(a.answers) == ["my-svc.default.svc.cluster.local. 5 IN A 10.96.0.50"]
    assert a.authoritative


def test_names_are_case_insensitive(idx: DnsIndex) -> None:
    a = idx.lookup("My-Svc.DEFAULT.svc.Cluster.Local.", "a")
    assert [r.data for r in a.answers] == [("10.96.0.50",)]


def test_srv_named_ports_lowercase_proto(idx: DnsIndex) -> None:
    a = idx.lookup("_http._tcp.my-svc.default.svc.cluster.local", "SRV")
    assert texts(a.answers) == ["_http._tcp.my-svc.default.svc.cluster.local. 5 IN SRV "
                                "0 100 80 my-svc.default.svc.cluster.local."]
    assert texts(a.additional) == ["my-svc.default.svc.cluster.local. 5 IN A 10.96.0.50"]
    u = idx.lookup("_dns._udp.my-svc.default.svc.cluster.local", "SRV")
    assert [r.data[2] for r in u.answers] == [53]
    # the protocol must match
    assert idx.lookup("_dns._tcp.my-svc.default.svc.cluster.local", "SRV").rcode == NXDOMAIN


def test_srv_on_service_name_lists_all_ports(idx: DnsIndex) -> None:
    a = idx.lookup("my-svc.default.svc.cluster.local", "SRV")
    assert sorted(r.data for r in a.answers) == [(0, 50, 53, "my-svc.default.svc.cluster.local."),
                                                 (0, 50, 80, "my-svc.default.svc.cluster.local.")]


def test_ptr_for_cluster_ip(idx: DnsIndex) -> None:
    a = idx.lookup("50.0.96.10.in-addr.arpa", "PTR")
    assert texts(a.answers) == ["50.0.96.10.in-addr.arpa. 5 IN PTR my-svc.default.svc.cluster.local."]


def test_unknown_reverse_name_is_not_ours(idx: DnsIndex) -> None:
    a = idx.lookup("9.9.9.9.in-addr.arpa", "PTR")
    assert not a.authoritative and a.answers == []


def test_nxdomain_with_soa_for_missing_service(idx: DnsIndex) -> None:
    a = idx.lookup("nope.default.svc.cluster.local", "A")
    assert a.rcode == NXDOMAIN and a.answers == []
    assert [r.rtype for r in a.authority] == ["SOA"]
    soa = a.authority[0]
    assert soa.name == Z
    assert soa.data[:2] == ("ns.dns.cluster.local.", "hostmaster.cluster.local.")


def test_nodata_for_other_types_on_existing_names(idx: DnsIndex) -> None:
    for qtype in ("AAAA", "TXT", "MX", "CNAME"):
        a = idx.lookup("my-svc.default.svc.cluster.local", qtype)
        assert (a.rcode, a.answers, [r.rtype for r in a.authority]) == (NOERROR, [], ["SOA"]), qtype


def test_empty_non_terminals_exist(idx: DnsIndex) -> None:
    for name in ("default.svc.cluster.local", "svc.cluster.local", "cluster.local", "pod.cluster.local",
                 "_tcp.my-svc.default.svc.cluster.local"):
        assert idx.lookup(name, "A").rcode == NOERROR, name
    assert idx.lookup("other-ns.svc.cluster.local", "A").rcode == NXDOMAIN


def test_names_outside_the_zone_are_not_answered(idx: DnsIndex) -> None:
    a = idx.lookup("example.com", "A")
    assert not a.authoritative and a.rcode == NOERROR and a.answers == []
    assert not idx.lookup("cluster.localx", "A").authoritative


def test_dns_version_soa_ns(idx: DnsIndex) -> None:
    assert texts(idx.lookup("dns-version.cluster.local", "TXT").answers) == [
        'dns-version.cluster.local. 5 IN TXT "1.0.1"']
    assert [r.rtype for r in idx.lookup("cluster.local", "SOA").answers] == ["SOA"]
    assert [r.data for r in idx.lookup("cluster.local", "NS").answers] == [("ns.dns.cluster.local.",)]


def test_service_delete_gives_nxdomain_and_drops_ptr(idx: DnsIndex) -> None:
    idx.apply("DELETED", service("my-svc"))
    assert idx.lookup("my-svc.default.svc.cluster.local", "A").rcode == NXDOMAIN
    assert not idx.lookup("50.0.96.10.in-addr.arpa", "PTR").authoritative
    assert idx.lookup("default.svc.cluster.local", "A").rcode == NXDOMAIN
    assert idx.names() == ["cluster.local.", "dns-version.cluster.local."]


def test_service_update_changes_ip(idx: DnsIndex) -> None:
    serial = idx.soa().data[2]
    idx.apply("MODIFIED", service("my-svc", cluster_ip="10.96.0.77"))
    assert [r.data for r in idx.lookup("my-svc.default.svc.cluster.local", "A").answers] == [("10.96.0.77",)]
    ptr = idx.lookup("77.0.96.10.in-addr.arpa", "PTR")
    assert ptr.answers[0].data == ("my-svc.default.svc.cluster.local.",)
    assert not idx.lookup("50.0.96.10.in-addr.arpa", "PTR").authoritative
    assert idx.soa().data[2] > serial


def headless_index(publish: bool = False) -> DnsIndex:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", service("db", cluster_ip="None", publish_not_ready=publish))
    i.apply("ADDED", endpoint_slice("db-abc", "db", [
        endpoint("10.244.1.5", hostname="db-0"),
        endpoint("10.244.2.7"),
        endpoint("10.244.3.9", ready=False),
        endpoint("10.244.3.10", ready=None),  # nil ready: treated as ready
    ]))
    return i


def test_headless_a_lists_ready_endpoints() -> None:
    i = headless_index()
    a = i.lookup("db.default.svc.cluster.local", "A")
    assert sorted(r.data[0] for r in a.answers) == ["10.244.1.5", "10.244.2.7", "10.244.3.10"]


def test_headless_publish_not_ready_includes_all() -> None:
    i = headless_index(publish=True)
    a = i.lookup("db.default.svc.cluster.local", "A")
    assert sorted(r.data[0] for r in a.answers) == ["10.244.1.5", "10.244.2.7", "10.244.3.10", "10.244.3.9"]


def test_headless_endpoint_names() -> None:
    i = headless_index()
    assert [r.data[0] for r in i.lookup("db-0.db.default.svc.cluster.local", "A").answers] == ["10.244.1.5"]
    assert [r.data[0] for r in i.lookup("10-244-2-7.db.default.svc.cluster.local", "A").answers] == [
        "10.244.2.7"]
    # an endpoint with a hostname is named by it only; a not-ready one has no name
    assert i.lookup("10-244-1-5.db.default.svc.cluster.local", "A").rcode == NXDOMAIN
    assert i.lookup("10-244-3-9.db.default.svc.cluster.local", "A").rcode == NXDOMAIN


def test_headless_srv_one_per_endpoint() -> None:
    i = headless_index()
    a = i.lookup("_http._tcp.db.default.svc.cluster.local", "SRV")
    assert sorted(r.data for r in a.answers) == [
        (0, 33, 8080, "10-244-2-7.db.default.svc.cluster.local."),
        (0, 33, 8080, "10-244-3-10.db.default.svc.cluster.local."),
        (0, 33, 8080, "db-0.db.default.svc.cluster.local."),
    ]
    assert sorted(r.data[0] for r in a.additional) == ["10.244.1.5", "10.244.2.7", "10.244.3.10"]


def test_headless_ptr_for_endpoint_ips() -> None:
    i = headless_index()
    ptr = i.lookup("5.1.244.10.in-addr.arpa", "PTR")
    assert ptr.answers[0].data == ("db-0.db.default.svc.cluster.local.",)
    assert i.lookup("7.2.244.10.in-addr.arpa", "PTR").answers[0].data == (
        "10-244-2-7.db.default.svc.cluster.local.",)


def test_headless_without_ready_endpoints_is_nxdomain() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", service("empty", cluster_ip="None"))
    i.apply("ADDED", endpoint_slice("empty-x", "empty", [endpoint("10.244.1.1", ready=False)]))
    assert i.lookup("empty.default.svc.cluster.local", "A").rcode == NXDOMAIN


def test_slices_merge_and_slice_delete() -> None:
    i = headless_index()
    i.apply("ADDED", endpoint_slice("db-def", "db", [endpoint("10.244.4.4"), endpoint("10.244.2.7")]))
    a = i.lookup("db.default.svc.cluster.local", "A")
    assert sorted(r.data[0] for r in a.answers) == ["10.244.1.5", "10.244.2.7", "10.244.3.10", "10.244.4.4"]
    i.apply("DELETED", endpoint_slice("db-abc", "db", []))
    a = i.lookup("db.default.svc.cluster.local", "A")
    assert sorted(r.data[0] for r in a.answers) == ["10.244.2.7", "10.244.4.4"]


def test_slice_before_service_is_used_once_service_arrives() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", endpoint_slice("db-abc", "db", [endpoint("10.244.1.5")]))
    assert i.lookup("db.default.svc.cluster.local", "A").rcode == NXDOMAIN
    i.apply("ADDED", service("db", cluster_ip="None"))
    assert [r.data[0] for r in i.lookup("db.default.svc.cluster.local", "A").answers] == ["10.244.1.5"]


def test_endpoint_hostname_under_clusterip_service_and_ptr_precedence() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", service("web", cluster_ip="10.96.0.60"))
    i.apply("ADDED", endpoint_slice("web-1", "web", [endpoint("10.244.1.8", hostname="web-a")]))
    assert [r.data[0] for r in i.lookup("web.default.svc.cluster.local", "A").answers] == ["10.96.0.60"]
    assert [r.data[0] for r in i.lookup("web-a.web.default.svc.cluster.local", "A").answers] == ["10.244.1.8"]
    i.apply("ADDED", pod("web-a-pod", "10.244.1.8"))
    # an endpoint name wins over the bare pod name for the pod's PTR
    assert [r.data[0] for r in i.lookup("8.1.244.10.in-addr.arpa", "PTR").answers] == [
        "web-a.web.default.svc.cluster.local."]


def test_external_name_cname() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", service("ext", type_="ExternalName", external_name="db.example.com"))
    a = i.lookup("ext.default.svc.cluster.local", "A")
    assert texts(a.answers) == ["ext.default.svc.cluster.local. 5 IN CNAME db.example.com."]
    assert i.cname_target_outside(a) == "db.example.com."
    assert texts(i.lookup("ext.default.svc.cluster.local", "CNAME").answers) == texts(a.answers)


def test_external_name_inside_zone_is_chased() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", service("real", cluster_ip="10.96.0.61"))
    i.apply("ADDED", service("alias", type_="ExternalName", external_name="real.default.svc.cluster.local"))
    a = i.lookup("alias.default.svc.cluster.local", "A")
    assert [(r.rtype, r.data[0]) for r in a.answers] == [("CNAME", "real.default.svc.cluster.local."),
                                                         ("A", "10.96.0.61")]
    assert i.cname_target_outside(a) is None


def test_pod_records_verified() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", pod("p1", "10.244.1.5", ns="team"))
    assert [r.data[0] for r in i.lookup("10-244-1-5.team.pod.cluster.local", "A").answers] == ["10.244.1.5"]
    assert i.lookup("10-244-1-5.default.pod.cluster.local", "A").rcode == NXDOMAIN
    assert i.lookup("10-244-9-9.team.pod.cluster.local", "A").rcode == NXDOMAIN
    assert [r.data[0] for r in i.lookup("5.1.244.10.in-addr.arpa", "PTR").answers] == [
        "10-244-1-5.team.pod.cluster.local."]
    i.apply("DELETED", pod("p1", "10.244.1.5", ns="team"))
    assert i.lookup("10-244-1-5.team.pod.cluster.local", "A").rcode == NXDOMAIN


def test_finished_and_host_network_pods_have_no_records() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", pod("done", "10.244.1.6", phase="Succeeded"))
    i.apply("ADDED", pod("hostnet", "172.18.0.2", hostNetwork=True))
    assert i.lookup("10-244-1-6.default.pod.cluster.local", "A").rcode == NXDOMAIN
    assert i.lookup("172-18-0-2.default.pod.cluster.local", "A").rcode == NXDOMAIN


def test_pod_records_insecure_and_disabled() -> None:
    i = DnsIndex("cluster.local", pods="insecure")
    assert [r.data[0] for r in i.lookup("1-2-3-4.any.pod.cluster.local", "A").answers] == ["1.2.3.4"]
    assert i.lookup("1-2-3.any.pod.cluster.local", "A").rcode == NXDOMAIN
    d = DnsIndex("cluster.local", pods="disabled")
    d.apply("ADDED", pod("p1", "10.244.1.5"))
    assert d.lookup("10-244-1-5.default.pod.cluster.local", "A").rcode == NXDOMAIN


def test_custom_cluster_domain() -> None:
    i = DnsIndex("corp.example")
    i.apply("ADDED", service("api", cluster_ip="10.96.0.9"))
    assert [r.data[0] for r in i.lookup("api.default.svc.corp.example", "A").answers] == ["10.96.0.9"]
    assert not i.lookup("api.default.svc.cluster.local", "A").authoritative


def test_ipv6_cluster_ip_gives_aaaa_and_ip6_ptr() -> None:
    i = DnsIndex("cluster.local")
    i.apply("ADDED", service("v6", cluster_ip="fd00:10:96::a"))
    assert [r.data[0] for r in i.lookup("v6.default.svc.cluster.local", "AAAA").answers] == ["fd00:10:96::a"]
    assert i.lookup("v6.default.svc.cluster.local", "A").answers == []
    rev = "a.0.0.0." + "0.0.0.0." * 4 + "6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa"
    assert [r.data[0] for r in i.lookup(rev, "PTR").answers] == ["v6.default.svc.cluster.local."]


def test_unknown_kind_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot index kind 'ConfigMap'"):
        DnsIndex().apply("ADDED", {"kind": "ConfigMap", "metadata": {"name": "x"}})


def test_bad_pods_mode() -> None:
    with pytest.raises(ValueError, match="pods mode 'sometimes' is not supported"):
        DnsIndex(pods="sometimes")  # type: ignore[arg-type]


def test_replace_all_rebuilds() -> None:
    i = headless_index()
    i.replace_all([service("only", cluster_ip="10.96.0.99")], [], [])
    assert i.lookup("db.default.svc.cluster.local", "A").rcode == NXDOMAIN
    assert [r.data[0] for r in i.lookup("only.default.svc.cluster.local", "A").answers] == ["10.96.0.99"]
