"""Service + EndpointSlice → ServicePortInfo: endpoint selection and bad input."""

from __future__ import annotations

from proxy_fixtures import NODE1, ep, eslice, port, svc

from podnet.proxy.serviceports import EndpointInfo, build_service_ports, categorize


def test_ready_endpoints_win_over_terminating() -> None:
    eps = [EndpointInfo("10.244.1.1", 80, "n1", ready=True),
           EndpointInfo("10.244.1.2", 80, "n1", ready=False, serving=True, terminating=True)]
    assert [e.ip for e in categorize(eps, "n1", False)] == ["10.244.1.1"]


def test_serving_terminating_fallback_and_not_serving_excluded() -> None:
    eps = [EndpointInfo("10.244.1.2", 80, "n2", ready=False, serving=True, terminating=True),
           EndpointInfo("10.244.1.3", 80, "n1", ready=False, serving=False, terminating=True),
           EndpointInfo("10.244.1.4", 80, "n1", ready=False, serving=False, terminating=False)]
    assert [e.ip for e in categorize(eps, "n1", False)] == ["10.244.1.2"]
    assert categorize(eps, "n1", True) == ()  # Local: no fallback to other nodes


def test_local_policy_keeps_only_this_nodes_endpoints() -> None:
    eps = [EndpointInfo("10.244.1.1", 80, "n1"), EndpointInfo("10.244.2.1", 80, "n2")]
    assert [e.ip for e in categorize(eps, "n2", True)] == ["10.244.2.1"]


def test_nil_conditions_mean_ready() -> None:
    sl = eslice("a", [{"addresses": ["10.244.1.9"], "nodeName": "n1"}], [("", 80, "TCP")])
    res = build_service_ports([svc("a", "10.96.0.9", [port(80)])], [sl], NODE1)
    assert res.ports[0].endpoints[0].ready and res.ports[0].endpoints[0].serving


def test_named_target_port_uses_each_slices_number() -> None:
    s = svc("m", "10.96.0.30", [port(80, "web", "http")])
    a = eslice("m", [ep("10.244.1.1", "n1")], [("http", 8080, "TCP")], name="m-a")
    b = eslice("m", [ep("10.244.2.1", "n2")], [("http", 9090, "TCP")], name="m-b")
    res = build_service_ports([s], [a, b], NODE1)
    assert [(e.ip, e.port) for e in res.ports[0].endpoints] == [("10.244.1.1", 8080), ("10.244.2.1", 9090)]


def test_unresolved_port_name_gives_no_endpoints_for_that_port() -> None:
    s = svc("m", "10.96.0.30", [port(80, "web", "http"), port(81, 81, "metrics")])
    sl = eslice("m", [ep("10.244.1.1", "n1")], [("metrics", 81, "TCP")])  # pods lack "web"
    res = build_service_ports([s], [sl], NODE1)
    assert [len(p.endpoints) for p in res.ports] == [0, 1]


def test_bad_items_are_skipped_with_a_message_and_the_rest_is_kept() -> None:
    good = eslice("a", [ep("10.244.1.1", "n1"), ep("192.168.7.7", "n1")], [("", 80, "TCP")], name="a-1")
    huge = eslice("a", [ep("10.244.1.2", "n1")], [(f"p{i}", 1000 + i, "TCP") for i in range(1000)],
                  name="a-2")
    bad_ip = eslice("a", [{"addresses": ["not-an-ip"], "nodeName": "n1"}], [("", 80, "TCP")], name="a-3")
    res = build_service_ports([svc("a", "10.96.0.9", [port(80)])], [good, huge, bad_ip], NODE1)
    assert [e.ip for e in res.ports[0].endpoints] == ["10.244.1.1"]
    assert "EndpointSlice default/a-1: endpoint address 192.168.7.7 is outside every pod CIDR: skipped" \
        in res.problems
    assert "EndpointSlice default/a-2: 1000 ports, at most 100 allowed: slice skipped" in res.problems
    assert "EndpointSlice default/a-3: endpoint address 'not-an-ip' is not an IPv4 address: skipped" \
        in res.problems


def test_headless_external_name_and_other_proxies_are_ignored() -> None:
    svcs = [svc("h", "None", [port(80)]),
            {"metadata": {"name": "x", "namespace": "default"}, "spec": {"type": "ExternalName",
                                                                         "externalName": "a.example"}},
            {**svc("o", "10.96.0.40", [port(80)]),
             "metadata": {"name": "o", "namespace": "default",
                          "labels": {"service.kubernetes.io/service-proxy-name": "other"}}}]
    res = build_service_ports(svcs, [], NODE1)
    assert [(p.name, p.cluster_ip) for p in res.ports] == [("h", "")]


def test_service_fields_are_read() -> None:
    s = svc("lb", "10.96.0.22", [port(80, 8080, "http", node_port=30081)], type_="LoadBalancer",
            externalTrafficPolicy="Local", healthCheckNodePort=32000, lb_ips=["172.31.5.200"],
            externalIPs=["172.31.5.210"], loadBalancerSourceRanges=[" 10.1.0.0/16"],
            sessionAffinity="ClientIP")
    p = build_service_ports([s], [], NODE1).ports[0]
    assert (p.node_port, p.lb_ips, p.external_ips, p.etp_local, p.health_check_node_port) == \
        (30081, ("172.31.5.200",), ("172.31.5.210",), True, 32000)
    assert p.source_ranges == ("10.1.0.0/16",)
    assert p.affinity_timeout == 10800
    assert p.key == "default/lb:http/TCP"


def test_slices_not_made_by_the_controller_may_point_outside_pod_cidrs() -> None:
    sl = eslice("kubernetes", [ep("172.30.1.1", ""), ep("127.0.0.1", "")], [("https", 6443, "TCP")])
    del sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
    res = build_service_ports([svc("kubernetes", "10.96.0.1", [port(443, 6443, "https")])], [sl], NODE1)
    assert [e.ip for e in res.ports[0].endpoints] == ["172.30.1.1"]
    assert res.problems == ["EndpointSlice default/kubernetes-abc: endpoint address 127.0.0.1 is in the "
                            "loopback range: skipped"]


def test_host_network_pods_on_node_ips_are_accepted() -> None:
    from dataclasses import replace

    node = replace(NODE1, all_node_ips=("172.31.5.12",))
    sl = eslice("h", [ep("172.31.5.12", "n2")], [("", 80, "TCP")])
    res = build_service_ports([svc("h", "10.96.0.9", [port(80)])], [sl], node)
    assert [e.ip for e in res.ports[0].endpoints] == ["172.31.5.12"] and res.problems == []
