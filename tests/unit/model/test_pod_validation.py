"""Pod validation: containers, ports, env, probes, policies, DNS config, and update rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from model_builders import assert_field_errors, deep, valid_pod

from podnet.model.errors import ErrorType
from podnet.model.validation import validate

Obj = dict[str, Any]
INV, REQ, DUP, NS, FORB, NF = (
    ErrorType.INVALID,
    ErrorType.REQUIRED,
    ErrorType.DUPLICATE,
    ErrorType.NOT_SUPPORTED,
    ErrorType.FORBIDDEN,
    ErrorType.NOT_FOUND,
)


def c0(**kw: Any) -> Callable[[Obj], None]:
    def tweak(p: Obj) -> None:
        for k, v in kw.items():
            if v is None:
                p["spec"]["containers"][0].pop(k, None)
            else:
                p["spec"]["containers"][0][k] = v

    return tweak


def pspec(**kw: Any) -> Callable[[Obj], None]:
    def tweak(p: Obj) -> None:
        for k, v in kw.items():
            if v is None:
                p["spec"].pop(k, None)
            else:
                p["spec"][k] = v

    return tweak


def second_container(name: str = "side") -> Callable[[Obj], None]:
    def tweak(p: Obj) -> None:
        p["spec"]["containers"].append(deep(p["spec"]["containers"][0]) | {"name": name, "ports": []})

    return tweak


PROBE = {
    "httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}

CASES: list[tuple[str, Callable[[Obj], None], list[tuple[str, ErrorType]], list[str] | None]] = [
    ("valid", lambda p: None, [], None),
    ("name with uppercase", lambda p: p["metadata"].update(name="Web"), [("metadata.name", INV)], None),
    ("name may have dots", lambda p: p["metadata"].update(name="web.v1"), [], None),
    ("no containers", pspec(containers=[]), [("spec.containers", REQ)], ["spec.containers: Required value"]),
    ("container without name", c0(name=None), [("spec.containers[0].name", REQ)], None),
    ("container name not a DNS label", c0(name="Web_1"), [("spec.containers[0].name", INV)], None),
    (
        "duplicate container names",
        second_container("web"),
        [("spec.containers[1].name", DUP)],
        ['spec.containers[1].name: Duplicate value: "web"'],
    ),
    (
        "missing image",
        c0(image=None),
        [("spec.containers[0].image", REQ)],
        ["spec.containers[0].image: Required value"],
    ),
    (
        "image with trailing space",
        c0(image="nginx "),
        [("spec.containers[0].image", INV)],
        ['spec.containers[0].image: Invalid value: "nginx ": must not have leading or trailing whitespace'],
    ),
    (
        "containerPort 0",
        c0(ports=[{"containerPort": 0, "protocol": "TCP"}]),
        [("spec.containers[0].ports[0].containerPort", REQ)],
        None,
    ),
    (
        "containerPort too big",
        c0(ports=[{"containerPort": 70000, "protocol": "TCP"}]),
        [("spec.containers[0].ports[0].containerPort", INV)],
        [
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
            "65535, inclusive"
        ],
    ),
    (
        "duplicate port names",
        c0(
            ports=[
                {"name": "http", "containerPort": 80, "protocol": "TCP"},
                {"name": "http", "containerPort": 81, "protocol": "TCP"},
            ]
        ),
        [("spec.containers[0].ports[1].name", DUP)],
        None,
    ),
    (
        "port name too long",
        c0(ports=[{"name": "abcdefghijklmnop", "containerPort": 80, "protocol": "TCP"}]),
        [("spec.containers[0].ports[0].name", INV)],
        None,
    ),
    (
        "bad port protocol",
        c0(ports=[{"containerPort": 80, "protocol": "HTTP"}]),
        [("spec.containers[0].ports[0].protocol", NS)],
        None,
    ),
    (
        "env without name",
        c0(env=[{"value": "x"}]),
        [("spec.containers[0].env[0].name", REQ), ("spec.containers[0].env[0].name", INV)],
        None,
    ),
    (
        "env name with '='",
        c0(env=[{"name": "A=B", "value": "x"}]),
        [("spec.containers[0].env[0].name", INV)],
        [
            'spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name '
            'must consist '
            "only of printable ASCII characters other than '='"
        ],
    ),
    (
        "env valueFrom empty",
        c0(env=[{"name": "A", "valueFrom": {}}]),
        [("spec.containers[0].env[0].valueFrom", INV)],
        None,
    ),
    ("valid probe", c0(readinessProbe=PROBE), [], None),
    (
        "probe without handler",
        c0(readinessProbe={"periodSeconds": 10}),
        [("spec.containers[0].readinessProbe", REQ)],
        ["spec.containers[0].readinessProbe: Required value: must specify a handler type"],
    ),
    (
        "probe with two handlers",
        c0(readinessProbe=PROBE | {"tcpSocket": {"port": 80}}),
        [("spec.containers[0].readinessProbe.tcpSocket", FORB)],
        None,
    ),
    (
        "liveness successThreshold 2",
        c0(livenessProbe=PROBE | {"successThreshold": 2}),
        [("spec.containers[0].livenessProbe.successThreshold", INV)],
        ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
    ),
    (
        "negative periodSeconds",
        c0(readinessProbe=PROBE | {"periodSeconds": -1}),
        [("spec.containers[0].readinessProbe.periodSeconds", INV)],
        None,
    ),
    (
        "exec probe without command",
        c0(livenessProbe=PROBE | {"httpGet": None, "exec": {}}),
        [("spec.containers[0].livenessProbe.exec.command", REQ)],
        None,
    ),
    (
        "bad restartPolicy",
        pspec(restartPolicy="Sometimes"),
        [("spec.restartPolicy", NS)],
        [
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
            '"OnFailure", "Never"'
        ],
    ),
    (
        "bad dnsPolicy",
        pspec(dnsPolicy="Google"),
        [("spec.dnsPolicy", NS)],
        [
            'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
            '"ClusterFirst", "Default", "None"'
        ],
    ),
    (
        "dnsPolicy None without dnsConfig",
        pspec(dnsPolicy="None"),
        [("spec.dnsConfig", REQ)],
        ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"],
    ),
    (
        "dnsPolicy None without nameservers",
        pspec(dnsPolicy="None", dnsConfig={"searches": ["a.b"]}),
        [("spec.dnsConfig.nameservers", REQ)],
        None,
    ),
    (
        "dnsConfig with a bad nameserver",
        pspec(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1"]}),
        [("spec.dnsConfig.nameservers[0]", INV)],
        None,
    ),
    ("valid dnsPolicy None", pspec(dnsPolicy="None", dnsConfig={"nameservers": ["10.96.0.10"]}), [], None),
    ("bad nodeName", pspec(nodeName="Node_1"), [("spec.nodeName", INV)], None),
    (
        "activeDeadlineSeconds 0",
        pspec(activeDeadlineSeconds=0),
        [("spec.activeDeadlineSeconds", INV)],
        ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"],
    ),
    (
        "volume mount of unknown volume",
        c0(volumeMounts=[{"name": "data", "mountPath": "/data"}]),
        [("spec.containers[0].volumeMounts[0].name", NF)],
        ['spec.containers[0].volumeMounts[0].name: Not found: "data"'],
    ),
    (
        "bad imagePullPolicy",
        c0(imagePullPolicy="Sometimes"),
        [("spec.containers[0].imagePullPolicy", NS)],
        [
            'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
            '"IfNotPresent", "Never"'
        ],
    ),
    (
        "requests above limits",
        c0(resources={"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}),
        [("spec.containers[0].resources.requests", INV)],
        [
            'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to '
            'cpu limit of 1'
        ],
    ),
    (
        "bad quantity",
        c0(resources={"limits": {"memory": "lots"}}),
        [("spec.containers[0].resources.limits[memory]", INV)],
        None,
    ),
    (
        "bad toleration",
        pspec(tolerations=[{"operator": "Equal", "value": "x"}]),
        [("spec.tolerations[0].operator", INV)],
        None,
    ),
    (
        "ephemeral containers on create",
        pspec(ephemeralContainers=[{"name": "dbg", "image": "busybox"}]),
        [("spec.ephemeralContainers", FORB)],
        None,
    ),
]


@pytest.mark.parametrize(("name", "tweak", "expected", "messages"), CASES, ids=[c[0] for c in CASES])
def test_validate_pod_create(
    name: str, tweak: Callable[[Obj], None], expected: list[tuple[str, ErrorType]], messages: list[str] | None
) -> None:
    pod = valid_pod()
    tweak(pod)
    errs = validate(pod)
    assert_field_errors(errs, expected, messages)


def test_valid_volume_mount() -> None:
    pod = valid_pod()
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    assert validate(pod) == []


def test_update_image_and_labels_allowed() -> None:
    old = valid_pod()
    new = deep(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.28"
    new["metadata"]["labels"]["version"] = "2"
    assert validate(new, old) == []


def test_update_other_spec_field_forbidden() -> None:
    old = valid_pod()
    new = deep(old)
    new["spec"]["restartPolicy"] = "Never"
    (err,) = validate(new, old)
    assert err.field == "spec" and err.type is ErrorType.FORBIDDEN
    assert err.error().startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
        "previously negative)\n"
    )
    assert 'spec.restartPolicy: "Always" -> "Never"' in err.error()


def test_update_adding_container_forbidden() -> None:
    old = valid_pod()
    new = deep(old)
    second_container()(new)
    errs = validate(new, old)
    assert [e.error() for e in errs] == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    ]


def test_update_active_deadline_may_only_shrink() -> None:
    old = valid_pod()
    old["spec"]["activeDeadlineSeconds"] = 100
    new = deep(old)
    new["spec"]["activeDeadlineSeconds"] = 50
    assert validate(new, old) == []
    new["spec"]["activeDeadlineSeconds"] = 200
    errs = validate(new, old)
    assert [e.error() for e in errs] == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
    ]


def test_update_tolerations_only_added() -> None:
    old = valid_pod()
    old["spec"]["tolerations"] = [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}]
    new = deep(old)
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert validate(new, old) == []
    new["spec"]["tolerations"] = [{"key": "b", "operator": "Exists"}]
    errs = validate(new, old)
    assert [(e.field, e.type) for e in errs] == [("spec.tolerations", FORB)]


def test_update_rename_is_immutable() -> None:
    old = valid_pod()
    new = deep(old)
    new["metadata"]["name"] = "other"
    errs = validate(new, old)
    assert errs[0].error() == 'metadata.name: Invalid value: "other": field is immutable'
