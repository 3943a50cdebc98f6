"""Bad input never yields a 500: mutated objects and patches across every resource and verb."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from api_support import Api, deployment, pod, service

SEED_OBJECTS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/namespaces/default/services", service("fz")),
    ("/api/v1/namespaces/default/pods", pod("fz", node="n1")),
    ("/apis/apps/v1/namespaces/default/deployments", deployment("fz")),
    ("/api/v1/namespaces/default/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "fz"}, "data": {"a": "b"}}),
    ("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fz"}}),
    ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fz"}}),
    ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
     {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "fz"},
      "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"port": 80}]}),
]

ODD_VALUES: list[Any] = [None, "", "x", -1, 0, 2**40, 1.5, True, [], [1, "a"], {}, {"a": {"b": None}},
                         "$patch", {"$patch": "delete"}, {"$patch": "bogus"}, [{"$patch": "replace"}],
                         "Ω" * 70]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(doc) if p[:2] != ("metadata", "name") and p != ("metadata",)]
        if not paths:
            break
        path = rng.choice(paths)
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return doc


async def _check(api: Api, method: str, path: str, body: Any, ctype: str = "application/json") -> int:
    code, answer = await api.call(method, path, body, ctype=ctype)
    assert code < 500, (method, path, json.dumps(body)[:300], answer)
    if code >= 400:
        assert isinstance(answer, dict) and answer["kind"] == "Status" and answer["message"], answer
    return code


async def test_mutated_bodies_and_patches_never_fail_with_500(api: Api) -> None:
    rng = random.Random(20261128)
    for coll, seed in SEED_OBJECTS:
        obj_path = f"{coll}/fz"
        assert await _check(api, "POST", coll, seed) == 201
        for _ in range(40):
            bad = _mutate(seed, rng)
            renamed = {**bad, "metadata": {**bad["metadata"], "name": "fz2"}} \
                if isinstance(bad.get("metadata"), dict) else bad
            code = await _check(api, "POST", coll, renamed)
            if code == 201:
                await api.call("DELETE", f"{coll}/fz2", {"gracePeriodSeconds": 0})
            await _check(api, "PUT", obj_path, bad)
            if "configmaps" not in coll and "endpointslices" not in coll:
                await _check(api, "PUT", obj_path + "/status", bad)
                await _check(api, "PATCH", obj_path + "/status", {"status": rng.choice(ODD_VALUES)},
                             "application/merge-patch+json")
            if "deployments" in coll:
                scale_patch = {"spec": {"replicas": rng.choice(ODD_VALUES)}}
                await _check(api, "PATCH", obj_path + "/scale", scale_patch, "application/merge-patch+json")
                await _check(api, "PUT", obj_path + "/scale", _mutate({"spec": {"replicas": 1}}, rng))
            await _check(api, "PATCH", obj_path, _mutate({"spec": seed.get("spec", {}),
                                                          "metadata": {"labels": {"a": "b"}}}, rng),
                         "application/strategic-merge-patch+json")
            await _check(api, "PATCH", obj_path, {"metadata": {"labels": rng.choice(ODD_VALUES)}},
                         "application/merge-patch+json")
            op = {"op": rng.choice(["add", "remove", "replace", "move", "x"]),
                  "path": "/" + "/".join(map(str, rng.choice(_paths(seed)))), "value": rng.choice(ODD_VALUES)}
            await _check(api, "PATCH", obj_path, [op], "application/json-patch+json")
        await _check(api, "DELETE", obj_path, {"gracePeriodSeconds": 0})
