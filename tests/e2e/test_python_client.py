"""The official `kubernetes` Python client against podnet's API server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kube_support import ApiServerProc

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def core(apiserver: ApiServerProc) -> Iterator[Any]:
    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def _svc(name: str, port: int = 80) -> Any:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels={"suite": "pyclient"}),
        spec=client.V1ServiceSpec(selector={"app": name},
                                  ports=[client.V1ServicePort(name="http", port=port, target_port=8080)]))


def _pod(name: str) -> Any:
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels={"suite": "pyclient"}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="busybox",
                                                                             command=["sleep", "3600"])]))


def test_version(apiserver: ApiServerProc) -> None:
    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    try:
        info = client.VersionApi(api_client).get_code()
        assert info.git_version == "v1.32.0"
    finally:
        api_client.close()


def test_service_create_list_patch_delete(core: Any) -> None:
    created = core.create_namespaced_service("default", _svc("py-svc"))
    assert created.metadata.uid and created.spec.ports[0].port == 80
    listed = core.list_namespaced_service("default", label_selector="suite=pyclient")
    names = [s.metadata.name for s in listed.items]
    assert "py-svc" in names
    all_ns = core.list_service_for_all_namespaces(field_selector="metadata.name=py-svc")
    assert [s.metadata.namespace for s in all_ns.items] == ["default"]
    patch = {"metadata": {"labels": {"tier": "fe"}}, "spec": {"ports": [{"port": 81, "name": "alt"}]}}
    patched = core.patch_namespaced_service("py-svc", "default", patch)
    assert patched.metadata.labels == {"suite": "pyclient", "tier": "fe"}
    assert sorted(p.port for p in patched.spec.ports) == [80, 81]
    gone = core.delete_namespaced_service("py-svc", "default")
    assert gone.metadata.name == "py-svc"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_service("py-svc", "default")
    assert e.value.status == 404


def test_invalid_service_raises_422(core: Any) -> None:
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("default", _svc("py-bad", port=70000))
    assert e.value.status == 422
    assert "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive" in e.value.body


def test_pod_create_watch_patch_delete(core: Any) -> None:
    events: list[tuple[str, str, dict[str, str]]] = []
    done = threading.Event()

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_pod, "default", label_selector="suite=pyclient",
                           timeout_seconds=10):
            obj = ev["object"]
            events.append((ev["type"], obj.metadata.name, dict(obj.metadata.labels or {})))
            if ev["type"] == "DELETED":
                w.stop()
                break
        done.set()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    time.sleep(0.5)
    pod = core.create_namespaced_pod("default", _pod("py-pod"))
    assert pod.status.phase == "Pending"
    core.patch_namespaced_pod("py-pod", "default", {"metadata": {"labels": {"seen": "yes"}}})
    core.delete_namespaced_pod("py-pod", "default")
    assert done.wait(15), events
    t.join(5)
    assert [e[0] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1][2]["seen"] == "yes"
    pods = core.list_namespaced_pod("default", label_selector="suite=pyclient")
    assert pods.items == []


def test_namespaces_and_missing_namespace(core: Any) -> None:
    names = [n.metadata.name for n in core.list_namespace().items]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("no-such-ns", _svc("x"))
    assert e.value.status == 404 and 'namespaces \\"no-such-ns\\" not found' in e.value.body
