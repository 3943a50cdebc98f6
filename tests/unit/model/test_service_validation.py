"""Service validation, case by case after TestValidateServiceCreate / TestValidateServiceUpdate
(kubernetes pkg/apis/core/validation/validation_test.go). Each invalid case checks the exact
field path and error type; many also check the exact message kubectl would print."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from model_builders import assert_field_errors, deep, valid_service

from podnet.model.errors import ErrorType, aggregate
from podnet.model.validation import validate

Obj = dict[str, Any]
Tweak = Callable[[Obj], None]

INV, REQ, DUP, NS, FORB, NF = (
    ErrorType.INVALID,
    ErrorType.REQUIRED,
    ErrorType.DUPLICATE,
    ErrorType.NOT_SUPPORTED,
    ErrorType.FORBIDDEN,
    ErrorType.NOT_FOUND,
)

DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
PORT_RANGE = "must be between 1 and 65535, inclusive"


def spec(**kw: Any) -> Tweak:
    def tweak(s: Obj) -> None:
        for k, v in kw.items():
            if v is None:
                s["spec"].pop(k, None)
            else:
                s["spec"][k] = v

    return tweak


def port(i: int, **kw: Any) -> Tweak:
    def tweak(s: Obj) -> None:
        for k, v in kw.items():
            if v is None:
                s["spec"]["ports"][i].pop(k, None)
            else:
                s["spec"]["ports"][i][k] = v

    return tweak


def meta(**kw: Any) -> Tweak:
    def tweak(s: Obj) -> None:
        for k, v in kw.items():
            if v is None:
                s["metadata"].pop(k, None)
            else:
                s["metadata"][k] = v

    return tweak


def both(*tweaks: Tweak) -> Tweak:
    def tweak(s: Obj) -> None:
        for t in tweaks:
            t(s)

    return tweak


def two_ports(s: Obj) -> None:
    s["spec"]["ports"].append({"name": "q", "protocol": "TCP", "port": 12345, "targetPort": 12345})


def headless(s: Obj) -> None:
    s["spec"]["clusterIP"] = "None"
    s["spec"]["clusterIPs"] = ["None"]


def node_port(s: Obj) -> None:
    s["spec"]["type"] = "NodePort"
    s["spec"]["externalTrafficPolicy"] = "Cluster"


def load_balancer(s: Obj) -> None:
    s["spec"]["type"] = "LoadBalancer"
    s["spec"]["externalTrafficPolicy"] = "Cluster"
    s["spec"]["allocateLoadBalancerNodePorts"] = True


def external_name(s: Obj) -> None:
    s["spec"]["type"] = "ExternalName"
    s["spec"]["externalName"] = "foo.bar.example.com"
    for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
        s["spec"].pop(k, None)


def client_ip(timeout: Any) -> Tweak:
    return spec(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": timeout}})


# (name, tweak, expected [(field, type)], expected exact messages (subset, in order) or None)
CREATE_CASES: list[tuple[str, Tweak, list[tuple[str, ErrorType]], list[str] | None]] = [
    ("valid", lambda s: None, [], None),
    (
        "missing namespace",
        meta(namespace=None),
        [("metadata.namespace", REQ)],
        ["metadata.namespace: Required value"],
    ),
    ("invalid namespace", meta(namespace="-123"), [("metadata.namespace", INV)], None),
    (
        "missing name",
        meta(name=None),
        [("metadata.name", REQ)],
        ["metadata.name: Required value: name or generateName is required"],
    ),
    (
        "invalid name",
        meta(name="My_Svc"),
        [("metadata.name", INV)],
        [f'metadata.name: Invalid value: "My_Svc": {DNS1035_MSG}'],
    ),
    ("name starts with a digit", meta(name="1abc"), [("metadata.name", INV)], None),
    (
        "name too long",
        meta(name="a" * 64),
        [("metadata.name", INV)],
        [f'metadata.name: Invalid value: "{"a" * 64}": must be no more than 63 characters'],
    ),
    ("invalid generateName", meta(generateName="-123"), [("metadata.generateName", INV)], None),
    ("valid generateName with trailing dash", meta(generateName="web-"), [], None),
    (
        "invalid label key",
        meta(labels={"NoUppercaseOrSpecialCharsLike=Equals": "bar"}),
        [("metadata.labels", INV)],
        None,
    ),
    ("invalid label value", meta(labels={"app": "has space"}), [("metadata.labels", INV)], None),
    ("invalid annotation key", meta(annotations={"a b": "c"}), [("metadata.annotations", INV)], None),
    ("nil selector", spec(selector=None), [], None),
    (
        "invalid selector",
        spec(selector={"key": "val", "NoUppercaseOrSpecialCharsLike=Equals": "bar"}),
        [("spec.selector", INV)],
        None,
    ),
    ("missing session affinity", spec(sessionAffinity=None), [("spec.sessionAffinity", REQ)], None),
    ("missing type", spec(type=None), [("spec.type", REQ)], None),
    (
        "invalid type",
        spec(type="Foo"),
        [("spec.type", NS)],
        [
            'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", '
            '"LoadBalancer", '
            '"NodePort"'
        ],
    ),
    ("missing ports", spec(ports=[]), [("spec.ports", REQ)], ["spec.ports: Required value"]),
    ("missing ports but headless", both(spec(ports=[]), headless), [], None),
    ("empty port[0] name", port(0, name=None), [], None),
    ("empty port[1] name", both(two_ports, port(1, name="")), [("spec.ports[1].name", REQ)], None),
    (
        "empty multi-port port[0] name",
        both(two_ports, port(0, name=None)),
        [("spec.ports[0].name", REQ)],
        None,
    ),
    (
        "invalid port name",
        port(0, name="INVALID"),
        [("spec.ports[0].name", INV)],
        [f'spec.ports[0].name: Invalid value: "INVALID": {DNS1123_LABEL_MSG}'],
    ),
    ("missing protocol", port(0, protocol=None), [("spec.ports[0].protocol", REQ)], None),
    (
        "invalid protocol",
        port(0, protocol="INVALID"),
        [("spec.ports[0].protocol", NS)],
        ['spec.ports[0].protocol: Unsupported value: "INVALID": supported values: "SCTP", "TCP", "UDP"'],
    ),
    ("lower-case protocol", port(0, protocol="tcp"), [("spec.ports[0].protocol", NS)], None),
    (
        "invalid cluster ip",
        spec(clusterIP="invalid", clusterIPs=["invalid"]),
        [("spec.clusterIPs[0]", INV)],
        [
            'spec.clusterIPs[0]: Invalid value: "invalid": must be a valid IP address, (e.g. 10.9.8.7 or '
            "2001:db8::ffff)"
        ],
    ),
    (
        "port 0",
        port(0, port=0),
        [("spec.ports[0].port", INV)],
        [f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}"],
    ),
    (
        "port too large",
        port(0, port=65536),
        [("spec.ports[0].port", INV)],
        [f"spec.ports[0].port: Invalid value: 65536: {PORT_RANGE}"],
    ),
    ("targetPort too large", port(0, targetPort=65536), [("spec.ports[0].targetPort", INV)], None),
    ("targetPort named", port(0, targetPort="http"), [], None),
    (
        "targetPort name without a letter",
        port(0, targetPort="123"),
        [("spec.ports[0].targetPort", INV)],
        ['spec.ports[0].targetPort: Invalid value: "123": must contain at least one letter (a-z)'],
    ),
    (
        "targetPort name too long",
        port(0, targetPort="a" * 16),
        [("spec.ports[0].targetPort", INV)],
        [f'spec.ports[0].targetPort: Invalid value: "{"a" * 16}": must be no more than 15 characters'],
    ),
    (
        "targetPort name with double hyphen",
        port(0, targetPort="a--b"),
        [("spec.ports[0].targetPort", INV)],
        ['spec.ports[0].targetPort: Invalid value: "a--b": must not contain consecutive hyphens'],
    ),
    ("headless with targetPort != port", both(headless, port(0, targetPort=11721)), [], None),
    ("headless with invalid port", both(headless, port(0, port=65536)), [("spec.ports[0].port", INV)], None),
    (
        "duplicate port names",
        both(two_ports, port(1, name="p")),
        [("spec.ports[1].name", DUP)],
        ['spec.ports[1].name: Duplicate value: "p"'],
    ),
    ("same port, different protocols", both(two_ports, port(1, port=8675, protocol="UDP")), [], None),
    ("duplicate port and protocol", both(two_ports, port(1, port=8675)), [("spec.ports[1]", DUP)], None),
    ("valid UDP load balancer", both(load_balancer, port(0, protocol="UDP")), [], None),
    ("valid SCTP", port(0, protocol="SCTP"), [], None),
    (
        "invalid externalIP",
        spec(externalIPs=["1.2.3.4.5"], externalTrafficPolicy="Cluster"),
        [("spec.externalIPs[0]", INV)],
        None,
    ),
    (
        "loopback externalIP",
        spec(externalIPs=["127.0.0.1"], externalTrafficPolicy="Cluster"),
        [("spec.externalIPs[0]", INV)],
        [
            'spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, '
            "::1/128)"
        ],
    ),
    (
        "unspecified externalIP",
        spec(externalIPs=["0.0.0.0"], externalTrafficPolicy="Cluster"),
        [("spec.externalIPs[0]", INV)],
        ['spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)'],
    ),
    ("valid externalIP with ETP", spec(externalIPs=["1.2.3.4"], externalTrafficPolicy="Cluster"), [], None),
    (
        "nodePort on ClusterIP",
        port(0, nodePort=30001),
        [("spec.ports[0].nodePort", FORB)],
        ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    ),
    (
        "NodePort outside the range is the allocator's business",
        both(node_port, port(0, nodePort=12345)),
        [],
        None,
    ),
    (
        "duplicate nodePorts",
        both(node_port, two_ports, port(0, nodePort=30001), port(1, nodePort=30001)),
        [("spec.ports[1].nodePort", DUP)],
        ["spec.ports[1].nodePort: Duplicate value: 30001"],
    ),
    (
        "same nodePort, different protocols",
        both(node_port, two_ports, port(0, nodePort=30001), port(1, nodePort=30001, protocol="UDP")),
        [],
        None,
    ),
    (
        "headless LoadBalancer",
        both(load_balancer, headless),
        [("spec.clusterIPs[0]", INV)],
        ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"],
    ),
    (
        "headless NodePort",
        both(node_port, headless),
        [("spec.clusterIPs[0]", INV)],
        ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"],
    ),
    ("valid ExternalName", external_name, [], None),
    (
        "valid ExternalName with trailing dot",
        both(external_name, spec(externalName="foo.bar.example.com.")),
        [],
        None,
    ),
    (
        "ExternalName with clusterIP",
        both(external_name, spec(clusterIP="1.2.3.4", clusterIPs=["1.2.3.4"])),
        [("spec.clusterIPs", FORB)],
        ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"],
    ),
    (
        "ExternalName with families and policy",
        both(external_name, spec(ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack")),
        [("spec.ipFamilies", FORB), ("spec.ipFamilyPolicy", FORB)],
        None,
    ),
    (
        "ExternalName invalid name",
        both(external_name, spec(externalName="-123.com")),
        [("spec.externalName", INV)],
        None,
    ),
    (
        "ExternalName missing name",
        both(external_name, spec(externalName=None)),
        [("spec.externalName", REQ)],
        None,
    ),
    ("ExternalName needs no ports", both(external_name, spec(ports=[])), [], None),
    (
        "invalid session affinity",
        spec(sessionAffinity="Foo"),
        [("spec.sessionAffinity", NS)],
        ['spec.sessionAffinity: Unsupported value: "Foo": supported values: "ClientIP", "None"'],
    ),
    (
        "ClientIP timeout 0",
        client_ip(0),
        [("spec.sessionAffinityConfig.clientIP.timeoutSeconds", INV)],
        [
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than "
            "0 and less "
            "than 86400"
        ],
    ),
    ("ClientIP timeout 86400", client_ip(86400), [], None),
    (
        "ClientIP timeout 86401",
        client_ip(86401),
        [("spec.sessionAffinityConfig.clientIP.timeoutSeconds", INV)],
        None,
    ),
    (
        "ClientIP without config",
        spec(sessionAffinity="ClientIP"),
        [("spec.sessionAffinityConfig", REQ)],
        ["spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP"],
    ),
    (
        "ClientIP without clientIP",
        spec(sessionAffinity="ClientIP", sessionAffinityConfig={}),
        [("spec.sessionAffinityConfig.clientIP", REQ)],
        None,
    ),
    (
        "None with config",
        spec(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10}}),
        [("spec.sessionAffinityConfig", FORB)],
        ["spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"],
    ),
    (
        "ETP on ClusterIP",
        spec(externalTrafficPolicy="Local"),
        [("spec.externalTrafficPolicy", INV)],
        [
            'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
            'externally-accessible services'
        ],
    ),
    (
        "invalid ETP on NodePort",
        both(node_port, spec(externalTrafficPolicy="Foo")),
        [("spec.externalTrafficPolicy", NS)],
        ['spec.externalTrafficPolicy: Unsupported value: "Foo": supported values: "Cluster", "Local"'],
    ),
    (
        "NodePort without ETP",
        both(node_port, spec(externalTrafficPolicy=None)),
        [("spec.externalTrafficPolicy", REQ)],
        None,
    ),
    (
        "healthCheckNodePort on ClusterIP",
        spec(healthCheckNodePort=31000),
        [("spec.healthCheckNodePort", INV)],
        [
            "spec.healthCheckNodePort: Invalid value: 31000: may only be set when `type` is "
            "'LoadBalancer' and "
            "`externalTrafficPolicy` is 'Local'"
        ],
    ),
    (
        "LB Local with healthCheckNodePort",
        both(load_balancer, spec(externalTrafficPolicy="Local", healthCheckNodePort=31000)),
        [],
        None,
    ),
    (
        "LB Local with negative healthCheckNodePort",
        both(load_balancer, spec(externalTrafficPolicy="Local", healthCheckNodePort=-1)),
        [("spec.healthCheckNodePort", INV)],
        None,
    ),
    (
        "source ranges on ClusterIP",
        spec(loadBalancerSourceRanges=["10.0.0.0/8"]),
        [("spec.LoadBalancerSourceRanges", FORB)],
        ["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"],
    ),
    (
        "LB with bad source range",
        both(load_balancer, spec(loadBalancerSourceRanges=["1.2.3.4/33"])),
        [("spec.LoadBalancerSourceRanges[0]", INV)],
        None,
    ),
    (
        "LB with padded source range",
        both(load_balancer, spec(loadBalancerSourceRanges=["  10.0.0.0/8 "])),
        [],
        None,
    ),
    (
        "source-range annotation on NodePort",
        both(
            node_port,
            meta(annotations={"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"}),
        ),
        [("metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]", FORB)],
        None,
    ),
    (
        "allocateLoadBalancerNodePorts on NodePort",
        both(node_port, spec(allocateLoadBalancerNodePorts=False)),
        [("spec.allocateLoadBalancerNodePorts", FORB)],
        None,
    ),
    (
        "LB without allocateLoadBalancerNodePorts",
        both(load_balancer, spec(allocateLoadBalancerNodePorts=None)),
        [("allocateLoadBalancerNodePorts", REQ)],
        None,
    ),
    (
        "loadBalancerClass on ClusterIP",
        spec(loadBalancerClass="example.com/lb"),
        [("spec.loadBalancerClass", FORB)],
        None,
    ),
    (
        "invalid loadBalancerClass",
        both(load_balancer, spec(loadBalancerClass="Bad/LoadBalancerClass")),
        [("spec.loadBalancerClass", INV)],
        None,
    ),
    (
        "missing internalTrafficPolicy",
        spec(internalTrafficPolicy=None),
        [("spec.internalTrafficPolicy", REQ)],
        None,
    ),
    (
        "invalid internalTrafficPolicy",
        spec(internalTrafficPolicy="Foo"),
        [("spec.internalTrafficPolicy", NS)],
        None,
    ),
    ("trafficDistribution PreferClose", spec(trafficDistribution="PreferClose"), [], None),
    (
        "trafficDistribution Random",
        spec(trafficDistribution="Random"),
        [("spec.trafficDistribution", NS)],
        ['spec.trafficDistribution: Unsupported value: "Random": supported values: "PreferClose"'],
    ),
    (
        "clusterIPs not matching clusterIP",
        spec(clusterIPs=["1.2.3.5"]),
        [("spec.clusterIPs", INV)],
        ['spec.clusterIPs: Invalid value: []string{"1.2.3.5"}: first value must match `clusterIP`'],
    ),
    ("clusterIPs without clusterIP", spec(clusterIP=None), [("spec.clusterIPs", INV)], None),
    (
        "None not alone",
        spec(clusterIP="None", clusterIPs=["None", "1.2.3.4"]),
        [("spec.clusterIPs", INV)],
        [
            'spec.clusterIPs: Invalid value: []string{"None", "1.2.3.4"}: \'None\' must be the first '
            'and only value'
        ],
    ),
    (
        "two IPv4 cluster IPs",
        spec(clusterIPs=["1.2.3.4", "1.2.3.5"], ipFamilyPolicy="RequireDualStack", ipFamilies=["IPv4"]),
        [("spec.clusterIPs", INV)],
        None,
    ),
    ("unknown IP family", spec(ipFamilies=["IPv5"]), [("spec.ipFamilies[0]", NS)], None),
    ("duplicate IP family", spec(ipFamilies=["IPv4", "IPv4"]), [("spec.ipFamilies[1]", DUP)], None),
    ("unknown family policy", spec(ipFamilyPolicy="Both"), [("spec.ipFamilyPolicy", NS)], None),
    (
        "family does not match IP",
        spec(ipFamilies=["IPv6"]),
        [("spec.clusterIPs[0]", INV)],
        [
            'spec.clusterIPs[0]: Invalid value: "1.2.3.4": expected an IPv6 value as indicated by '
            '`ipFamilies[0]`'
        ],
    ),
    ("valid appProtocol", port(0, appProtocol="example.com/protocol"), [], None),
    ("invalid appProtocol", port(0, appProtocol="~https"), [("spec.ports[0].appProtocol", INV)], None),
    (
        "topology annotations disagree",
        meta(
            annotations={
                "service.kubernetes.io/topology-mode": "Auto",
                "service.kubernetes.io/topology-aware-hints": "Disabled",
            }
        ),
        [("metadata.annotations[service.kubernetes.io/topology-mode]", INV)],
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "tweak", "expected", "messages"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES]
)
def test_validate_service_create(
    name: str, tweak: Tweak, expected: list[tuple[str, ErrorType]], messages: list[str] | None
) -> None:
    svc = valid_service()
    tweak(svc)
    errs = validate(svc)
    assert_field_errors(errs, expected, messages)


def test_create_case_table_is_large_enough() -> None:
    assert len(CREATE_CASES) >= 40
    assert sum(1 for c in CREATE_CASES if c[3]) >= 20


def test_duplicate_port_protocol_value_is_go_struct() -> None:
    svc = valid_service()
    two_ports(svc)
    port(1, port=8675)(svc)
    (err,) = validate(svc)
    assert err.error().startswith('spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP"')
    assert "Port:8675" in err.error()


def test_several_errors_aggregate_like_kubernetes() -> None:
    svc = valid_service()
    svc["metadata"]["name"] = "My_Svc"
    svc["spec"]["type"] = "Foo"
    svc["spec"]["ports"] = [
        {"name": "http", "port": 0, "protocol": "TCP", "targetPort": 80},
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80},
    ]
    text = aggregate(validate(svc))
    assert text == (
        f'[metadata.name: Invalid value: "My_Svc": {DNS1035_MSG}, '
        f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}, "
        'spec.ports[1].name: Duplicate value: "http", '
        'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
        '"NodePort"]'
    )


def test_only_clusterip_given_mirrors_into_clusterips() -> None:
    svc = valid_service()
    del svc["spec"]["clusterIPs"]
    assert validate(svc) == []
    svc["spec"]["clusterIP"] = "None"
    svc["spec"]["ports"] = []
    assert validate(svc) == []


# ----------------------------------------------------------------------------------------------- updates

UPDATE_CASES: list[tuple[str, Tweak, Tweak, list[tuple[str, ErrorType]], list[str] | None]] = [
    ("no change", lambda s: None, lambda s: None, [], None),
    (
        "change selector, ports and labels",
        lambda s: None,
        both(spec(selector={"app": "new"}), port(0, port=80, targetPort=8080), meta(labels={"a": "b"})),
        [],
        None,
    ),
    (
        "change clusterIP",
        lambda s: None,
        spec(clusterIP="1.2.3.5", clusterIPs=["1.2.3.5"]),
        [("spec.clusterIPs[0]", INV)],
        ['spec.clusterIPs[0]: Invalid value: []string{"1.2.3.5"}: may not change once set'],
    ),
    (
        "clusterIP to None",
        lambda s: None,
        spec(clusterIP="None", clusterIPs=["None"]),
        [("spec.clusterIPs[0]", INV)],
        None,
    ),
    (
        "None to clusterIP",
        headless,
        spec(clusterIP="1.2.3.4", clusterIPs=["1.2.3.4"]),
        [("spec.clusterIPs[0]", INV)],
        None,
    ),
    ("headless stays headless", headless, headless, [], None),
    (
        "unset primary clusterIP",
        lambda s: None,
        spec(clusterIP=None, clusterIPs=None),
        [("spec.clusterIPs[0]", INV)],
        ["spec.clusterIPs[0]: Invalid value: []string(nil): primary clusterIP can not be unset"],
    ),
    ("ClusterIP to NodePort", lambda s: None, both(node_port, port(0, nodePort=30001)), [], None),
    (
        "NodePort to ClusterIP after the server dropped nodePorts",
        both(node_port, port(0, nodePort=30001)),
        lambda s: None,
        [],
        None,
    ),
    (
        "ClusterIP to ExternalName keeping IP fields",
        lambda s: None,
        both(spec(type="ExternalName", externalName="foo.example.com"), spec(internalTrafficPolicy=None)),
        [("spec.clusterIPs", FORB), ("spec.ipFamilies", FORB), ("spec.ipFamilyPolicy", FORB)],
        None,
    ),
    ("ExternalName to ClusterIP", external_name, lambda s: None, [], None),
    (
        "rename",
        lambda s: None,
        meta(name="other"),
        [("metadata.name", INV)],
        ['metadata.name: Invalid value: "other": field is immutable'],
    ),
    ("change namespace", lambda s: None, meta(namespace="other"), [("metadata.namespace", INV)], None),
    (
        "change loadBalancerClass",
        both(load_balancer, spec(loadBalancerClass="a.io/one")),
        both(load_balancer, spec(loadBalancerClass="a.io/two")),
        [("spec.loadBalancerClass", INV)],
        ['spec.loadBalancerClass: Invalid value: "a.io/two": may not change once set'],
    ),
    (
        "set loadBalancerClass when becoming LB",
        lambda s: None,
        both(load_balancer, spec(loadBalancerClass="a.io/one")),
        [],
        None,
    ),
    (
        "change healthCheckNodePort",
        both(load_balancer, spec(externalTrafficPolicy="Local", healthCheckNodePort=31000)),
        both(load_balancer, spec(externalTrafficPolicy="Local", healthCheckNodePort=31001)),
        [("spec.healthCheckNodePort", FORB)],
        ["spec.healthCheckNodePort: Forbidden: field is immutable"],
    ),
    (
        "flip allocateLoadBalancerNodePorts",
        load_balancer,
        both(load_balancer, spec(allocateLoadBalancerNodePorts=False)),
        [],
        None,
    ),
    ("internalTrafficPolicy to Local", lambda s: None, spec(internalTrafficPolicy="Local"), [], None),
]


@pytest.mark.parametrize(
    ("name", "old_tweak", "new_tweak", "expected", "messages"), UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES]
)
def test_validate_service_update(
    name: str,
    old_tweak: Tweak,
    new_tweak: Tweak,
    expected: list[tuple[str, ErrorType]],
    messages: list[str] | None,
) -> None:
    old = valid_service()
    old_tweak(old)
    new = deep(old)
    new_tweak(new)
    errs = validate(new, old)
    assert_field_errors(errs, expected, messages)


def test_update_also_runs_create_rules() -> None:
    old = valid_service()
    new = deep(old)
    new["spec"]["ports"][0]["port"] = 70000
    errs = validate(new, old)
    assert [e.error() for e in errs] == [f"spec.ports[0].port: Invalid value: 70000: {PORT_RANGE}"]
