"""DELETE: returned objects, graceful pods, finalizers, preconditions, propagation, namespaces."""

from __future__ import annotations

import asyncio
from typing import Any

from api_support import DEPLOY_PATH, POD_PATH, SVC_PATH, Api, deployment, pod, service

RS_PATH = "/apis/apps/v1/namespaces/default/replicasets"


async def test_delete_service_returns_the_object_and_removes_it(api: Api) -> None:
    _, svc = await api.call("POST", SVC_PATH, service("web"))
    code, gone = await api.call("DELETE", SVC_PATH + "/web")
    assert code == 200 and gone["metadata"]["uid"] == svc["metadata"]["uid"] and gone["kind"] == "Service"
    code, st = await api.call("GET", SVC_PATH + "/web")
    assert code == 404
    code, st = await api.call("DELETE", SVC_PATH + "/web")
    assert code == 404 and st["message"] == 'services "web" not found'


async def test_bound_pod_is_deleted_gracefully_and_agent_finishes_with_grace_zero(api: Api) -> None:
    await api.call("POST", POD_PATH, pod("p", node="node-1"))
    code, p = await api.call("DELETE", POD_PATH + "/p")
    assert code == 200
    assert p["metadata"]["deletionGracePeriodSeconds"] == 30 and p["metadata"]["deletionTimestamp"]
    code, still = await api.call("GET", POD_PATH + "/p")
    assert code == 200 and still["metadata"]["deletionTimestamp"] == p["metadata"]["deletionTimestamp"]
    code, p2 = await api.call("DELETE", POD_PATH + "/p", {"gracePeriodSeconds": 5})
    assert p2["metadata"]["deletionGracePeriodSeconds"] == 5
    code, _ = await api.call("DELETE", POD_PATH + "/p", params={"gracePeriodSeconds": "0"})
    assert code == 200
    code, _ = await api.call("GET", POD_PATH + "/p")
    assert code == 404


async def test_unbound_pod_goes_at_once(api: Api) -> None:
    await api.call("POST", POD_PATH, pod("p"))
    code, _ = await api.call("DELETE", POD_PATH + "/p")
    assert code == 200
    code, _ = await api.call("GET", POD_PATH + "/p")
    assert code == 404


async def test_finalizers_keep_the_object_until_removed(api: Api) -> None:
    body = service("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await api.call("POST", SVC_PATH, body)
    code, svc = await api.call("DELETE", SVC_PATH + "/fin")
    assert code == 200 and svc["metadata"]["deletionTimestamp"]
    code, svc = await api.call("GET", SVC_PATH + "/fin")
    assert code == 200
    code, _ = await api.call("PATCH", SVC_PATH + "/fin", {"metadata": {"finalizers": None}},
                             ctype="application/merge-patch+json")
    assert code == 200
    code, _ = await api.call("GET", SVC_PATH + "/fin")
    assert code == 404


async def test_uid_precondition_mismatch_is_409(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    code, st = await api.call("DELETE", SVC_PATH + "/web", {"preconditions": {"uid": "other"}})
    assert code == 409
    assert st["message"].startswith('Operation cannot be fulfilled on services "web": Precondition failed: '
                                    "UID in precondition: other, UID in object meta: ")


async def test_bad_propagation_policy_is_rejected(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    code, st = await api.call("DELETE", SVC_PATH + "/web", {"propagationPolicy": "Sideways"})
    assert code == 422 and 'Unsupported value: "Sideways"' in st["message"]


async def _owned(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    _, d = await api.call("POST", DEPLOY_PATH, deployment("web"))
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
           "controller": True, "blockOwnerDeletion": True}
    rs_body = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-1", "ownerReferences": [ref]},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}
    _, rs = await api.call("POST", RS_PATH, rs_body)
    pref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": rs["metadata"]["uid"],
            "controller": True}
    body = pod("web-1-abcde", labels={"app": "web"})
    body["metadata"]["ownerReferences"] = [pref]
    _, p = await api.call("POST", POD_PATH, body)
    return d, rs, p


async def _wait_gone(api: Api, path: str, timeout: float = 5.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        code, _ = await api.call("GET", path)
        if code == 404:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_background_deletion_collects_replicasets_and_pods(api: Api) -> None:
    await _owned(api)
    code, _ = await api.call("DELETE", DEPLOY_PATH + "/web")
    assert code == 200
    assert await _wait_gone(api, RS_PATH + "/web-1")
    assert await _wait_gone(api, POD_PATH + "/web-1-abcde")


async def test_orphan_deletion_leaves_dependents_without_the_owner_reference(api: Api) -> None:
    await _owned(api)
    code, _ = await api.call("DELETE", DEPLOY_PATH + "/web", {"propagationPolicy": "Orphan"})
    assert code == 200
    code, _ = await api.call("GET", DEPLOY_PATH + "/web")
    assert code == 404
    await api.server.gc.idle()
    await asyncio.sleep(0.1)
    code, rs = await api.call("GET", RS_PATH + "/web-1")
    assert code == 200 and "ownerReferences" not in rs["metadata"]
    code, p = await api.call("GET", POD_PATH + "/web-1-abcde")
    assert code == 200 and p["metadata"]["ownerReferences"][0]["name"] == "web-1"


async def test_foreground_deletion_waits_for_dependents(api: Api) -> None:
    await _owned(api)
    code, d = await api.call("DELETE", DEPLOY_PATH + "/web", {"propagationPolicy": "Foreground"})
    assert code == 202
    assert "foregroundDeletion" in d["metadata"]["finalizers"] and d["metadata"]["deletionTimestamp"]
    assert await _wait_gone(api, POD_PATH + "/web-1-abcde")
    assert await _wait_gone(api, RS_PATH + "/web-1")
    assert await _wait_gone(api, DEPLOY_PATH + "/web")


async def test_namespace_deletion_terminates_empties_and_removes(api: Api) -> None:
    await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
    await api.call("POST", "/api/v1/namespaces/team/services", service("s"))
    await api.call("POST", "/api/v1/namespaces/team/pods", pod("bound", node="n1"))
    code, ns = await api.call("DELETE", "/api/v1/namespaces/team")
    assert code == 200 and ns["status"]["phase"] == "Terminating"
    code, st = await api.call("POST", "/api/v1/namespaces/team/services", service("late"))
    assert code == 403
    assert st["message"] == ('services "late" is forbidden: unable to create new content in namespace team '
                             "because it is being terminated")
    assert await _wait_gone(api, "/api/v1/namespaces/team/services/s")
    # the bound pod waits for its node agent, and the namespace waits for the pod
    code, p = await api.call("GET", "/api/v1/namespaces/team/pods/bound")
    assert code == 200 and p["metadata"]["deletionTimestamp"]
    code, _ = await api.call("GET", "/api/v1/namespaces/team")
    assert code == 200
    await api.call("DELETE", "/api/v1/namespaces/team/pods/bound", {"gracePeriodSeconds": 0})
    assert await _wait_gone(api, "/api/v1/namespaces/team")


async def test_deletecollection_with_selector(api: Api) -> None:
    for name in ("a", "b"):
        await api.call("POST", SVC_PATH, service(name))
    code, lst = await api.call("DELETE", SVC_PATH, params={"labelSelector": "app=a"})
    assert code == 200 and [s["metadata"]["name"] for s in lst["items"]] == ["a"]
    _, lst = await api.call("GET", SVC_PATH)
    assert [s["metadata"]["name"] for s in lst["items"]] == ["b"]


async def test_binding_assigns_a_node_once(api: Api) -> None:
    await api.call("POST", POD_PATH, pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-2"}}
    code, st = await api.call("POST", POD_PATH + "/p/binding", binding)
    assert code == 201 and st["status"] == "Success"
    _, p = await api.call("GET", POD_PATH + "/p")
    assert p["spec"]["nodeName"] == "node-2"
    assert [c["type"] for c in p["status"]["conditions"]] == ["PodScheduled"]
    code, st = await api.call("POST", POD_PATH + "/p/binding", binding)
    assert code == 409
    assert st["message"] == ('Operation cannot be fulfilled on pods/binding "p": pod p is already assigned '
                             'to node "node-2"')


async def test_sweep_collects_a_dependent_whose_owner_never_existed(api: Api) -> None:
    body = pod("stray", labels={"app": "stray"})
    body["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
                                            "uid": "00000000-0000-0000-0000-000000000000"}]
    code, _ = await api.call("POST", POD_PATH, body)
    assert code == 201
    await asyncio.sleep(0.05)  # the owner index follows the store's watch
    await api.server.gc.sweep()
    assert await _wait_gone(api, POD_PATH + "/stray")


async def test_system_namespaces_may_not_be_deleted(api: Api) -> None:
    code, st = await api.call("DELETE", "/api/v1/namespaces/kube-system")
    assert code == 403 and st["reason"] == "Forbidden"
    assert st["message"] == 'namespaces "kube-system" is forbidden: this namespace may not be deleted'


async def test_deletecollection_across_all_namespaces_is_not_allowed(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("keep"))
    code, st = await api.call("DELETE", "/api/v1/services")
    assert code == 405 and st["reason"] == "MethodNotAllowed"
    code, _ = await api.call("GET", SVC_PATH + "/keep")
    assert code == 200


async def test_binding_with_a_stale_uid_is_refused(api: Api) -> None:
    await api.call("POST", POD_PATH, pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "uid": "old-uid"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    code, st = await api.call("POST", POD_PATH + "/p/binding", binding)
    assert code == 409 and "Precondition failed: UID in precondition: old-uid" in st["message"]
    _, p = await api.call("GET", POD_PATH + "/p")
    assert "nodeName" not in p["spec"]
