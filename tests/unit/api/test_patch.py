"""PATCH: merge, JSON, strategic merge (with kubectl's directives) and server-side apply."""

from __future__ import annotations

import json

from api_support import DEPLOY_PATH, POD_PATH, SVC_PATH, Api, deployment, pod, service

from podnet.api.smp import PatchError, apply_strategic_merge
from podnet.model import kinds

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


async def test_merge_patch_sets_and_removes_keys(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    code, svc = await api.call("PATCH", SVC_PATH + "/web",
                               {"metadata": {"labels": {"app": None, "tier": "fe"}}}, ctype=MERGE)
    assert code == 200 and svc["metadata"]["labels"] == {"tier": "fe"}


async def test_json_patch_and_a_failing_test_op(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    ops = [{"op": "replace", "path": "/spec/ports/0/port", "value": 8080},
           {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]
    code, svc = await api.call("PATCH", SVC_PATH + "/web", ops, ctype=JSONP)
    assert code == 200 and svc["spec"]["ports"][0]["port"] == 8080
    assert svc["metadata"]["annotations"] == {"a": "b"}
    test_op = [{"op": "test", "path": "/spec/type", "value": "X"}]
    code, st = await api.call("PATCH", SVC_PATH + "/web", test_op, ctype=JSONP)
    assert code == 422 and st["reason"] == "Invalid"


async def test_strategic_merge_patch_merges_service_ports_by_port(api: Api) -> None:
    body = service("web")
    body["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080},
                             {"name": "https", "port": 443, "targetPort": 8443}]
    await api.call("POST", SVC_PATH, body)
    patch = {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                      "ports": [{"port": 80, "targetPort": 9090}]}}
    code, svc = await api.call("PATCH", SVC_PATH + "/web", patch, ctype=SMP)
    assert code == 200
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(443, 8443), (80, 9090)]
    patch = {"spec": {"ports": [{"port": 443, "$patch": "delete"}]}}
    _, svc = await api.call("PATCH", SVC_PATH + "/web", patch, ctype=SMP)
    assert [p["port"] for p in svc["spec"]["ports"]] == [80]


async def test_strategic_merge_patch_merges_containers_env_by_name(api: Api) -> None:
    body = deployment("d")
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}, {"name": "b", "image": "y"}]
    await api.call("POST", DEPLOY_PATH, body)
    env_b = [{"name": "B", "value": "2"}]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "env": env_b}]}}}}
    code, d = await api.call("PATCH", DEPLOY_PATH + "/d", patch, ctype=SMP)
    assert code == 200
    containers = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b"]
    assert containers[0]["image"] == "x" and [e["name"] for e in containers[0]["env"]] == ["A", "B"]


async def test_pod_spec_stays_immutable_through_patch(api: Api) -> None:
    await api.call("POST", POD_PATH, pod("p"))
    code, st = await api.call("PATCH", POD_PATH + "/p", {"spec": {"restartPolicy": "Never"}}, ctype=SMP)
    assert code == 422
    assert st["message"].startswith('Pod "p" is invalid: spec: Forbidden: pod updates may not')


async def test_patch_missing_merge_key_is_400(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    code, st = await api.call("PATCH", SVC_PATH + "/web", {"spec": {"ports": [{"name": "x"}]}}, ctype=SMP)
    assert code == 400 and st["message"] == "map: map[name:x] does not contain declared merge key: port"


async def test_unknown_patch_type_is_415(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    code, st = await api.call("PATCH", SVC_PATH + "/web", {"a": 1}, ctype="text/plain")
    assert code == 415 and st["reason"] == "UnsupportedMediaType"
    assert st["message"].startswith("the body of the request was in an unknown format - accepted media types")


async def test_patch_of_missing_object_is_404_and_bad_body_is_400(api: Api) -> None:
    code, st = await api.call("PATCH", SVC_PATH + "/nope", {"a": 1}, ctype=MERGE)
    assert code == 404 and st["message"] == 'services "nope" not found'
    await api.call("POST", SVC_PATH, service("web"))
    code, st = await api.call("PATCH", SVC_PATH + "/web", b"{not json", ctype=MERGE)
    assert code == 400 and st["message"].startswith("error decoding patch: json parse error")


async def test_patch_with_stale_resource_version_conflicts(api: Api) -> None:
    _, svc = await api.call("POST", SVC_PATH, service("web"))
    await api.call("PATCH", SVC_PATH + "/web", {"metadata": {"labels": {"a": "1"}}}, ctype=MERGE)
    code, st = await api.call("PATCH", SVC_PATH + "/web",
                              {"metadata": {"resourceVersion": svc["metadata"]["resourceVersion"],
                                            "labels": {"a": "2"}}}, ctype=MERGE)
    assert code == 409 and st["reason"] == "Conflict"


async def test_server_side_apply_creates_then_merges_and_records_manager(api: Api) -> None:
    manifest = json.dumps(service("ssa"))
    code, svc = await api.call("PATCH", SVC_PATH + "/ssa", manifest, ctype=APPLY,
                               params={"fieldManager": "kubectl", "force": "false"})
    assert code == 201
    mf = svc["metadata"]["managedFields"]
    assert [(f["manager"], f["operation"]) for f in mf] == [("kubectl", "Apply")]
    assert "f:spec" in mf[0]["fieldsV1"]
    yaml_manifest = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\n  labels:\n    tier: fe\n"
                     "spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n")
    code, svc = await api.call("PATCH", SVC_PATH + "/ssa", yaml_manifest, ctype=APPLY,
                               params={"fieldManager": "kubectl"})
    assert code == 200
    # fields the manager applied before and left out now are gone, as with real server-side apply
    assert svc["metadata"]["labels"] == {"tier": "fe"}
    assert svc["spec"]["ports"][0]["targetPort"] == 8080 and "selector" not in svc["spec"]
    assert len(svc["metadata"]["managedFields"]) == 1


async def test_server_side_apply_drops_keys_the_manager_no_longer_applies(api: Api) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "cfg", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}}
    path = "/api/v1/namespaces/default/configmaps/cfg"
    code, _ = await api.call("PATCH", path, json.dumps(cm), ctype=APPLY, params={"fieldManager": "me"})
    assert code == 201
    await api.call("PATCH", path, {"data": {"z": "by-someone-else"}}, ctype=MERGE)
    cm["metadata"]["labels"] = {"a": "1"}
    cm["data"] = {"x": "1"}
    code, out = await api.call("PATCH", path, json.dumps(cm), ctype=APPLY, params={"fieldManager": "me"})
    assert code == 200
    assert out["metadata"]["labels"] == {"a": "1"}
    assert out["data"] == {"x": "1", "z": "by-someone-else"}


async def test_apply_without_kind_is_400(api: Api) -> None:
    code, st = await api.call("PATCH", SVC_PATH + "/x", "metadata:\n  name: x\n", ctype=APPLY,
                              params={"fieldManager": "me"})
    assert code == 400 and "apiVersion and kind must be set" in st["message"]


async def test_apply_without_field_manager_is_422_as_in_kubernetes(api: Api) -> None:
    # apimachinery pkg/apis/meta/v1/validation ValidatePatchOptions; patch.go wraps it in
    # errors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "", errs)
    code, st = await api.call("PATCH", SVC_PATH + "/x", json.dumps(service("x")), ctype=APPLY)
    assert code == 422
    assert st["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: ' \
                            "is required for apply patch"
    assert st["reason"] == "Invalid"
    assert st["details"] == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}
    code, _ = await api.call("GET", SVC_PATH + "/x")
    assert code == 404  # nothing was created
    code, st = await api.call("PATCH", SVC_PATH + "/x", json.dumps(service("x")), ctype=APPLY,
                              params={"fieldManager": "m" * 129})
    assert code == 422 and st["message"].endswith("fieldManager: Too long: must have at most 128 bytes")


async def test_apply_with_metadata_not_an_object_is_400(api: Api) -> None:
    await api.call("POST", SVC_PATH, service("web"))
    for name in ("web", "absent"):
        body = "apiVersion: v1\nkind: Service\nmetadata: 7\n"
        code, st = await api.call("PATCH", f"{SVC_PATH}/{name}", body,
                                  ctype=APPLY, params={"fieldManager": "me"})
        assert code == 400 and st["reason"] == "BadRequest", st
        assert "metadata of an applied configuration must be an object" in st["message"]


async def test_scale_get_put_patch(api: Api) -> None:
    await api.call("POST", DEPLOY_PATH, deployment("web", replicas=2))
    code, sc = await api.call("GET", DEPLOY_PATH + "/web/scale")
    first = dict(sc)
    assert code == 200
    assert sc["kind"] == "Scale" and sc["apiVersion"] == "autoscaling/v1"
    assert sc["spec"] == {"replicas": 2} and sc["status"] == {"replicas": 0, "selector": "app=web"}
    code, sc = await api.call("PATCH", DEPLOY_PATH + "/web/scale", {"spec": {"replicas": 3}}, ctype=MERGE)
    assert code == 200 and sc["spec"]["replicas"] == 3
    sc["spec"]["replicas"] = 5
    code, sc = await api.call("PUT", DEPLOY_PATH + "/web/scale", sc)
    assert code == 200 and sc["spec"]["replicas"] == 5
    _, d = await api.call("GET", DEPLOY_PATH + "/web")
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 3
    code, st = await api.call("PATCH", DEPLOY_PATH + "/web/scale", {"spec": {"replicas": -1}}, ctype=MERGE)
    assert code == 422
    assert st["message"] == ('Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: '
                             "must be greater than or equal to 0")
    code, st = await api.call("PUT", DEPLOY_PATH + "/web/scale", first)  # stale resourceVersion
    assert code == 409


# ---- the strategic merge patch engine on its own ------------------------------------------------

def test_smp_directives_replace_retain_keys_and_primitive_lists() -> None:
    orig = {"metadata": {"finalizers": ["a", "b"]},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                     "template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}}}
    patch = {"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
             "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
                      "template": {"spec": {"volumes": [{"$patch": "replace"},
                                                        {"name": "w", "hostPath": {"path": "/x"}}]}}}}
    out = apply_strategic_merge(kinds.DEPLOYMENTS, orig, patch)
    assert out["metadata"]["finalizers"] == ["b", "c"]
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "w", "hostPath": {"path": "/x"}}]
    assert orig["metadata"]["finalizers"] == ["a", "b"]  # input untouched


def test_smp_map_replace_and_delete_and_atomic_lists() -> None:
    orig = {"spec": {"selector": {"a": "1", "b": "2"}, "externalIPs": ["1.1.1.1"], "x": {"y": 1}}}
    patch = {"spec": {"selector": {"$patch": "replace", "c": "3"}, "externalIPs": ["2.2.2.2"],
                      "x": {"$patch": "delete"}}}
    out = apply_strategic_merge(kinds.SERVICES, orig, patch)
    assert out == {"spec": {"selector": {"c": "3"}, "externalIPs": ["2.2.2.2"]}}


def test_smp_owner_references_merge_by_uid_and_conditions_by_type() -> None:
    orig = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    out = apply_strategic_merge(kinds.PODS, orig, patch)
    assert [r["uid"] for r in out["metadata"]["ownerReferences"]] == ["1", "2"]
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}]


def test_smp_rejects_non_object_bodies() -> None:
    try:
        apply_strategic_merge(kinds.PODS, {}, [1])
    except PatchError as e:
        assert "JSON object" in str(e)
    else:
        raise AssertionError("a list body must be refused")
