"""The runner's bind path: pods/binding first, PUT of spec.nodeName when the server lacks it."""

from __future__ import annotations

from typing import Any

from podnet.client.client import ApiError
from podnet.controllers.actions import Action
from podnet.controllers.runner import ControllerManager
from podnet.controllers.scheduler import binding
from podnet.core.config import ClusterConfig
from podnet.model.kinds import PODS, Obj, ResourceType


class FakeClient:
    """Answers like an API server without the pods/binding subresource."""

    def __init__(self, pod: Obj, has_binding: bool):
        self.pod = pod
        self.has_binding = has_binding
        self.calls: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        self.calls.append((method, path))
        if not self.has_binding:
            raise ApiError(404, {"kind": "Status", "code": 404, "reason": "NotFound",
                                 "message": "the server could not find the requested resource"})
        self.pod["spec"]["nodeName"] = kw["body"]["target"]["name"]
        return {"kind": "Status", "status": "Success", "code": 201}

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        self.calls.append(("GET", name))
        return dict(self.pod)

    async def update(self, rt: ResourceType, obj: Obj, subresource: str | None = None) -> Obj:
        self.calls.append(("PUT", obj["metadata"]["name"]))
        self.pod = obj
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": "9"}}

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        self.calls.append(("POST-event", obj.get("reason", "")))
        return obj


def pending_pod() -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": "3"},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


async def test_binding_subresource_used_when_present() -> None:
    client = FakeClient(pending_pod(), has_binding=True)
    mgr = ControllerManager(client, ClusterConfig(name="t"))  # type: ignore[arg-type]
    await mgr.execute([Action("bind", PODS, binding(client.pod, "node-2"))])
    assert client.calls == [("POST", "/api/v1/namespaces/default/pods/p/binding")]
    assert client.pod["spec"]["nodeName"] == "node-2"


async def test_falls_back_to_put_of_node_name_without_binding() -> None:
    client = FakeClient(pending_pod(), has_binding=False)
    mgr = ControllerManager(client, ClusterConfig(name="t"))  # type: ignore[arg-type]
    await mgr.execute([Action("bind", PODS, binding(client.pod, "node-2"))])
    assert client.calls == [("POST", "/api/v1/namespaces/default/pods/p/binding"), ("GET", "p"),
                            ("GET", "p"), ("PUT", "p")]
    assert client.pod["spec"]["nodeName"] == "node-2"
    # learned: the next bind goes straight to the PUT
    client.pod = pending_pod()
    client.calls.clear()
    await mgr.execute([Action("bind", PODS, binding(client.pod, "node-1"))])
    assert client.calls == [("GET", "p"), ("PUT", "p")]
