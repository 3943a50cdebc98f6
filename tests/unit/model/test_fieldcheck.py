"""Unknown fields as Kubernetes' strict decoding finds them (podnet.model.fieldcheck)."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest
import yaml

from podnet.model.defaults import apply_defaults
from podnet.model.fieldcheck import (
    drop_unknown_fields,
    field_position,
    split_path,
    strict_decoding_error,
    unknown_fields,
)
from podnet.model.manifests import load_manifests

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"
GOOD_EXAMPLES = sorted(p for p in EXAMPLES.rglob("*.yaml") if "broken" not in p.parts)


def _svc(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec},
    }


def _container(**extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox", **extra}


def _deploy(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
        },
    }


def test_examples_are_found() -> None:
    assert len(GOOD_EXAMPLES) >= 3


@pytest.mark.parametrize("path", GOOD_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_manifest_has_no_unknown_field(path: pathlib.Path) -> None:
    objs = load_manifests(path)
    assert objs
    for obj in objs:
        assert unknown_fields(obj) == [], obj["metadata"]["name"]
        defaulted = copy.deepcopy(obj)
        apply_defaults(defaulted)
        assert unknown_fields(defaulted) == [], "defaulting must not add fields Kubernetes lacks"


def test_the_misplaced_selector_example() -> None:
    text = (EXAMPLES / "broken" / "misplaced-selector.yaml").read_text()
    obj = yaml.safe_load(text)
    assert unknown_fields(obj) == ["spec.ports[0].selector"]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_svc(porst=[{"port": 1}]), ["spec.porst"]),
        ({**_svc(), "selector": {"app": "web"}}, ["selector"]),
        (
            _svc(ports=[{"port": 80}, {"port": 81, "Selector": {"a": "b"}, "nodeport": 30001}]),
            ["spec.ports[1].Selector", "spec.ports[1].nodeport"],
        ),
        ({**_svc(), "metadata": {"name": "web", "label": {"a": "b"}}}, ["metadata.label"]),
        (_deploy(_container(imagePullPolice="Always")), ["spec.template.spec.containers[0].imagePullPolice"]),
        (_deploy(_container(port=80)), ["spec.template.spec.containers[0].port"]),
        (
            _deploy(_container(readinessProbe={"httpGet": {"paht": "/", "port": 80}})),
            ["spec.template.spec.containers[0].readinessProbe.httpGet.paht"],
        ),
        (
            _deploy(_container(env=[{"name": "A", "valeu": "1"}])),
            ["spec.template.spec.containers[0].env[0].valeu"],
        ),
        (
            _deploy(_container(ports=[{"containerPort": 80, "targetPort": 80}])),
            ["spec.template.spec.containers[0].ports[0].targetPort"],
        ),
    ],
)
def test_misplaced_and_misspelt_fields_are_reported(obj: dict[str, Any], expected: list[str]) -> None:
    assert unknown_fields(obj) == expected


def test_replicaset_and_pod_paths() -> None:
    rs = _deploy(_container(imagePullPolicy="Always"))
    rs["kind"] = "ReplicaSet"
    rs["spec"]["strategy"] = {"type": "Recreate"}  # a Deployment field, not a ReplicaSet one
    rs["spec"]["template"]["spec"]["replicas"] = 2
    assert unknown_fields(rs) == ["spec.template.spec.replicas", "spec.strategy"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [_container()],
            "initContainers": [_container(livenessProbe={"exec": {"comand": ["true"]}})],
        },
    }
    assert unknown_fields(pod) == ["spec.initContainers[0].livenessProbe.exec.comand"]


def test_a_pod_using_many_legitimate_fields_has_none_reported() -> None:
    probe = {
        "httpGet": {
            "path": "/",
            "port": "http",
            "scheme": "HTTP",
            "httpHeaders": [{"name": "X", "value": "1"}],
        },
        "initialDelaySeconds": 1,
        "periodSeconds": 2,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
        "terminationGracePeriodSeconds": 5,
    }
    container = _container(
        command=["sh", "-c"],
        args=["sleep 1"],
        workingDir="/",
        imagePullPolicy="IfNotPresent",
        ports=[
            {"name": "http", "containerPort": 80, "protocol": "TCP", "hostPort": 8080, "hostIP": "0.0.0.0"}
        ],
        env=[
            {"name": "A", "value": "1"},
            {"name": "B", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": True}}},
            {"name": "D", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
        ],
        envFrom=[{"prefix": "P_", "configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s"}}],
        resources={
            "limits": {"cpu": "1", "memory": "64Mi", "example.com/gpu": "1"},
            "requests": {"cpu": "100m"},
        },
        readinessProbe=probe,
        livenessProbe={"tcpSocket": {"port": 80}},
        startupProbe={"exec": {"command": ["true"]}},
        lifecycle={"preStop": {"exec": {"command": ["true"]}}, "postStart": {"httpGet": {"port": 80}}},
        volumeMounts=[{"name": "data", "mountPath": "/data", "readOnly": True, "subPath": "x"}],
        securityContext={
            "runAsUser": 1000,
            "runAsNonRoot": True,
            "capabilities": {"add": ["NET_ADMIN"]},
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        },
        terminationMessagePath="/dev/termination-log",
        terminationMessagePolicy="File",
        stdin=False,
        stdinOnce=False,
        tty=False,
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "default",
            "labels": {"any/key": "v"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "rs",
                    "uid": "u",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": ["x"],
            "generateName": "p-",
            "uid": "u",
            "resourceVersion": "1",
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Apply",
                    "apiVersion": "v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:anything": {}}},
                    "time": "2024-01-01T00:00:00Z",
                }
            ],
        },
        "spec": {
            "containers": [container],
            "initContainers": [_container(restartPolicy="Always")],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "automountServiceAccountToken": False,
            "nodeName": "n1",
            "hostNetwork": False,
            "shareProcessNamespace": False,
            "hostname": "h",
            "subdomain": "s",
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": True,
            "securityContext": {"fsGroup": 2000, "sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}]},
            "imagePullSecrets": [{"name": "reg"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}
                        ]
                    }
                },
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 1,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"a": "b"}},
                            },
                        }
                    ]
                },
            },
            "tolerations": [
                {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 1}
            ],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"a": "b"}},
                }
            ],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}],
            "dnsConfig": {
                "nameservers": ["1.1.1.1"],
                "searches": ["x"],
                "options": [{"name": "ndots", "value": "2"}],
            },
            "readinessGates": [{"conditionType": "x"}],
            "volumes": [
                {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "cm", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p"}]}},
                {"name": "h", "hostPath": {"path": "/tmp", "type": "Directory"}},
                {"name": "pr", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}],
            "hostIP": "1.2.3.4",
            "qosClass": "Burstable",
            "startTime": "2024-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": None}],
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": True,
                    "restartCount": 0,
                    "image": "busybox",
                    "imageID": "",
                    "containerID": "podnet://1",
                    "started": True,
                    "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }
            ],
        },
    }
    assert unknown_fields(pod) == []


def test_service_endpoints_slices_configmap_namespace_with_all_common_fields() -> None:
    svc = _svc(
        type="LoadBalancer",
        clusterIP="10.96.0.9",
        clusterIPs=["10.96.0.9"],
        externalIPs=["1.2.3.4"],
        sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10}},
        loadBalancerIP="",
        loadBalancerSourceRanges=[],
        loadBalancerClass="podnet.io/lb",
        externalTrafficPolicy="Local",
        healthCheckNodePort=30000,
        publishNotReadyAddresses=True,
        ipFamilies=["IPv4"],
        ipFamilyPolicy="SingleStack",
        allocateLoadBalancerNodePorts=True,
        internalTrafficPolicy="Cluster",
        trafficDistribution="PreferClose",
        ports=[
            {
                "name": "http",
                "protocol": "TCP",
                "appProtocol": "http",
                "port": 80,
                "targetPort": "http",
                "nodePort": 30080,
            }
        ],
    )
    svc["status"] = {
        "loadBalancer": {
            "ingress": [{"ip": "192.168.1.1", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]}]
        },
        "conditions": [
            {
                "type": "x",
                "status": "True",
                "reason": "r",
                "message": "m",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ],
    }
    eps = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web"},
        "subsets": [
            {
                "addresses": [
                    {
                        "ip": "10.244.0.5",
                        "nodeName": "n1",
                        "hostname": "h",
                        "targetRef": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u"},
                    }
                ],
                "notReadyAddresses": [],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"}],
            }
        ],
    }
    slc = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abc"},
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": ["10.244.0.5"],
                "nodeName": "n1",
                "zone": "z",
                "hostname": "h",
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "targetRef": {"kind": "Pod", "name": "p"},
                "hints": {"forZones": [{"name": "z"}]},
            }
        ],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"}],
    }
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"any key": "v"},
        "binaryData": {"b": "AA=="},
        "immutable": False,
    }
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "n"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active", "conditions": [{"type": "x", "status": "True"}]},
    }
    for obj in (svc, eps, slc, cm, ns):
        assert unknown_fields(obj) == [], obj["kind"]
    slc["endpoints"][0]["ready"] = True  # belongs under conditions
    cm["spec"] = {"data": {}}
    ns["spec"]["phase"] = "Active"
    assert unknown_fields(slc) == ["endpoints[0].ready"]
    assert unknown_fields(cm) == ["spec"]
    assert unknown_fields(ns) == ["spec.phase"]


def test_maps_of_free_keys_are_not_descended() -> None:
    svc = _svc()
    svc["metadata"]["labels"] = {"ports": "x", "selector": "y"}
    svc["metadata"]["annotations"] = {"anything": "{}"}
    svc["spec"]["selector"] = {"spec": "x"}
    assert unknown_fields(svc) == []


def test_kinds_without_a_table_and_odd_shapes_report_nothing() -> None:
    assert unknown_fields({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "bogus": 1}) == []
    assert unknown_fields({"kind": "Service", "spec": "not a map"}) == []
    assert unknown_fields({"kind": "Service", "spec": {"ports": ["not a map", None]}}) == []
    # the kind may come from the caller (a POST body without kind)
    assert unknown_fields({"spec": {"bogus": 1}}, "Service") == ["spec.bogus"]


def test_drop_unknown_fields_removes_only_them() -> None:
    obj = yaml.safe_load((EXAMPLES / "broken" / "misplaced-selector.yaml").read_text())
    assert drop_unknown_fields(obj) == ["spec.ports[0].selector"]
    assert obj["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "nodePort": 30080}]
    assert obj["spec"]["type"] == "NodePort"
    assert drop_unknown_fields(obj) == []


def test_strict_decoding_error_text() -> None:
    assert strict_decoding_error(["spec.foo"]) == 'strict decoding error: unknown field "spec.foo"'
    assert (
        strict_decoding_error(["a", "b.c"]) == 'strict decoding error: unknown field "a", unknown field "b.c"'
    )


def test_field_position_finds_the_key_in_its_document() -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - port: 80\n"
        "---\n"
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: b\n"
        "  spec:\n    ports:\n    - port: 80\n    - port: 81\n      selector: {}\n"
    )
    b = {"kind": "Service", "metadata": {"name": "b"}}
    assert split_path("spec.ports[1].selector") == ["spec", "ports", 1, "selector"]
    assert field_position(text, b, "spec.ports[1].selector") == (20, 7)
    assert field_position(text, {"kind": "Service", "metadata": {"name": "a"}}, "spec.ports") == (6, 3)
    assert field_position(text, b, "spec.ports[5].selector") is None
    assert field_position(text, {"kind": "Service", "metadata": {"name": "zzz"}}, "spec") is None
    assert field_position("a: [", b, "spec") is None
