"""Objects every cluster starts with, created through the API like any client would:
the `kubernetes` Service, and cluster DNS (`kube-dns` Service at the DNS IP + `coredns` Deployment).
"""

from __future__ import annotations

from podnet.client.client import ApiClient, ApiError
from podnet.core.config import ClusterConfig
from podnet.model.kinds import DEPLOYMENTS, ENDPOINTS, ENDPOINTSLICES, SERVICES, Obj, ResourceType

DNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.1"


def kubernetes_service(cfg: ClusterConfig) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": cfg.kubernetes_service_ip, "type": "ClusterIP",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": cfg.api_port}]},
    }


def kubernetes_endpoints(cfg: ClusterConfig, host_ip: str) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": host_ip}],
                     "ports": [{"name": "https", "port": cfg.api_port, "protocol": "TCP"}]}],
    }


def kubernetes_endpoint_slice(cfg: ClusterConfig, host_ip: str) -> Obj:
    """The slice kube-apiserver keeps for itself: what service proxies read to reach the API."""
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host_ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": cfg.api_port, "protocol": "TCP"}],
    }


def dns_service(cfg: ClusterConfig) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"clusterIP": cfg.dns_ip, "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
    }


def dns_deployment(cfg: ClusterConfig) -> Obj:
    labels = {"k8s-app": "kube-dns"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dict(labels)},
        "spec": {
            "replicas": cfg.dns_replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "dnsPolicy": "Default",
                    "containers": [{
                        "name": "coredns",
                        "image": DNS_IMAGE,
                        # Pods have no route off this machine, so names outside the cluster domain
                        # get a fast SERVFAIL instead of a forward that could never be answered.
                        "args": ["--cluster-domain", cfg.cluster_domain, "--upstream",
                                 cfg.dns_upstream],
                        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                  {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                           "periodSeconds": 2, "timeoutSeconds": 1},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080},
                                          "initialDelaySeconds": 5, "periodSeconds": 10,
                                          "failureThreshold": 5},
                    }],
                },
            },
        },
    }


async def _ensure(client: ApiClient, rt: ResourceType, obj: Obj) -> None:
    meta = obj["metadata"]
    try:  # a restarted control plane finds them; creating again would fail in the allocators (422)
        await client.get(rt, meta["name"], meta.get("namespace"))
        return
    except ApiError as e:
        if e.code != 404:
            raise
    try:
        await client.create(rt, obj)
    except ApiError as e:
        if e.code != 409:
            raise


async def bootstrap_cluster_objects(client: ApiClient, cfg: ClusterConfig, host_ip: str = "") -> None:
    """Create what is missing; never overwrite what a user changed."""
    await _ensure(client, SERVICES, kubernetes_service(cfg))
    if host_ip:
        await _ensure(client, ENDPOINTS, kubernetes_endpoints(cfg, host_ip))
        await _ensure(client, ENDPOINTSLICES, kubernetes_endpoint_slice(cfg, host_ip))
    await _ensure(client, SERVICES, dns_service(cfg))
    if cfg.dns:
        await _ensure(client, DEPLOYMENTS, dns_deployment(cfg))
