"""The in-process controllers' calls in the audit log (issue 19): when the API server keeps one, a call
through `InProcessClient` is written as kube-apiserver writes kube-controller-manager's requests (user
system:kube-controller-manager, its user agent, verb, objectRef, requestURI, the code the client got);
without an audit log nothing is written. The controllers themselves, running in-process, show up there."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from podnet.allocators import ServiceHooks
from podnet.api.audit import CONTROLLER_MANAGER_AGENT
from podnet.api.server import APIServer
from podnet.client.client import ApiError
from podnet.controllers.inprocess import InProcessClient
from podnet.controllers.runner import ControllerManager
from podnet.core.config import ClusterConfig
from podnet.model.kinds import DEPLOYMENTS, NODES, SERVICES
from podnet.store.memory import MemoryStore

KCM = "system:kube-controller-manager"


async def _server(audit: Path | None) -> tuple[APIServer, MemoryStore, InProcessClient]:
    store = MemoryStore(history=50)
    hooks = ServiceHooks("10.96.0.0/12", (30000, 32767))
    await hooks.load(store)
    server = APIServer(store, hooks={"services": hooks}, audit_log=audit)
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    return server, store, InProcessClient(server, f"http://127.0.0.1:{port}")


@pytest.fixture
async def audited(tmp_path: Path) -> AsyncIterator[tuple[InProcessClient, Path]]:
    path = tmp_path / "audit.log"
    server, store, client = await _server(path)
    try:
        yield client, path
    finally:
        await client.close()
        await server.stop()
        await store.close()


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _svc(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


async def test_in_process_calls_are_audited_as_kube_controller_managers_requests(
        audited: tuple[InProcessClient, Path]) -> None:
    client, path = audited
    before = len(_events(path))
    svc = await client.create(SERVICES, _svc("web"), "default")
    await client.get(SERVICES, "web", "default")
    with pytest.raises(ApiError):
        await client.get(SERVICES, "nope", "default")
    await client.list(SERVICES, "default", label_selector="app=web")
    svc["status"] = {"loadBalancer": {}}
    await client.update(SERVICES, svc, "status")
    await client.delete(SERVICES, "web", "default")
    rv = (await client.list(NODES))["metadata"]["resourceVersion"]
    watch = client.watch(NODES, resource_version=rv)
    waiter = asyncio.ensure_future(watch.__anext__())
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await watch.aclose()  # type: ignore[attr-defined]
    events = _events(path)[before:]
    got = [(e["verb"], e["requestURI"], e["responseStatus"]["code"], e["stage"]) for e in events]
    base = "/api/v1/namespaces/default/services"
    assert got == [
        ("create", base, 201, "ResponseComplete"),
        ("get", f"{base}/web", 200, "ResponseComplete"),
        ("get", f"{base}/nope", 404, "ResponseComplete"),
        ("list", f"{base}?labelSelector=app%3Dweb", 200, "ResponseComplete"),
        ("update", f"{base}/web/status", 200, "ResponseComplete"),
        ("delete", f"{base}/web", 200, "ResponseComplete"),
        ("list", "/api/v1/nodes", 200, "ResponseComplete"),
        ("watch", f"/api/v1/nodes?watch=1&resourceVersion={rv}&allowWatchBookmarks=true", 200,
         "ResponseStarted"),
    ]
    for e in events:
        assert (e["kind"], e["apiVersion"], e["level"]) == ("Event", "audit.k8s.io/v1", "Metadata")
        assert e["user"] == {"username": KCM, "groups": ["system:authenticated"]}
        assert e["userAgent"] == CONTROLLER_MANAGER_AGENT and "sourceIPs" not in e
        assert e["auditID"] and e["requestReceivedTimestamp"] <= e["stageTimestamp"]
    assert events[4]["objectRef"] == {"resource": "services", "namespace": "default", "name": "web",
                                      "apiVersion": "v1", "subresource": "status"}
    assert events[6]["objectRef"] == {"resource": "nodes", "apiVersion": "v1"}


async def test_no_audit_log_no_records(tmp_path: Path) -> None:
    server, store, client = await _server(None)
    try:
        assert server.audit is None
        await client.create(SERVICES, _svc("web"), "default")
        await client.delete(SERVICES, "web", "default")
    finally:
        await client.close()
        await server.stop()
        await store.close()
    assert list(tmp_path.iterdir()) == []


async def test_the_controllers_writes_are_in_the_audit_log_as_their_service_accounts(
        audited: tuple[InProcessClient, Path]) -> None:
    """The controllers, run in-process as `podnet controlplane` runs them, are in the audit log as
    kube-controller-manager's controllers are with --use-service-account-credentials (kubeadm's setting):
    the EndpointSlice controller's create as endpointslice-controller, the Deployment's ReplicaSet as
    deployment-controller, its pods as replicaset-controller; the shared informers' lists and watches
    as system:kube-controller-manager."""
    client, path = audited
    mgr = ControllerManager(client, ClusterConfig(name="audit"), node_check_seconds=0.2)
    await mgr.start()
    try:
        await client.create(SERVICES, _svc("web"), "default")
        await client.create(DEPLOYMENTS, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}, "default")

        def creators() -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for e in _events(path):
                if e["verb"] == "create" and e["responseStatus"]["code"] == 201:
                    out.setdefault(e["objectRef"]["resource"], set()).add(e["user"]["username"])
            return out

        want = {"endpointslices", "endpoints", "replicasets", "pods"}
        for _ in range(200):
            if want <= creators().keys():
                break
            await asyncio.sleep(0.05)
        sa = "system:serviceaccount:kube-system:"
        got = creators()
        assert got["endpointslices"] == {sa + "endpointslice-controller"}
        assert got["endpoints"] == {sa + "endpoint-controller"}
        assert got["replicasets"] == {sa + "deployment-controller"}
        assert got["pods"] == {sa + "replicaset-controller"}
        created = next(e for e in _events(path) if e["objectRef"]["resource"] == "replicasets"
                       and e["verb"] == "create")
        assert created["user"]["groups"] == ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                             "system:authenticated"]
        assert created["userAgent"] == f"{CONTROLLER_MANAGER_AGENT}/{sa}deployment-controller"
        assert created["requestURI"] == "/apis/apps/v1/namespaces/default/replicasets"
        informers = [e for e in _events(path) if e["verb"] in ("list", "watch")
                     and e["objectRef"]["resource"] == "deployments"]
        assert informers and {e["user"]["username"] for e in informers} == {KCM}
    finally:
        await mgr.stop()
