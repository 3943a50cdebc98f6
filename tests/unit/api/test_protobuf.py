"""Request bodies in the Kubernetes protobuf encoding (what kubectl's typed `create` commands send)."""

from __future__ import annotations

from api_support import Api

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _ld(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _s(num: int, text: str) -> bytes:
    return _ld(num, text.encode())


def _i(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _entry(num: int, k: str, v: str) -> bytes:
    return _ld(num, _s(1, k) + _s(2, v))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return b"k8s\x00" + _ld(1, _s(1, api_version) + _s(2, kind)) + _ld(2, raw) + _s(3, "") + _s(4, "")


async def test_configmap_sent_as_protobuf_is_created(api: Api) -> None:
    meta = _s(1, "pb") + _s(2, "") + _s(3, "") + _entry(11, "app", "pb")
    raw = _ld(1, meta) + _entry(2, "k", "v") + _entry(2, "k2", "v2")
    code, cm = await api.call("POST", "/api/v1/namespaces/default/configmaps",
                              envelope("v1", "ConfigMap", raw), ctype=PROTOBUF)
    assert code == 201, cm
    assert cm["data"] == {"k": "v", "k2": "v2"} and cm["metadata"]["labels"] == {"app": "pb"}
    assert "generateName" not in cm["metadata"] and "immutable" not in cm


async def test_service_ports_and_int_or_string_target_port(api: Api) -> None:
    port = _s(1, "80-8080") + _s(2, "TCP") + _i(3, 80) + _ld(4, _i(1, 0) + _i(2, 8080)) + _i(5, 0)
    named = _s(1, "web") + _s(2, "TCP") + _i(3, 81) + _ld(4, _i(1, 1) + _s(3, "http"))
    spec = _ld(1, port) + _ld(1, named) + _entry(2, "app", "x") + _s(4, "ClusterIP")
    raw = _ld(1, _s(1, "pbsvc")) + _ld(2, spec)
    code, svc = await api.call("POST", "/api/v1/namespaces/default/services",
                               envelope("v1", "Service", raw), ctype=PROTOBUF)
    assert code == 201, svc
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(80, 8080), (81, "http")]
    assert "nodePort" not in svc["spec"]["ports"][0]


async def test_undecodable_protobuf_is_415_not_500(api: Api) -> None:
    for body in (b"k8s\x00\xff\xff\xff", b"not protobuf", envelope("v1", "Secret", b"")):
        code, st = await api.call("POST", "/api/v1/namespaces/default/configmaps", body, ctype=PROTOBUF)
        assert code in (400, 415), (body, code, st)
        assert st["kind"] == "Status"
    code, st = await api.call("POST", "/api/v1/namespaces/default/configmaps",
                              envelope("v1", "ConfigMap", _i(1, 2**40)), ctype=PROTOBUF)
    assert code == 415 and "length-delimited" in st["message"]
