"""Objects every cluster starts with, created through the API like any client would:
the `kubernetes` Service with its Endpoints and EndpointSlice, and cluster DNS (`kube-dns` Service at
the DNS IP + `coredns` Deployment), which runs as kubeadm's: ServiceAccount `kube-system/coredns`,
bound (ClusterRoleBinding `system:coredns`) to the ClusterRole `system:coredns` that lets it list
and watch what it serves and nothing else. The DNS server authenticates with the ServiceAccount token
the node mounts into its pod.

The `kubernetes` Service is kept as kube-apiserver keeps it (its endpoint reconciler and
`CreateOrUpdateMasterServiceIfNeeded`): at every start of the control plane, and every 10 s after,
its port and its one endpoint are set to the API's advertise address and port
(`ClusterConfig.api_advertise`), so a changed `--listen` address or a moved API port is followed and
deleted endpoints come back; everything else is created only when missing, never overwritten.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from podnet.client.client import ApiClient, ApiError
from podnet.core.config import ClusterConfig
from podnet.model.kinds import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    SERVICEACCOUNTS,
    SERVICES,
    Obj,
    ResourceType,
)

log = logging.getLogger(__name__)

DNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.1"
DNS_SERVICE_ACCOUNT = "coredns"
DNS_CLUSTER_ROLE = "system:coredns"


def kubernetes_service(cfg: ClusterConfig) -> Obj:
    _, port = cfg.api_advertise
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": cfg.kubernetes_service_ip, "type": "ClusterIP",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    }


def kubernetes_endpoints(cfg: ClusterConfig) -> Obj:
    """The API's advertise address, as kube-apiserver's endpoint reconciler writes it."""
    ip, port = cfg.api_advertise
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    }


def kubernetes_endpoint_slice(cfg: ClusterConfig) -> Obj:
    """The slice kube-apiserver keeps for itself: what service proxies read to reach the API."""
    ip, port = cfg.api_advertise
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
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


def dns_service_account() -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": DNS_SERVICE_ACCOUNT, "namespace": "kube-system"}}


def dns_cluster_role() -> Obj:
    """kubeadm's `system:coredns`: list and watch what the DNS server answers from, nothing else."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": DNS_CLUSTER_ROLE},
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                       "verbs": ["list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["list", "watch"]}]}


def dns_cluster_role_binding() -> Obj:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": DNS_CLUSTER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": DNS_CLUSTER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": DNS_SERVICE_ACCOUNT, "namespace": "kube-system"}]}


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
                    "serviceAccountName": DNS_SERVICE_ACCOUNT,
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
    await _create(client, rt, obj)


async def _create(client: ApiClient, rt: ResourceType, obj: Obj) -> None:
    """Create `obj`; one made meanwhile by another start (409) is as good."""
    try:
        await client.create(rt, obj)
    except ApiError as e:
        if e.code != 409:
            raise


async def _reconcile(client: ApiClient, rt: ResourceType, want: Obj, fields: tuple[str, ...]) -> None:
    """Create `want`, or set `fields` of the stored object to `want`'s when they differ (the
    `kubernetes` Service and its endpoints belong to the API server, as in kube-apiserver)."""
    meta = want["metadata"]
    try:
        have = await client.get(rt, meta["name"], meta.get("namespace"))
    except ApiError as e:
        if e.code != 404:
            raise
        await _create(client, rt, want)
        return
    if any(have.get(f) != want[f] for f in fields):
        have.update({f: want[f] for f in fields})
        await client.update(rt, have)


def _service_ports_match(have: Obj, want: Obj) -> bool:
    """kube-apiserver's check of the `kubernetes` Service: one port of the right name, number, protocol and
    target port (nodePort and the rest are the user's)."""
    keys = ("name", "port", "protocol", "targetPort")
    hp, wp = (have.get("spec") or {}).get("ports") or [], want["spec"]["ports"]
    return len(hp) == len(wp) and all({k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}
                                      for a, b in zip(hp, wp, strict=True))


async def reconcile_kubernetes_service(client: ApiClient, cfg: ClusterConfig) -> None:
    """The `kubernetes` Service, its Endpoints and its EndpointSlice point at the API's advertise address."""
    want = kubernetes_service(cfg)
    try:
        have = await client.get(SERVICES, "kubernetes", "default")
    except ApiError as e:
        if e.code != 404:
            raise
        await _ensure(client, SERVICES, want)
    else:
        if not _service_ports_match(have, want):
            have["spec"]["ports"] = want["spec"]["ports"]
            await client.update(SERVICES, have)
    if cfg.api_advertise[0]:
        await _reconcile(client, ENDPOINTS, kubernetes_endpoints(cfg), ("subsets",))
        await _reconcile(client, ENDPOINTSLICES, kubernetes_endpoint_slice(cfg),
                         ("addressType", "endpoints", "ports"))


async def keep_kubernetes_service(client: ApiClient, cfg: ClusterConfig, period: float = 10.0) -> None:
    """Re-check the `kubernetes` Service and its endpoints every `period` seconds (kube-apiserver's
    endpoint reconciler runs every 10 s): a deleted or edited Endpoints/EndpointSlice comes back."""
    while True:
        await asyncio.sleep(period)
        try:
            await reconcile_kubernetes_service(client, cfg)
        except (ApiError, OSError, aiohttp.ClientError) as e:
            log.warning("the kubernetes Service's endpoints: %s", e)


async def bootstrap_cluster_objects(client: ApiClient, cfg: ClusterConfig) -> None:
    """Create what is missing; never overwrite what a user changed (but the `kubernetes` Service's port
    and endpoints, which follow the API's advertise address)."""
    await reconcile_kubernetes_service(client, cfg)
    await _ensure(client, SERVICES, dns_service(cfg))
    if cfg.dns:
        await _ensure(client, SERVICEACCOUNTS, dns_service_account())
        await _ensure(client, CLUSTERROLES, dns_cluster_role())
        await _ensure(client, CLUSTERROLEBINDINGS, dns_cluster_role_binding())
        await _ensure(client, DEPLOYMENTS, dns_deployment(cfg))
        await _dns_runs_as_its_service_account(client)


async def _dns_runs_as_its_service_account(client: ApiClient) -> None:
    """A `coredns` Deployment made before it had a ServiceAccount of its own (its DNS server then read
    the node's credential from its environment, which pods no longer get) runs as `coredns` from now on;
    one that names a ServiceAccount is left as it is."""
    try:
        dep = await client.get(DEPLOYMENTS, "coredns", "kube-system")
    except ApiError as e:
        if e.code == 404:
            return
        raise
    spec = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        return
    patch = {"spec": {"template": {"spec": {"serviceAccountName": DNS_SERVICE_ACCOUNT}}}}
    await client.patch(DEPLOYMENTS, "coredns", patch, "kube-system")
