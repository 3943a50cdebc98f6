"""The workload, identity, policy and extension kinds through the API: discovery, CRUD, Secrets'
stringData, status on create, Job selectors, and kubectl's table columns."""

from __future__ import annotations

import base64
from typing import Any

from api_support import Api

TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}


def columns(table: dict[str, Any]) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]


async def test_discovery_lists_every_kind_with_short_names(api: Api) -> None:
    _, groups = await api.call("GET", "/apis")
    names = [g["name"] for g in groups["groups"]]
    for g in (
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "policy",
        "autoscaling",
        "apiregistration.k8s.io",
        "apiextensions.k8s.io",
    ):
        assert g in names
    _, core = await api.call("GET", "/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["serviceaccounts"]["shortNames"] == ["sa"]
    assert by_name["serviceaccounts/token"]["kind"] == "TokenRequest"
    assert by_name["replicationcontrollers"]["shortNames"] == ["rc"]
    assert "secrets" in by_name
    _, apps = await api.call("GET", "/apis/apps/v1")
    assert {r["name"]: r.get("shortNames") for r in apps["resources"]}["daemonsets"] == ["ds"]
    _, ext = await api.call("GET", "/apis/apiextensions.k8s.io/v1")
    crd = next(r for r in ext["resources"] if r["name"] == "customresourcedefinitions")
    assert crd["shortNames"] == ["crd", "crds"] and not crd["namespaced"]
    _, hpa = await api.call("GET", "/apis/autoscaling/v2")
    assert hpa["resources"][0]["shortNames"] == ["hpa"]


async def test_secret_string_data_merged_never_stored(api: Api) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"user": base64.b64encode(b"old").decode()},
        "stringData": {"user": "admin", "pw": "s3cr3t"},
    }
    code, created = await api.call("POST", "/api/v1/namespaces/default/secrets", body)
    assert code == 201
    assert "stringData" not in created
    assert created["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in created["data"].items()} == {
        "user": "admin",
        "pw": "s3cr3t",
    }
    code, table = await api.call("GET", "/api/v1/namespaces/default/secrets", headers=TABLE)
    assert columns(table) == ["Name", "Type", "Data", "Age"]
    assert table["rows"][0]["cells"][:3] == ["db", "Opaque", 2]


async def test_bad_base64_is_400_without_the_value(api: Api) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"pw": "hunter2!"}}
    code, status = await api.call("POST", "/api/v1/namespaces/default/secrets", body)
    assert code == 400
    assert status["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 7'
    )
    assert "hunter2" not in str(status)


async def test_immutable_secret_refuses_changes(api: Api) -> None:
    path = "/api/v1/namespaces/default/secrets"
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "im"},
        "immutable": True,
        "stringData": {"a": "1"},
    }
    assert (await api.call("POST", path, body))[0] == 201
    code, status = await api.call(
        "PATCH", f"{path}/im", {"stringData": {"a": "2"}}, ctype="application/merge-patch+json"
    )
    assert code == 422
    assert status["message"] == (
        'Secret "im" is invalid: data: Forbidden: field is immutable when `immutable` is set'
    )


async def test_job_gets_selector_and_status(api: Api) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}
        },
    }
    code, created = await api.call("POST", "/apis/batch/v1/namespaces/default/jobs", job)
    assert code == 201
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert created["spec"]["template"]["metadata"]["labels"]["job-name"] == "pi"
    assert created["status"] == {}
    _, table = await api.call("GET", "/apis/batch/v1/namespaces/default/jobs", headers=TABLE)
    assert columns(table) == ["Name", "Status", "Completions", "Duration", "Age"]
    assert table["rows"][0]["cells"][:4] == ["pi", "Running", "0/1", ""]
    job["metadata"]["name"] = "bad"
    del job["spec"]["template"]["spec"]["restartPolicy"]
    code, status = await api.call("POST", "/apis/batch/v1/namespaces/default/jobs", job)
    assert code == 422
    assert status["message"] == (
        'Job.batch "bad" is invalid: spec.template.spec.restartPolicy: Unsupported '
        'value: "Always": supported values: "OnFailure", "Never"'
    )


async def test_daemonset_status_and_columns(api: Api) -> None:
    labels = {"app": "agent"}
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "a", "image": "busybox"}]},
            },
        },
        "status": {"numberReady": 7},
    }
    code, created = await api.call("POST", "/apis/apps/v1/namespaces/default/daemonsets", ds)
    assert code == 201
    assert created["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }
    assert created["metadata"]["generation"] == 1
    _, table = await api.call("GET", "/apis/apps/v1/namespaces/default/daemonsets", headers=TABLE)
    assert columns(table) == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
    ]
    assert table["rows"][0]["cells"][:7] == ["agent", 0, 0, 0, 0, 0, "<none>"]


async def test_rbac_objects_and_binding_columns(api: Api) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    }
    base = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    assert (await api.call("POST", f"{base}/roles", role))[0] == 201
    rb = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
    }
    # RBAC objects may be created by PUT, as in Kubernetes
    code, _ = await api.call("PUT", f"{base}/rolebindings/rb", rb)
    assert code == 201
    _, table = await api.call("GET", f"{base}/rolebindings", headers=TABLE)
    assert columns(table) == ["Name", "Role", "Age"]
    assert table["rows"][0]["cells"][1] == "Role/reader"
    assert table["rows"][0]["cells"][5] == "default/bot"


async def test_crd_is_established_on_create(api: Api) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "kind": "CronTab"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    code, created = await api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert code == 201
    conds = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conds == {"NamesAccepted": "True", "Established": "True"}
    assert created["status"]["acceptedNames"]["listKind"] == "CronTabList"


CRONTAB_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["cronSpec"],
                                "properties": {
                                    "cronSpec": {
                                        "type": "string",
                                        "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$",
                                    },
                                    "image": {"type": "string"},
                                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


async def test_custom_resources_served_validated_pruned_and_removed(api: Api) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert (await api.call("POST", crds, CRONTAB_CRD))[0] == 201
    _, groups = await api.call("GET", "/apis")
    assert "stable.example.com" in [g["name"] for g in groups["groups"]]
    _, res = await api.call("GET", "/apis/stable.example.com/v1")
    assert [(r["name"], r.get("shortNames")) for r in res["resources"]] == [
        ("crontabs", ["ct"]),
        ("crontabs/status", None),
    ]
    path = "/apis/stable.example.com/v1/namespaces/default/crontabs"
    ct = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "tick"},
        "spec": {"cronSpec": "* * * * */5", "image": "busybox", "replicas": 2, "extra": "dropped"},
    }
    code, created = await api.call("POST", path, ct)
    assert code == 201, created
    assert "extra" not in created["spec"]
    _, table = await api.call("GET", path, headers=TABLE)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Spec", "Replicas"]
    assert table["rows"][0]["cells"] == ["tick", "* * * * */5", 2]
    bad = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "bad"},
        "spec": {"cronSpec": "often", "replicas": "two"},
    }
    code, status = await api.call("POST", path, bad)
    assert code == 422
    assert status["message"] == (
        'CronTab.stable.example.com "bad" is invalid: [spec.cronSpec: Invalid value: "often": '
        "spec.cronSpec in body should match '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$', "
        'spec.replicas: Invalid value: "two": spec.replicas in body must be of type integer: "string"]'
    )
    code, _ = await api.call("DELETE", f"{crds}/crontabs.stable.example.com")
    assert code == 200
    code, _ = await api.call("GET", path)
    assert code == 404
    assert await api.store.list("stable.example.com/crontabs") == ([], await api.store.current_rv())
