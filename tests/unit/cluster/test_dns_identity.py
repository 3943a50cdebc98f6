"""The cluster DNS server's own identity (issue 19): bootstrap makes kubeadm's ServiceAccount
kube-system/coredns and ClusterRole/Binding system:coredns; a token of that ServiceAccount lists and
watches what DNS needs and nothing more (403 in kube-apiserver's words); the client reads the token from
a file and again when the node rotates it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podnet.allocators.service_hooks import ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient, ApiError
from podnet.cluster.bootstrap import bootstrap_cluster_objects, dns_deployment
from podnet.core.config import ClusterConfig
from podnet.model.kinds import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
)
from podnet.store.memory import MemoryStore

ADMIN = "admin-token"
USER = "system:serviceaccount:kube-system:coredns"


@pytest.fixture
async def server() -> AsyncIterator[tuple[APIServer, str]]:
    store = MemoryStore(history=50)
    hooks = ServiceHooks("10.96.0.0/12", (30000, 32767))
    await hooks.load(store)
    api = APIServer(store, hooks={"services": hooks}, tokens=[ADMIN])
    await api.bootstrap()
    port = await api.start("127.0.0.1", 0)
    try:
        yield api, f"http://127.0.0.1:{port}"
    finally:
        await api.stop()
        await store.close()


async def _coredns_token(admin: ApiClient) -> str:
    tr = await admin.request("POST", "/api/v1/namespaces/kube-system/serviceaccounts/coredns/token",
                             body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                   "spec": {"expirationSeconds": 3600}})
    return str(tr["status"]["token"])


async def test_the_dns_service_account_may_list_and_watch_what_dns_serves_and_nothing_else(
        server: tuple[APIServer, str], tmp_path: Path) -> None:
    _, url = server
    cfg = ClusterConfig(name="dnsid")
    async with ApiClient(url, ADMIN) as admin:
        await bootstrap_cluster_objects(admin, cfg)
        dep = await admin.get(DEPLOYMENTS, "coredns", "kube-system")
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "coredns"
        await admin.get(SERVICEACCOUNTS, "coredns", "kube-system")
        token = await _coredns_token(admin)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    dns = ApiClient(url, token_file=str(token_file))
    try:
        for rt in (SERVICES, ENDPOINTSLICES, PODS, NAMESPACES):
            assert (await dns.list(rt))["kind"] == f"{rt.kind}List"
        svcs = (await dns.list(SERVICES))["items"]
        assert "kube-dns" in {s["metadata"]["name"] for s in svcs}
        async for ev in dns.watch(SERVICES, timeout_seconds=1):  # watch is allowed too
            assert ev.type in ("ADDED", "BOOKMARK")
            break
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        with pytest.raises(ApiError) as e:
            await dns.create(PODS, pod, "default")
        assert e.value.code == 403 and e.value.status["reason"] == "Forbidden"
        assert e.value.status["message"] == (f'pods is forbidden: User "{USER}" cannot create resource '
                                             '"pods" in API group "" in the namespace "default"')
        with pytest.raises(ApiError) as e:
            await dns.get(SECRETS, "anything", "kube-system")
        assert e.value.code == 403
        assert e.value.status["message"] == (f'secrets "anything" is forbidden: User "{USER}" cannot get '
                                             'resource "secrets" in API group "" in the namespace '
                                             '"kube-system"')
        with pytest.raises(ApiError) as e:
            await dns.list(NODES)
        assert e.value.status["message"] == (f'nodes is forbidden: User "{USER}" cannot list resource '
                                             '"nodes" in API group "" at the cluster scope')
        with pytest.raises(ApiError) as e:
            await dns.get(SERVICES, "kube-dns", "kube-system")  # list and watch only, as system:coredns
        assert e.value.code == 403
        # the node rotates the token file: the client reads it again (a wrong token: 401 at once)
        token_file.write_text("not-a-token\n")
        os.utime(token_file, ns=(1, 1))
        with pytest.raises(ApiError) as e:
            await dns.list(SERVICES)
        assert e.value.code == 401
        token_file.write_text(token + "\n")
        assert (await dns.list(SERVICES))["items"]
    finally:
        await dns.close()


async def test_an_older_dns_deployment_without_a_service_account_is_moved_to_coredns(
        server: tuple[APIServer, str]) -> None:
    _, url = server
    cfg = ClusterConfig(name="dnsold")
    old = dns_deployment(cfg)
    del old["spec"]["template"]["spec"]["serviceAccountName"]
    async with ApiClient(url, ADMIN) as admin:
        await admin.create(DEPLOYMENTS, old, "kube-system")
        await bootstrap_cluster_objects(admin, cfg)
        dep = await admin.get(DEPLOYMENTS, "coredns", "kube-system")
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "coredns"
        # one a user pointed at another ServiceAccount stays as it is
        await admin.patch(DEPLOYMENTS, "coredns", {"spec": {"template": {"spec": {
            "serviceAccountName": "mine"}}}}, "kube-system")
        await bootstrap_cluster_objects(admin, cfg)
        dep = await admin.get(DEPLOYMENTS, "coredns", "kube-system")
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
