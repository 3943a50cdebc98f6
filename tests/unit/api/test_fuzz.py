"""Property-based fuzzing of the whole API (issue 19 item 5): no client input yields a 5xx.

Hypothesis generates and mutates requests (every resource kind, every verb, the four patch types and
server-side apply, subresources, odd content types, odd query parameters, deeply nested and aliased
bodies, random bytes) and sends them to the real aiohttp application in-process, with the Service
allocator hooks installed as in a cluster. Every answer must be < 500, and every error a
Kubernetes Status without a Python traceback. One run sends >= 5,000 requests.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import Counter
from typing import Any

import yaml
from api_support import Api, deployment, make_api, pod, service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podnet.allocators.service_hooks import ServiceHooks
from podnet.model import kinds

REQUESTS_PER_EXAMPLE = 6
EXAMPLES = 1000  # 1,000 * 6 = 6,000 requests (10-40 s, depending on the machine's load)

SEEDS: dict[str, dict[str, Any]] = {
    "services": {**service("fz"), "spec": {**service("fz")["spec"], "type": "NodePort"}},
    "pods": pod("fz", node="n1"),
    "deployments": deployment("fz"),
    "replicasets": {**deployment("fz"), "kind": "ReplicaSet"},
    "configmaps": {"metadata": {"name": "fz"}, "data": {"a": "b"}},
    "nodes": {"metadata": {"name": "fz", "labels": {"a": "b"}}, "spec": {"podCIDR": "10.244.9.0/24"}},
    "namespaces": {"metadata": {"name": "fz"}},
    "endpointslices": {"metadata": {"name": "fz"}, "addressType": "IPv4",
                       "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"port": 80}]},
    "endpoints": {"metadata": {"name": "fz"},
                  "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]},
    "events": {"metadata": {"name": "fz"}, "involvedObject": {"kind": "Pod", "name": "fz"},
               "reason": "x", "message": "y", "type": "Normal"},
}

CTYPES = ["application/json", "application/yaml", "application/merge-patch+json",
          "application/json-patch+json", "application/strategic-merge-patch+json",
          "application/apply-patch+yaml", "text/plain", "application/vnd.kubernetes.protobuf",
          "application/cbor", "", "application/json; charset=utf-8"]
PATCH_TYPES = CTYPES[2:6]


def _resource_types() -> list[kinds.ResourceType]:
    return list(kinds.ALL_RESOURCES)


def _seed(rt: kinds.ResourceType) -> dict[str, Any]:
    body = copy.deepcopy(SEEDS.get(rt.plural, {"metadata": {"name": "fz"}}))
    return {"apiVersion": rt.api_version, "kind": rt.kind, **body}


def _collection(rt: kinds.ResourceType) -> str:
    base = "/api/v1" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    return f"{base}/namespaces/fuzz/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, 1, -1, 65536]),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                    st.sampled_from(["", "None", "10.96.0.1", "::1", "TCP", "NodePort", "LoadBalancer",
                                     "ClusterIP", "$patch", "delete", "replace", "fz", "80", "http",
                                     "1.5", "-", "a=b", "Ω" * 70, "x" * 300]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["a", "name", "port", "$patch", "spec", "ports", "metadata",
                                     "labels", "nodePort", "protocol", "x"]), inner, max_size=3)),
    max_leaves=8)


CONFUSING: list[Any] = [5.5, 7, -1, "x", "", ["x"], [7], {"a": 1}, {}, True, None]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """doc with 0-3 values replaced, added or removed at generated paths."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(doc)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["confuse", "confuse", "set", "del", "add"]))
        if action == "confuse":  # a value of another JSON type where the object has one
            old = parent[path[-1]]
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(
                [v for v in CONFUSING if type(v) is not type(old)])))
        elif action == "del":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(["x", "spec", "ports", "metadata", "status"]))] = \
                draw(json_values)
        else:
            parent[path[-1]] = draw(json_values)
    return doc


def _nested(depth: int, fmt: str) -> bytes:
    if fmt == "yaml-flow":
        return b"a: " + b"[" * depth + b"]" * depth
    if fmt == "yaml-block":
        return "".join(" " * i + "a:\n" for i in range(min(depth, 1500))).encode()
    return b'{"metadata":' * depth + b"{}" + b"}" * depth


BOMB = b"\n".join([b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] +
                  [f"{c}: &{c} [{','.join(['*' + p] * 9)}]".encode()
                   for p, c in zip("abcdefgh", "bcdefghi", strict=True)])


@st.composite
def body_for(draw: st.DrawFn, rt: kinds.ResourceType, ctype: str) -> bytes | None:
    kind = draw(st.sampled_from(["object", "object", "object", "value", "nested", "bomb", "bytes", "none"]))
    if kind == "none":
        return None
    if kind == "nested":
        return _nested(draw(st.sampled_from([50, 101, 999, 5000, 20000])),
                       draw(st.sampled_from(["json", "yaml-flow", "yaml-block"])))
    if kind == "bomb":
        return BOMB
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "value":
        value: Any = draw(json_values)
    elif ctype == "application/json-patch+json":
        path = "/" + "/".join(str(p) for p in draw(st.sampled_from(_paths(_seed(rt)))))
        value = [{"op": draw(st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"])),
                  "path": path, "from": "/metadata/labels", "value": draw(json_values)}]
    else:
        value = draw(mutated(_seed(rt)))
        if isinstance(value, dict) and isinstance(value.get("metadata"), dict) and draw(st.booleans()):
            value["metadata"]["name"] = f"fz{draw(st.integers(2, 200))}"
    if "yaml" in ctype:
        return yaml.safe_dump(value).encode()
    return json.dumps(value).encode()


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], str, bytes | None]:
    rt = draw(st.sampled_from(_resource_types()))
    coll = _collection(rt)
    target = draw(st.sampled_from(["collection", "object", "object2", "sub"]))
    if target == "collection":
        path, method = coll, draw(st.sampled_from(["POST", "POST", "POST", "GET", "DELETE"]))
    else:
        path = f"{coll}/{'fz2' if target == 'object2' else 'fz'}"
        if target == "sub":
            path += "/" + draw(st.sampled_from(["status", "scale", "finalize", "binding", "x"]))
        method = draw(st.sampled_from(["PUT", "PATCH", "PATCH", "PATCH", "GET", "DELETE"]))
    if method == "PATCH":
        ctype = draw(st.sampled_from(PATCH_TYPES + CTYPES))
    elif method in ("PUT", "POST"):
        ctype = draw(st.sampled_from(["application/json"] * 4 + ["application/yaml"] * 2 + CTYPES))
    else:
        ctype = "application/json"
    params: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(["fieldManager", "dryRun", "fieldValidation", "limit",
                                               "continue", "labelSelector", "fieldSelector", "force",
                                               "propagationPolicy", "gracePeriodSeconds",
                                               "resourceVersion"]), max_size=3, unique=True)):
        params[name] = draw(st.sampled_from(["", "x", "All", "Strict", "Warn", "-1", "5", "a in (b",
                                             "metadata.name=fz", "true", "\u00e9", "Orphan"]))
    return method, path, params, ctype, draw(body_for(rt, ctype))


async def _send(api: Api, req: tuple[str, str, dict[str, str], str, bytes | None]) -> int:
    method, path, params, ctype, body = req
    headers = {"Content-Type": ctype} if ctype and body is not None else {}
    resp = await api.client.request(method, path, data=body, headers=headers, params=params)
    text = await resp.text(errors="replace")
    where = f"{method} {path} {params} {ctype!r} {(body or b'')[:200]!r}"
    assert resp.status < 500, f"{where} -> {resp.status} {text[:500]}"
    assert "Traceback" not in text and 'File "/' not in text, f"{where} -> {text[:500]}"
    if resp.status >= 400:
        st_ = json.loads(text)
        assert st_["kind"] == "Status" and st_["code"] == resp.status and st_["message"], (where, text)
    return resp.status


def test_no_request_yields_a_5xx() -> None:
    loop = asyncio.new_event_loop()
    hooks = {"services": ServiceHooks("10.96.0.0/24", (30000, 30100), "172.30.9.0/28")}
    api = loop.run_until_complete(make_api(hooks=hooks))
    codes: Counter[int] = Counter()

    async def setup() -> None:
        await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": "fuzz"}})
        for rt in _resource_types():
            await api.call("POST", _collection(rt), _seed(rt))

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(requests(), min_size=REQUESTS_PER_EXAMPLE, max_size=REQUESTS_PER_EXAMPLE))
    def run(batch: list[tuple[str, str, dict[str, str], str, bytes | None]]) -> None:
        async def send_all() -> None:
            for req in batch:
                codes[await _send(api, req)] += 1
        loop.run_until_complete(send_all())

    start = time.monotonic()
    try:
        loop.run_until_complete(setup())
        run()
    finally:
        loop.run_until_complete(api.client.close())
        loop.close()
    total = sum(codes.values())
    print(f"fuzz: {total} requests in {time.monotonic() - start:.1f}s: {sorted(codes.items())}")
    assert total >= 5000
    # the generator reaches the server's write paths, not only its decoders
    assert codes[201] >= 10 and codes[200] >= 200 and codes[422] >= 100 and codes[400] >= 100, codes
