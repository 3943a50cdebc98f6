"""Compact cache copies (proxy/compact.py): the proxy builds exactly the same service ports from them
as from the objects the API serves, and they are a fraction of the size."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from proxy_fixtures import NODE1, ep, eslice, port, svc
from test_incremental import IPS, service_obj, slice_obj

from podnet.dns.envvars import pod_service_env_vars
from podnet.model.kinds import Obj
from podnet.proxy.compact import compact_service, compact_slice
from podnet.proxy.serviceports import service_ports_for, slices_by_service


def as_from_api(obj: Obj, i: int) -> Obj:
    """The object with what the API adds: uid, timestamps, managedFields, owner references."""
    o = copy.deepcopy(obj)
    meta = o["metadata"]
    managed = [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {}}}]
    meta.update({"uid": f"0c5a4b7e-{i:04d}-4f1e-9a53-1b2c3d4e5f60",
                 "creationTimestamp": "2026-12-06T11:00:00Z", "generation": 1, "managedFields": managed})
    meta.setdefault("labels", {})["app"] = "web"
    meta.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(obj)
    if o.get("kind") == "EndpointSlice":
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Service", "name": "x", "uid": "u",
                                    "controller": True}]
        for e in o.get("endpoints") or []:
            if "targetRef" in e:
                e["targetRef"]["uid"] = f"pod-uid-{i}"
    else:
        o["spec"].update({"selector": {"app": "web"}, "ipFamilies": ["IPv4"],
                          "ipFamilyPolicy": "SingleStack"})
    return o


def ports_of(services: list[Obj], slices: list[Obj]) -> tuple[list[Any], list[str]]:
    by_svc = slices_by_service(slices)
    problems: list[str] = []
    out = [service_ports_for(s, by_svc, NODE1, problems) for s in services]
    return out, problems


def test_the_proxy_builds_the_same_ports_from_compact_copies() -> None:
    services = [as_from_api(service_obj(name, variant, 1), i)
                for i, (name, variant) in enumerate((n, v) for n in ("a", "b", "c") for v in range(5))]
    slices = [as_from_api(slice_obj(owner, i, IPS[: 1 + i % 4], i == 4, 1), i)
              for i, owner in enumerate(("a", "b", "c", "a", "b"))]
    odd = svc("odd", "10.96.0.9", [port(80, 8080), {"name": "bad", "port": "x"}],
              type_="LoadBalancer", lb_ips=["172.31.5.201", "bad"], loadBalancerSourceRanges=["10.0.0.0/8"],
              sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    odd_slice = eslice("odd", [ep("10.244.1.7", "n1", ready=False, serving=True, terminating=True),
                               {"addresses": ["10.244.1.8", "10.244.1.9"], "conditions": {"ready": None}},
                               {"addresses": []}, {"addresses": ["10.9.9.9"], "nodeName": "n1"}],
                       [("", 8080, "TCP"), ("bad", 0, "TCP")], name="odd-1")
    services.append(as_from_api(odd, 99))
    slices.append(as_from_api(odd_slice, 99))
    want = ports_of(services, slices)
    got = ports_of([compact_service(s) for s in services], [compact_slice(s) for s in slices])
    assert got == want
    assert any(sp.endpoints for ports in want[0] for sp in ports) and want[1]  # not a vacuous comparison
    pod: Obj = {"metadata": {"name": "p", "namespace": "default"}, "spec": {}}
    valid = services[:-1]  # the environment variables are made from valid Services only
    assert pod_service_env_vars(pod, [compact_service(s) for s in valid]) == pod_service_env_vars(pod, valid)


def test_compact_copies_are_small() -> None:
    s = as_from_api(service_obj("a", 3, 1), 1)
    sl = as_from_api(slice_obj("a", 0, IPS[:3], False, 1), 1)
    full = len(json.dumps(s)) + len(json.dumps(sl))
    small = len(json.dumps(compact_service(s))) + len(json.dumps(compact_slice(sl)))
    assert small < 0.35 * full, (small, full)


def test_only_strings_of_few_values_are_interned() -> None:
    """Names, clusterIPs, endpoint addresses and pod keys die with their objects: interning them made
    the interpreter's table of interned strings churn and, once, double (BENCHMARKS.md, the soak).
    Namespaces, protocols, port names and node names repeat across objects and are shared."""
    def decoded(obj: Obj) -> Obj:  # as the informer gets it: fresh strings from the JSON decoder
        out: Obj = json.loads(json.dumps(obj))
        return out

    a = compact_service(decoded(svc("soak-a", "10.96.7.7", [port(80, 8080, name="web")])))
    b = compact_service(decoded(svc("soak-b", "10.96.7.8", [port(80, 8080, name="web")])))
    sl = compact_slice(decoded(eslice("soak-a", [ep("10.244.1.77", "node-1")], [("web", 8080, "TCP")],
                                      name="soak-a-x7k2p")))
    per_object = [a["metadata"]["name"], a["spec"]["clusterIP"], sl["metadata"]["name"],
                  sl["metadata"]["labels"]["kubernetes.io/service-name"], sl["endpoints"][0]["addresses"][0],
                  sl["endpoints"][0]["podnet.pod"]]
    assert per_object == ["soak-a", "10.96.7.7", "soak-a-x7k2p", "soak-a", "10.244.1.77",
                          "default/pod-10-244-1-77"]
    for s in per_object:
        assert sys.intern("".join(s)) is not s, s  # not the interned copy
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"] is sl["metadata"]["namespace"]
    assert a["spec"]["ports"][0]["name"] is b["spec"]["ports"][0]["name"] is sl["ports"][0]["name"]
    assert sl["ports"][0]["protocol"] is sys.intern("TCP")
    assert sl["endpoints"][0]["nodeName"] is sys.intern("node-1")
