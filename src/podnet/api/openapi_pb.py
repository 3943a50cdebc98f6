"""The OpenAPI v2 document in protobuf: what kubectl asks `/openapi/v2` for.

client-go's `OpenAPISchema()` sends `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
and decodes the answer as gnostic's `openapi.v2.Document` message (github.com/google/gnostic-models,
openapiv2/OpenAPIv2.proto); kube-openapi makes it by parsing the JSON document with gnostic and marshalling
the message. This module writes the same message directly from the JSON-shaped document, for the parts
podnet's document uses: info, paths (operations, parameters, responses) and definitions (schemas).
Vendor extensions (`x-kubernetes-*`), `default`, `enum` and `example` are gnostic `Any`s carrying their
value as YAML text (JSON is YAML; kubectl reads them with a YAML parser). Field numbers are the .proto's.
"""

from __future__ import annotations

import json
import struct
from typing import Any

# -- wire format ------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, data: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(data)) + data


def _str(field: int, value: Any) -> bytes:
    if not isinstance(value, str) or value == "":
        return b""
    return _bytes(field, value.encode())


def _strs(field: int, values: Any) -> bytes:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return b""
    return b"".join(_bytes(field, v.encode()) for v in values if isinstance(v, str))


def _bool(field: int, value: Any) -> bytes:
    return _tag(field, 0) + b"\x01" if value is True else b""


def _int(field: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) == 0:
        return b""
    return _tag(field, 0) + _varint(int(value))


def _double(field: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float) or value == 0:
        return b""
    return _tag(field, 1) + struct.pack("<d", float(value))


def _msg(field: int, data: bytes, always: bool = False) -> bytes:
    return _bytes(field, data) if data or always else b""


def _yaml(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": ")) + "\n"


def _any(field: int, value: Any) -> bytes:
    """gnostic `Any` {yaml = 2}."""
    return _bytes(field, _str(2, _yaml(value)))


def _extensions(field: int, obj: dict[str, Any]) -> bytes:
    """`repeated NamedAny vendor_extension` {name = 1, value = 2}: the object's `x-` keys."""
    return b"".join(_bytes(field, _str(1, k) + _any(2, v)) for k, v in sorted(obj.items())
                    if k.startswith("x-"))


# -- messages ---------------------------------------------------------------------------------


def schema(s: dict[str, Any]) -> bytes:
    """gnostic `Schema`."""
    out = [_str(1, s.get("$ref")), _str(2, s.get("format")), _str(3, s.get("title")),
           _str(4, s.get("description"))]
    if "default" in s:
        out.append(_any(5, s["default"]))
    out += [_double(6, s.get("multipleOf")), _double(7, s.get("maximum")),
            _bool(8, s.get("exclusiveMaximum")), _double(9, s.get("minimum")),
            _bool(10, s.get("exclusiveMinimum")), _int(11, s.get("maxLength")), _int(12, s.get("minLength")),
            _str(13, s.get("pattern")), _int(14, s.get("maxItems")), _int(15, s.get("minItems")),
            _bool(16, s.get("uniqueItems")), _int(17, s.get("maxProperties")),
            _int(18, s.get("minProperties")), _strs(19, s.get("required"))]
    if isinstance(s.get("enum"), list):
        out += [_any(20, v) for v in s["enum"]]
    addl = s.get("additionalProperties")
    if isinstance(addl, dict):
        out.append(_bytes(21, _bytes(1, schema(addl))))
    elif isinstance(addl, bool):
        out.append(_bytes(21, _tag(2, 0) + (b"\x01" if addl else b"\x00")))
    if "type" in s:
        out.append(_bytes(22, _strs(1, s["type"])))
    items = s.get("items")
    if isinstance(items, dict):
        items = [items]
    if isinstance(items, list):
        out.append(_bytes(23, b"".join(_bytes(1, schema(i)) for i in items if isinstance(i, dict))))
    if isinstance(s.get("allOf"), list):
        out += [_bytes(24, schema(i)) for i in s["allOf"] if isinstance(i, dict)]
    props = s.get("properties")
    if isinstance(props, dict):
        out.append(_bytes(25, b"".join(_bytes(1, _str(1, k) + _bytes(2, schema(v)))
                                       for k, v in sorted(props.items()) if isinstance(v, dict))))
    out += [_str(26, s.get("discriminator")), _bool(27, s.get("readOnly"))]
    if "example" in s:
        out.append(_any(30, s["example"]))
    out.append(_extensions(31, s))
    return b"".join(out)


def _parameter(p: dict[str, Any]) -> bytes:
    """`ParametersItem` {parameter = 1} of a `Parameter` {body_parameter = 1, non_body_parameter = 2}."""
    where = p.get("in")
    if where == "body":
        body = b"".join([_str(1, p.get("description")), _str(2, p.get("name")), _str(3, where),
                         _bool(4, p.get("required")),
                         _msg(5, schema(p["schema"]) if isinstance(p.get("schema"), dict) else b""),
                         _extensions(6, p)])
        return _bytes(1, _bytes(1, body))
    common = [_bool(1, p.get("required")), _str(2, where), _str(3, p.get("description")),
              _str(4, p.get("name"))]
    if where == "path":  # PathParameterSubSchema, non_body_parameter.path_parameter_sub_schema = 4
        sub = b"".join([*common, _str(5, p.get("type")), _str(6, p.get("format")),
                        _bool(19, p.get("uniqueItems")), _extensions(22, p)])
        which = 4
    else:  # QueryParameterSubSchema, non_body_parameter.query_parameter_sub_schema = 3
        sub = b"".join([*common, _str(6, p.get("type")), _str(7, p.get("format")),
                        _bool(20, p.get("uniqueItems")), _extensions(23, p)])
        which = 3
    return _bytes(1, _bytes(2, _bytes(which, sub)))


def _responses(r: dict[str, Any]) -> bytes:
    """`Responses` {response_code = 1 (NamedResponseValue), vendor_extension = 2}."""
    out = []
    for code, value in sorted(r.items()):
        if code.startswith("x-") or not isinstance(value, dict):
            continue
        resp = [_str(1, value.get("description"))]
        if isinstance(value.get("schema"), dict):
            resp.append(_bytes(2, _bytes(1, schema(value["schema"]))))  # SchemaItem.schema = 1
        resp.append(_extensions(5, value))
        out.append(_bytes(1, _str(1, code) + _bytes(2, _bytes(1, b"".join(resp)))))
    out.append(_extensions(2, r))
    return b"".join(out)


def _operation(op: dict[str, Any]) -> bytes:
    out = [_strs(1, op.get("tags")), _str(2, op.get("summary")), _str(3, op.get("description")),
           _str(5, op.get("operationId")), _strs(6, op.get("produces")), _strs(7, op.get("consumes"))]
    out += [_bytes(8, _parameter(p)) for p in op.get("parameters") or [] if isinstance(p, dict)]
    if isinstance(op.get("responses"), dict):
        out.append(_bytes(9, _responses(op["responses"])))
    out += [_strs(10, op.get("schemes")), _bool(11, op.get("deprecated")), _extensions(13, op)]
    return b"".join(out)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: dict[str, Any]) -> bytes:
    out = [_str(1, item.get("$ref"))]
    for method, number in _METHODS.items():
        if isinstance(item.get(method), dict):
            out.append(_bytes(number, _operation(item[method])))
    out += [_bytes(9, _parameter(p)) for p in item.get("parameters") or [] if isinstance(p, dict)]
    out.append(_extensions(10, item))
    return b"".join(out)


def encode_document(doc: dict[str, Any]) -> bytes:
    """A Swagger 2.0 document (as a dict) as gnostic's `openapi.v2.Document` protobuf message."""
    info = doc.get("info") or {}
    out = [_str(1, doc.get("swagger")),
           _msg(2, _str(1, info.get("title")) + _str(2, info.get("version"))
                + _str(3, info.get("description")) + _extensions(7, info)),
           _str(3, doc.get("host")), _str(4, doc.get("basePath")), _strs(5, doc.get("schemes")),
           _strs(6, doc.get("consumes")), _strs(7, doc.get("produces"))]
    paths = doc.get("paths") or {}
    out.append(_msg(8, _extensions(1, paths) + b"".join(
        _bytes(2, _str(1, p) + _bytes(2, _path_item(item)))
        for p, item in sorted(paths.items()) if not p.startswith("x-") and isinstance(item, dict)),
        always=True))
    definitions = doc.get("definitions") or {}
    out.append(_msg(9, b"".join(_bytes(1, _str(1, name) + _bytes(2, schema(s)))
                                for name, s in sorted(definitions.items()) if isinstance(s, dict))))
    out.append(_extensions(16, doc))
    return b"".join(out)
