"""Service environment variables: exactly the kubelet's map."""

from __future__ import annotations

from dns_fixtures import service

from podnet.dns.envvars import pod_service_env_vars, service_env_vars

KUBERNETES = service("kubernetes", "default", cluster_ip="10.96.0.1",
                     ports=[{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
KUBERNETES_VARS = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}
MY_SVC = service("my-svc", "shop", cluster_ip="10.96.0.50",
                 ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                        {"name": "metrics", "port": 9090, "protocol": "TCP"}])
MY_SVC_VARS = {
    "MY_SVC_SERVICE_HOST": "10.96.0.50",
    "MY_SVC_SERVICE_PORT": "80",
    "MY_SVC_SERVICE_PORT_HTTP": "80",
    "MY_SVC_SERVICE_PORT_METRICS": "9090",
    "MY_SVC_PORT": "tcp://10.96.0.50:80",
    "MY_SVC_PORT_80_TCP": "tcp://10.96.0.50:80",
    "MY_SVC_PORT_80_TCP_PROTO": "tcp",
    "MY_SVC_PORT_80_TCP_PORT": "80",
    "MY_SVC_PORT_80_TCP_ADDR": "10.96.0.50",
    "MY_SVC_PORT_9090_TCP": "tcp://10.96.0.50:9090",
    "MY_SVC_PORT_9090_TCP_PROTO": "tcp",
    "MY_SVC_PORT_9090_TCP_PORT": "9090",
    "MY_SVC_PORT_9090_TCP_ADDR": "10.96.0.50",
}


def test_namespace_services_plus_kubernetes() -> None:
    other_ns = service("elsewhere", "other", cluster_ip="10.96.0.70")
    assert service_env_vars([KUBERNETES, MY_SVC, other_ns], "shop") == {**KUBERNETES_VARS, **MY_SVC_VARS}


def test_enable_service_links_false_leaves_only_kubernetes() -> None:
    assert service_env_vars([KUBERNETES, MY_SVC], "shop", enable_service_links=False) == KUBERNETES_VARS


def test_headless_and_external_name_are_skipped() -> None:
    headless = service("db", "shop", cluster_ip="None")
    ext = service("ext", "shop", type_="ExternalName", external_name="example.com")
    assert service_env_vars([headless, ext], "shop") == {}


def test_unnamed_port_udp_and_dash_names() -> None:
    svc = service("dns-cache-2", "shop", cluster_ip="10.96.0.11",
                  ports=[{"port": 53, "protocol": "UDP"}])
    assert service_env_vars([svc], "shop") == {
        "DNS_CACHE_2_SERVICE_HOST": "10.96.0.11",
        "DNS_CACHE_2_SERVICE_PORT": "53",
        "DNS_CACHE_2_PORT": "udp://10.96.0.11:53",
        "DNS_CACHE_2_PORT_53_UDP": "udp://10.96.0.11:53",
        "DNS_CACHE_2_PORT_53_UDP_PROTO": "udp",
        "DNS_CACHE_2_PORT_53_UDP_PORT": "53",
        "DNS_CACHE_2_PORT_53_UDP_ADDR": "10.96.0.11",
    }


def test_missing_protocol_defaults_to_tcp_and_dashed_port_names() -> None:
    svc = service("web", "shop", cluster_ip="10.96.0.12", ports=[{"name": "http-alt", "port": 8080}])
    env = service_env_vars([svc], "shop")
    assert env["WEB_SERVICE_PORT_HTTP_ALT"] == "8080"
    assert env["WEB_PORT_8080_TCP_PROTO"] == "tcp"


def test_kubernetes_service_in_pod_namespace_wins_when_links_on() -> None:
    local = service("kubernetes", "shop", cluster_ip="10.96.0.99",
                    ports=[{"name": "https", "port": 443, "protocol": "TCP"}])
    for order in ([KUBERNETES, local], [local, KUBERNETES]):
        assert service_env_vars(order, "shop")["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"
        assert service_env_vars(order, "shop", enable_service_links=False)["KUBERNETES_SERVICE_HOST"] == (
            "10.96.0.1")


def test_default_namespace_pod() -> None:
    web = service("web", "default", cluster_ip="10.96.0.13", ports=[{"port": 80, "protocol": "TCP"}])
    env = service_env_vars([KUBERNETES, web], "default")
    assert env["WEB_SERVICE_HOST"] == "10.96.0.13"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


def test_pod_wrapper_reads_enable_service_links() -> None:
    p = {"metadata": {"name": "p", "namespace": "shop"}, "spec": {"enableServiceLinks": False}}
    assert pod_service_env_vars(p, [KUBERNETES, MY_SVC]) == KUBERNETES_VARS
    p["spec"] = {}
    assert pod_service_env_vars(p, [KUBERNETES, MY_SVC]) == {**KUBERNETES_VARS, **MY_SVC_VARS}
