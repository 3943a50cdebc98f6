"""Defaulting as the API server applies it, plus property tests (idempotence, JSON round trip)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from model_builders import valid_service

from podnet.model.defaults import apply_defaults, image_tag_is_latest
from podnet.model.validation import validate

Obj = dict[str, Any]


def svc(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"ports": [{"port": 80}], **spec},
    }


def test_service_clusterip_defaults() -> None:
    out = apply_defaults(svc())
    assert out["spec"] == {
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
    }
    assert "clusterIP" not in out["spec"] and "ipFamilies" not in out["spec"]


def test_service_named_target_port_kept() -> None:
    out = apply_defaults(svc(ports=[{"port": 80, "targetPort": "http"}]))
    assert out["spec"]["ports"][0]["targetPort"] == "http"


def test_service_nodeport_and_lb_defaults() -> None:
    np = apply_defaults(svc(type="NodePort"))["spec"]
    assert np["externalTrafficPolicy"] == "Cluster" and "allocateLoadBalancerNodePorts" not in np
    lb = apply_defaults(svc(type="LoadBalancer"))["spec"]
    assert lb["externalTrafficPolicy"] == "Cluster" and lb["allocateLoadBalancerNodePorts"] is True
    ext = apply_defaults(svc(externalIPs=["192.168.1.1"]))["spec"]
    assert ext["externalTrafficPolicy"] == "Cluster"
    local = apply_defaults(svc(type="NodePort", externalTrafficPolicy="Local"))["spec"]
    assert local["externalTrafficPolicy"] == "Local"


def test_service_externalname_defaults() -> None:
    out = apply_defaults(svc(type="ExternalName", externalName="example.com", ports=[]))["spec"]
    assert "internalTrafficPolicy" not in out and "externalTrafficPolicy" not in out


def test_session_affinity_config() -> None:
    out = apply_defaults(svc(sessionAffinity="ClientIP"))["spec"]
    assert out["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    kept = apply_defaults(
        svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    )["spec"]
    assert kept["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 60
    dropped = apply_defaults(svc(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}))["spec"]
    assert "sessionAffinityConfig" not in dropped


def test_lb_status_ip_mode() -> None:
    obj = svc(type="LoadBalancer")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "192.168.50.200"}, {"hostname": "lb.example"}]}}
    ing = apply_defaults(obj)["status"]["loadBalancer"]["ingress"]
    assert ing == [{"ip": "192.168.50.200", "ipMode": "VIP"}, {"hostname": "lb.example"}]


def pod(**container: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "nginx", **container}]},
    }


def test_pod_defaults() -> None:
    out = apply_defaults(pod(ports=[{"containerPort": 80}]))
    spec = out["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["enableServiceLinks"] is True
    assert spec["securityContext"] == {}
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry.local:5000/nginx", "Always"),
        ("registry.local:5000/nginx:1.2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert apply_defaults(pod(image=image))["spec"]["containers"][0]["imagePullPolicy"] == policy
    assert image_tag_is_latest(image) is (policy == "Always")


def test_probe_defaults() -> None:
    out = apply_defaults(
        pod(readinessProbe={"httpGet": {"port": 80}}, livenessProbe={"tcpSocket": {"port": 80}})
    )
    c = out["spec"]["containers"][0]
    assert c["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["livenessProbe"]["failureThreshold"] == 3


def test_user_values_are_kept() -> None:
    obj = pod(imagePullPolicy="Never")
    obj["spec"].update(
        restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0, enableServiceLinks=False
    )
    spec = apply_defaults(obj)["spec"]
    assert (
        spec["restartPolicy"],
        spec["dnsPolicy"],
        spec["terminationGracePeriodSeconds"],
        spec["enableServiceLinks"],
    ) == ("Never", "Default", 0, False)
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


def test_deployment_defaults() -> None:
    dep = apply_defaults(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}},
        }
    )
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always" and tspec["dnsPolicy"] == "ClusterFirst"
    assert "enableServiceLinks" not in tspec  # only Pods get it (SetDefaults_Pod)
    assert tspec["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_recreate_strategy_gets_no_rolling_update() -> None:
    dep = apply_defaults(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"strategy": {"type": "Recreate"}, "template": {"spec": {}}},
        }
    )
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_namespace_defaults() -> None:
    ns = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["status"] == {"phase": "Active"}


def test_unknown_kind_untouched() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}
    assert apply_defaults(copy.deepcopy(obj)) == obj


# ------------------------------------------------------------------------------------------ properties

label_values = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
service_types = st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName", None])
ports = st.lists(
    st.fixed_dictionaries(
        {"port": st.integers(1, 65535)},
        optional={
            "protocol": st.sampled_from(["TCP", "UDP", "SCTP"]),
            "targetPort": st.one_of(st.integers(1, 65535), st.sampled_from(["http", "metrics"])),
            "name": label_values,
        },
    ),
    max_size=4,
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text(max_size=5))
unknown = st.dictionaries(st.sampled_from(["x-extra", "futureField", "zz"]), json_scalars, max_size=2)


@st.composite
def services(draw: st.DrawFn) -> Obj:
    spec: Obj = {"ports": draw(ports)}
    t = draw(service_types)
    if t:
        spec["type"] = t
    if t == "ExternalName":
        spec["externalName"] = "db.example.com"
    if draw(st.booleans()):
        spec["sessionAffinity"] = draw(st.sampled_from(["None", "ClientIP"]))
    if draw(st.booleans()):
        spec["selector"] = {"app": draw(label_values)}
    spec.update(draw(unknown))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": spec,
        **draw(unknown),
    }


@st.composite
def pods(draw: st.DrawFn) -> Obj:
    containers = []
    for i in range(draw(st.integers(1, 3))):
        c: Obj = {"name": f"c{i}", "image": draw(st.sampled_from(["nginx", "nginx:1.2", "busybox:latest"]))}
        if draw(st.booleans()):
            c["ports"] = [{"containerPort": draw(st.integers(1, 65535))}]
        if draw(st.booleans()):
            c["readinessProbe"] = {"httpGet": {"port": 80}}
        c.update(draw(unknown))
        containers.append(c)
    spec: Obj = {"containers": containers, **draw(unknown)}
    if draw(st.booleans()):
        spec["restartPolicy"] = draw(st.sampled_from(["Always", "OnFailure", "Never"]))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": spec,
    }


@settings(max_examples=60, deadline=None)
@given(st.one_of(services(), pods()))
def test_defaulting_is_idempotent(obj: Obj) -> None:
    once = apply_defaults(copy.deepcopy(obj))
    twice = apply_defaults(copy.deepcopy(once))
    assert once == twice


@settings(max_examples=60, deadline=None)
@given(st.one_of(services(), pods()))
def test_defaulting_keeps_unknown_fields_and_user_values(obj: Obj) -> None:
    out = apply_defaults(copy.deepcopy(obj))

    def contained(a: Any, b: Any) -> bool:  # every value the user set is still there, unchanged
        if isinstance(a, dict):
            return isinstance(b, dict) and all(
                k in b and contained(v, b[k]) for k, v in a.items() if k != "sessionAffinityConfig"
            )
        if isinstance(a, list):
            same_len = isinstance(b, list) and len(a) == len(b)
            return same_len and all(contained(x, y) for x, y in zip(a, b, strict=True))
        return bool(a == b)

    assert contained(obj, out)


@settings(max_examples=60, deadline=None)
@given(st.one_of(services(), pods()))
def test_valid_objects_survive_json_round_trip(obj: Obj) -> None:
    out = apply_defaults(copy.deepcopy(obj))
    if out["kind"] == "Service" and out["spec"]["type"] != "ExternalName":
        out["spec"]["clusterIP"] = "10.96.0.20"
    assume(validate(out) == [])  # only valid objects are stored; the property is about those
    text = json.dumps(out)
    back = json.loads(text)
    assert back == out
    assert validate(back) == []
    assert apply_defaults(copy.deepcopy(back)) == out


def test_defaulted_valid_service_validates() -> None:
    obj = valid_service()
    assert validate(apply_defaults(obj)) == []


def test_probe_zero_values_are_defaulted_like_go() -> None:
    out = apply_defaults(
        pod(livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 0, "failureThreshold": 5})
    )
    probe = out["spec"]["containers"][0]["livenessProbe"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (10, 5)


def test_limits_copied_to_requests_only_for_pods() -> None:
    res = {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}
    out = apply_defaults(pod(resources=copy.deepcopy(res)))
    assert out["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}
    dep = apply_defaults(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "c", "image": "x:1", "resources": copy.deepcopy(res)}]}
                }
            },
        }
    )
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"] == res


def test_invalid_service_type_gets_no_traffic_policy_default() -> None:
    spec = apply_defaults(svc(type="Foo"))["spec"]
    assert "internalTrafficPolicy" not in spec and "externalTrafficPolicy" not in spec


def test_volume_and_configmap_defaults() -> None:
    obj = pod()
    obj["spec"]["volumes"] = [
        {"name": "a"},
        {"name": "b", "configMap": {"name": "cm"}},
        {"name": "c", "hostPath": {"path": "/tmp"}},
    ]
    vols = apply_defaults(obj)["spec"]["volumes"]
    assert vols == [
        {"name": "a", "emptyDir": {}},
        {"name": "b", "configMap": {"name": "cm", "defaultMode": 420}},
        {"name": "c", "hostPath": {"path": "/tmp", "type": ""}},
    ]
    cm = apply_defaults({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})
    assert cm["data"] == {}
