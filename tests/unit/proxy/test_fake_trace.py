"""FakeNft.trace over rendered rulesets: what happens to each kind of connection."""

from __future__ import annotations

import pytest
from proxy_fixtures import CASES, NODE1, NODE3, all_cases, state_of

from podnet.proxy.fake import FakeNft, Packet, TraceResult
from podnet.proxy.render import render_full
from podnet.proxy.serviceports import NodeFacts


def loaded(node: NodeFacts = NODE1) -> FakeNft:
    svcs, slices = all_cases()
    f = FakeNft()
    f.apply(render_full(state_of(svcs, slices, node)))
    return f


def trace(f: FakeNft, src: str, dst: str, port: int, proto: str = "tcp", node: NodeFacts = NODE1,
          entry: str = "in") -> TraceResult:
    return f.trace(Packet(src, dst, port, proto, entry=entry), local_ips=node.ips)


def test_pod_to_cluster_ip_spreads_over_all_endpoints_without_snat() -> None:
    r = trace(loaded(), "10.244.1.50", "10.96.0.20", 80)
    assert r.verdict == "accept"
    assert r.service == "default/web:http/TCP clusterIP"
    assert r.candidates == [("10.244.1.5", 8080), ("10.244.2.5", 8080), ("10.244.3.5", 8080)]
    assert r.masquerade_by_candidate == {c: False for c in r.candidates}
    assert r.delivered == "forward"


def test_hairpin_masquerades_only_when_the_pod_reaches_itself() -> None:
    r = trace(loaded(), "10.244.2.5", "10.96.0.20", 80)
    assert r.masquerade_by_candidate == {("10.244.1.5", 8080): False, ("10.244.2.5", 8080): True,
                                         ("10.244.3.5", 8080): False}


def test_hairpin_follows_the_node_routes_devices() -> None:
    """With the node's routes, hairpin is what the kernel's `fib daddr . iif oif` sees: the DNAT
    target is routed out of the device the packet came in through (each local pod has its own veth;
    remote pods all come and go through the uplink)."""
    devices = {"10.244.1.5/32": "pn-a", "10.244.1.50/32": "pn-b", "10.244.2.0/24": "eth0",
               "10.244.3.0/24": "eth0", "172.31.5.0/24": "eth0"}
    f = loaded()
    local = f.trace(Packet("10.244.1.5", "10.96.0.20", 80), local_ips=NODE1.ips, devices=devices)
    assert local.masquerade_by_candidate == {("10.244.1.5", 8080): True, ("10.244.2.5", 8080): False,
                                             ("10.244.3.5", 8080): False}
    other = f.trace(Packet("10.244.1.50", "10.96.0.20", 80), local_ips=NODE1.ips, devices=devices)
    assert not any(other.masquerade_by_candidate.values())
    # a packet that came in through the uplink and leaves through it again
    remote = f.trace(Packet("10.244.2.5", "10.96.0.20", 80), local_ips=NODE1.ips, devices=devices)
    assert remote.masquerade_by_candidate == {("10.244.1.5", 8080): False, ("10.244.2.5", 8080): True,
                                              ("10.244.3.5", 8080): True}


def test_outside_to_node_port_is_masqueraded() -> None:
    r = trace(loaded(), "172.31.5.1", "172.31.5.11", 30080)
    assert r.service == "default/np:http/TCP nodePort"
    assert r.candidates == [("10.244.2.5", 8080), ("10.244.3.5", 8080)]
    assert all(r.masquerade_by_candidate.values())


def test_node_port_on_a_node_without_any_local_pod_still_works() -> None:
    r = trace(loaded(NODE3), "172.31.5.1", "172.31.5.13", 30080, node=NODE3)
    assert r.verdict == "accept" and len(r.candidates) == 2


def test_etp_local_uses_local_endpoint_and_keeps_client_ip() -> None:
    r = trace(loaded(), "172.31.5.1", "172.31.5.11", 30082)
    assert r.candidates == [("10.244.1.6", 8080)]
    assert r.masquerade_by_candidate == {("10.244.1.6", 8080): False}


def test_etp_local_on_node_without_local_endpoint_drops() -> None:
    r = trace(loaded(NODE3), "172.31.5.1", "172.31.5.13", 30082, node=NODE3)
    assert r.verdict == "drop"
    assert r.candidates == []
    assert "no-endpoints" in r.steps[-1].rule


def test_etp_local_cluster_ip_still_uses_every_endpoint() -> None:
    r = trace(loaded(NODE3), "10.244.3.40", "10.96.0.23", 80, node=NODE3)
    assert len(r.candidates) == 2


def test_itp_local_drops_on_node_without_local_endpoint() -> None:
    assert trace(loaded(), "10.244.1.40", "10.96.0.24", 80).candidates == [("10.244.1.7", 8080)]
    assert trace(loaded(NODE3), "10.244.3.40", "10.96.0.24", 80, node=NODE3).verdict == "drop"


def test_no_endpoints_rejects_tcp_with_reset_and_udp_with_icmp() -> None:
    f = loaded()
    r = trace(f, "10.244.1.40", "10.96.0.26", 80)
    assert (r.verdict, r.reject_with) == ("reject", "tcp reset")
    assert r.service == "default/empty:/TCP clusterIP"
    r = trace(f, "10.244.1.40", "10.96.0.26", 53, "udp")
    assert (r.verdict, r.reject_with) == ("reject", "icmp port-unreachable")


def test_load_balancer_source_ranges() -> None:
    f = loaded()
    ok = trace(f, "10.1.2.3", "172.31.5.200", 80)
    assert ok.verdict == "accept" and len(ok.candidates) == 3
    assert all(ok.masquerade_by_candidate.values())
    bad = trace(f, "192.168.9.9", "172.31.5.200", 80)
    assert bad.verdict == "drop"
    assert "lb-allowed" in bad.steps[-1].rule


def test_external_ip_is_served_like_the_service() -> None:
    r = trace(loaded(), "192.168.9.9", "172.31.5.210", 80)
    assert r.service == "default/lb:http/TCP externalIP" and len(r.candidates) == 3


def test_multi_port_named_ports_resolved_per_slice_and_udp() -> None:
    f = loaded()
    assert trace(f, "10.244.1.40", "10.96.0.27", 80).candidates == [("10.244.1.8", 8080),
                                                                      ("10.244.2.8", 8081)]
    assert trace(f, "10.244.1.40", "10.96.0.27", 53, "udp").candidates == [("10.244.1.8", 5353),
                                                                          ("10.244.2.8", 5353)]
    # a port the ClusterIP does not define: refused, as kube-proxy does
    assert trace(f, "10.244.1.40", "10.96.0.27", 53, "tcp").verdict == "reject"
    assert trace(f, "10.244.1.40", "10.96.0.27", 53, "tcp").candidates == []


def test_terminating_endpoints_are_a_fallback() -> None:
    assert trace(loaded(), "10.244.1.40", "10.96.0.28", 80).candidates == [("10.244.2.9", 8080)]


def test_pod_to_pod_is_not_translated() -> None:
    r = trace(loaded(), "10.244.1.40", "10.244.2.5", 8080)
    assert r.verdict == "accept" and r.dnat is None and not r.masquerade and r.service == ""


def test_node_itself_to_cluster_ip_is_masqueraded() -> None:
    r = trace(loaded(), "172.31.5.11", "10.96.0.20", 80, entry="local")
    assert len(r.candidates) == 3 and all(r.masquerade_by_candidate.values())


def test_session_affinity_entry_wins_over_random_choice() -> None:
    f = loaded()
    assert not trace(f, "10.244.1.40", "10.96.0.25", 80).sticky
    sid = next(e.data for k, e in f.set_elements("svc-ids").items() if k[0] == "10.96.0.25")
    assert sid is not None
    f.apply(f"add element ip podnet affinity-600 {{ 10.244.1.40 . {sid[0]} : 10.244.2.5 . 8080 }}\n")
    r = trace(f, "10.244.1.40", "10.96.0.25", 80)
    assert r.sticky and r.candidates == [("10.244.2.5", 8080)]
    assert len(trace(f, "10.244.1.41", "10.96.0.25", 80).candidates) == 2  # other clients: random


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_traces_without_error(case: str) -> None:
    svcs, slices = CASES[case]()
    f = FakeNft()
    f.apply(render_full(state_of(svcs, slices)))
    for fe in state_of(svcs, slices).frontends.values():
        r = trace(f, "10.1.2.3", fe.ip, fe.port, fe.proto)
        assert r.verdict in ("accept", "drop", "reject")
        if fe.endpoints and not fe.source_ranges:
            assert sorted(r.candidates) == sorted(fe.endpoints)


def test_etp_local_from_a_pod_goes_to_every_endpoint_like_kube_proxy() -> None:
    """Traffic from inside the cluster is not external: no local-only restriction, no SNAT."""
    f = loaded(NODE3)
    for dst, port in (("172.31.5.201", 80), ("172.31.5.13", 30082)):
        r = trace(f, "10.244.3.40", dst, port, node=NODE3)
        assert r.verdict == "accept"
        assert r.candidates == [("10.244.1.6", 8080), ("10.244.2.6", 8080)]
        assert not any(r.masquerade_by_candidate.values())
        assert "local-bypass" in r.steps[1].rule


def test_etp_local_from_the_node_itself_goes_to_every_endpoint_with_snat() -> None:
    r = trace(loaded(NODE3), "172.31.5.13", "172.31.5.13", 30082, node=NODE3, entry="local")
    assert len(r.candidates) == 2 and all(r.masquerade_by_candidate.values())
