"""The controllers running against the real API server (in-process, MemoryStore), as outside clients."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from podnet.allocators import LB_IP_ANNOTATION, ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient
from podnet.controllers.inprocess import InProcessClient
from podnet.controllers.runner import ControllerManager
from podnet.controllers.template_hash import compute_hash
from podnet.core.config import ClusterConfig
from podnet.model.kinds import (
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
    Obj,
)
from podnet.store.memory import MemoryStore

POOL = "172.31.5.200-172.31.5.201"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Env:
    def __init__(self, client: ApiClient, mgr: ControllerManager):
        self.client = client
        self.mgr = mgr

    async def until(self, fn: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while loop.time() < deadline:
            last = await fn()
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(params=["http", "inprocess"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """The controllers as an outside client over HTTP, and as `podnet controlplane` runs them (calling
    the server's registry in-process): every test here must pass both ways."""
    store = MemoryStore()
    hooks = ServiceHooks("10.96.0.0/12", (30000, 32767), POOL)
    await hooks.load(store)
    server = APIServer(store, hooks={"services": hooks})
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    client = ApiClient(f"http://127.0.0.1:{port}")
    ctl = client if request.param == "http" else InProcessClient(server, f"http://127.0.0.1:{port}")
    config = ClusterConfig(name="t", lb_pool=POOL, node_grace_seconds=3)
    mgr = ControllerManager(ctl, config, node_check_seconds=0.2)
    try:
        await mgr.start()
        yield Env(client, mgr)
    finally:
        await mgr.stop()
        await client.close()
        await ctl.close()
        await server.stop()
        await store.close()


def node(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}}


async def play_agent(env: Env, pod: Obj, ip: str, ready: bool = True) -> None:
    """What a node agent does once the pod runs: phase, IP, Ready condition."""
    pod = await env.client.get(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                     "lastTransitionTime": now()}]}
    await env.client.update_status(PODS, pod)


async def test_deployment_to_ready_endpoints_end_to_end(env: Env) -> None:
    c = env.client
    for n in ("node-1", "node-2", "node-3"):
        await c.create(NODES, node(n))

    async def cidrs() -> Any:
        items = (await c.list(NODES))["items"]
        got = sorted((i.get("spec") or {}).get("podCIDR", "") for i in items)
        return got if all(got) else None
    assert await env.until(cidrs, "podCIDRs") == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]

    await c.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{
                                  "name": "c", "image": "busybox",
                                  "ports": [{"name": "http", "containerPort": 8080}]}]}}}})

    async def bound_pods() -> Any:
        items = (await c.list(PODS, "default"))["items"]
        ok = len(items) == 3 and all(p["spec"].get("nodeName") for p in items)
        return items if ok else None
    pods = await env.until(bound_pods, "3 scheduled pods")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["node-1", "node-2", "node-3"]  # spread
    assert all(p["metadata"]["labels"].get("pod-template-hash") for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)

    await c.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                              "spec": {"selector": {"app": "web"},
                                       "ports": [{"port": 80, "targetPort": "http"}]}})
    for i, p in enumerate(pods):
        await play_agent(env, p, f"10.244.{i}.5", ready=(i != 2))

    async def slice_ready() -> Any:
        items = (await c.list(ENDPOINTSLICES, "default",
                              label_selector="kubernetes.io/service-name=web"))["items"]
        eps = [e for s in items for e in s.get("endpoints") or []]
        return items if len(eps) == 3 else None
    slices = await env.until(slice_ready, "endpoint slice with 3 endpoints")
    assert len(slices) == 1
    ready = sorted(e["addresses"][0] for e in slices[0]["endpoints"] if e["conditions"]["ready"])
    assert ready == ["10.244.0.5", "10.244.1.5"]
    assert slices[0]["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]

    async def endpoints() -> Any:
        try:
            ep = await c.get(ENDPOINTS, "web", "default")
        except Exception:
            return None
        subs = ep.get("subsets") or []
        return ep if subs and len(subs[0].get("notReadyAddresses") or []) == 1 else None
    ep = await env.until(endpoints, "Endpoints with a not-ready address")
    assert sorted(a["ip"] for a in ep["subsets"][0]["addresses"]) == ["10.244.0.5", "10.244.1.5"]

    async def dep_status() -> Any:
        d = await c.get(DEPLOYMENTS, "web", "default")
        st = d.get("status") or {}
        return d if st.get("readyReplicas") == 2 and st.get("updatedReplicas") == 3 else None
    d = await env.until(dep_status, "deployment status")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    events = (await c.list(EVENTS, "default"))["items"]
    reasons = {e["reason"] for e in events}
    assert {"ScalingReplicaSet", "SuccessfulCreate", "Scheduled"} <= reasons
    created = [e["message"] for e in events if e["reason"] == "SuccessfulCreate"]
    assert all(m.startswith("Created pod: web-") and "{name}" not in m for m in created)


async def test_load_balancer_external_ip_pending_and_retry(env: Env) -> None:
    c = env.client
    svc = await c.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                                    "spec": {"type": "LoadBalancer", "selector": {"app": "lb"},
                                             "ports": [{"port": 80}]}})
    assert svc["metadata"]["annotations"][LB_IP_ANNOTATION] == "172.31.5.200"

    async def ingress() -> Any:
        s = await c.get(SERVICES, "lb", "default")
        return (s.get("status") or {}).get("loadBalancer", {}).get("ingress")
    assert await env.until(ingress, "LB ingress") == [{"ip": "172.31.5.200", "ipMode": "VIP"}]

    # fill the pool: the third Service stays <pending> with a Warning event
    await c.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb2"},
                              "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    third = await c.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb3"},
                                      "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    assert LB_IP_ANNOTATION not in (third["metadata"].get("annotations") or {})

    async def warned() -> Any:
        evs = (await c.list(EVENTS, "default"))["items"]
        return [e for e in evs if e["reason"] == "AllocationFailed"
                and e["involvedObject"]["name"] == "lb3"]
    [ev] = await env.until(warned, "AllocationFailed event")
    assert ev["type"] == "Warning" and "172.31.5.200-172.31.5.201" in ev["message"]

    # an IP comes free: the pending Service gets it without anyone touching it
    await c.delete(SERVICES, "lb", "default")

    async def lb3_ingress() -> Any:
        s = await c.get(SERVICES, "lb3", "default")
        return (s.get("status") or {}).get("loadBalancer", {}).get("ingress")
    got = await env.until(lb3_ingress, "lb3 ingress", timeout=15)
    assert got == [{"ip": "172.31.5.200", "ipMode": "VIP"}]


async def test_unschedulable_pod_gets_condition_and_event(env: Env) -> None:
    c = env.client
    await c.create(NODES, node("only"))
    await c.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "picky"},
                          "spec": {"nodeSelector": {"disk": "ssd"},
                                   "containers": [{"name": "c", "image": "busybox"}]}})

    async def cond() -> Any:
        p = await c.get(PODS, "picky", "default")
        return next((x for x in (p.get("status") or {}).get("conditions") or []
                     if x["type"] == "PodScheduled"), None)
    got = await env.until(cond, "PodScheduled condition")
    assert got["status"] == "False" and got["reason"] == "Unschedulable"
    assert got["message"].startswith("0/1 nodes are available: 1 node(s) didn't match Pod's node "
                                     "affinity/selector.")


async def test_node_that_stops_heartbeating_goes_unknown_and_pods_not_ready(env: Env) -> None:
    c = env.client
    n = node("quiet")
    n["status"]["conditions"][0]["lastHeartbeatTime"] = "2020-01-01T00:00:00Z"
    await c.create(NODES, n)
    await c.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "there"},
                          "spec": {"nodeName": "quiet", "containers": [{"name": "c", "image": "busybox"}]}})
    await play_agent(env, {"metadata": {"name": "there", "namespace": "default"}}, "10.244.0.9")

    async def unknown() -> Any:
        got = await c.get(NODES, "quiet")
        ready = next(x for x in got["status"]["conditions"] if x["type"] == "Ready")
        taints = {t["key"] for t in got["spec"].get("taints") or []}
        return got if ready["status"] == "Unknown" and "node.kubernetes.io/unreachable" in taints else None
    await env.until(unknown, "node Ready=Unknown with unreachable taint")

    async def pod_not_ready() -> Any:
        p = await c.get(PODS, "there", "default")
        r = next(x for x in p["status"]["conditions"] if x["type"] == "Ready")
        return r["status"] == "False"
    assert await env.until(pod_not_ready, "pod Ready=False")


async def fake_agents(env: Env, stop: asyncio.Event) -> None:
    """Every node's agent in one loop: bound pods start (IP + Ready); terminating pods are finalized."""
    c = env.client
    seq = 0
    while not stop.is_set():
        for p in (await c.list(PODS, "default"))["items"]:
            meta = p["metadata"]
            if meta.get("deletionTimestamp"):
                try:
                    await c.delete(PODS, meta["name"], "default", grace_period=0)
                except Exception:
                    pass
            elif p["spec"].get("nodeName") and not (p.get("status") or {}).get("podIP"):
                seq += 1
                try:
                    await play_agent(env, p, f"10.244.9.{seq % 250 + 1}")
                except Exception:
                    pass
        await asyncio.sleep(0.05)


async def test_rolling_update_through_the_api(env: Env) -> None:
    c = env.client
    await c.create(NODES, node("node-1"))
    await c.create(NODES, node("node-2"))
    stop = asyncio.Event()
    agents = asyncio.create_task(fake_agents(env, stop))
    try:
        await c.create(DEPLOYMENTS, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "app"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "app"}},
                                  "spec": {"containers": [{"name": "c", "image": "v1"}]}}}})

        async def rolled_out(image: str) -> Any:
            d = await c.get(DEPLOYMENTS, "app", "default")
            st = d.get("status") or {}
            pods = [p for p in (await c.list(PODS, "default"))["items"]
                    if not p["metadata"].get("deletionTimestamp")]
            images = {p["spec"]["containers"][0]["image"] for p in pods}
            done = (st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
                    and st.get("updatedReplicas") == st.get("replicas") == st.get("availableReplicas") == 3
                    and images == {image} and len(pods) == 3)
            return d if done else None
        d = await env.until(lambda: rolled_out("v1"), "first rollout", timeout=15)
        prog = next(x for x in d["status"]["conditions"] if x["type"] == "Progressing")
        assert prog["reason"] == "NewReplicaSetAvailable"

        d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
        await c.update(DEPLOYMENTS, d)
        d = await env.until(lambda: rolled_out("v2"), "rolling update to v2", timeout=20)
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        rss = (await c.list(REPLICASETS, "default"))["items"]
        assert sorted(r["spec"]["replicas"] for r in rss) == [0, 3]
    finally:
        stop.set()
        await agents


T_SLICES = "kubernetes.io/service-name=t"


async def test_terminating_pod_stays_in_slice_as_terminating(env: Env) -> None:
    c = env.client
    await c.create(NODES, node("n1"))
    await c.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "t"},
                              "spec": {"selector": {"app": "t"}, "ports": [{"port": 80}]}})
    await c.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": "t-0", "labels": {"app": "t"}},
                          "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}})
    await play_agent(env, {"metadata": {"name": "t-0", "namespace": "default"}}, "10.244.0.7")

    async def conditions() -> Any:
        items = (await c.list(ENDPOINTSLICES, "default", label_selector=T_SLICES))["items"]
        eps = [e for s in items for e in s.get("endpoints") or []]
        return eps[0]["conditions"] if len(eps) == 1 else None
    assert await env.until(conditions, "ready endpoint") == {"ready": True, "serving": True,
                                                              "terminating": False}

    await c.delete(PODS, "t-0", "default")  # bound: graceful, the pod stays until its agent stops it

    async def terminating() -> Any:
        got = await conditions()
        return got if got and got["terminating"] else None
    assert await env.until(terminating, "terminating endpoint") == {
        "ready": False, "serving": True, "terminating": True}

    async def endpoints_dropped() -> Any:
        ep = await c.get(ENDPOINTS, "t", "default")
        return not any(s.get("addresses") for s in ep.get("subsets") or [])
    assert await env.until(endpoints_dropped, "Endpoints without the terminating pod")

    await c.delete(PODS, "t-0", "default", grace_period=0)  # the agent finalizes

    async def gone() -> Any:
        items = (await c.list(ENDPOINTSLICES, "default", label_selector=T_SLICES))["items"]
        return items if items and not any(s.get("endpoints") for s in items) else None
    assert len(await env.until(gone, "empty placeholder slice")) == 1


async def test_replicaset_name_collision_bumps_collision_count(env: Env) -> None:
    c = env.client
    await c.create(DEPLOYMENTS, {"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": "col", "namespace": "default"},
                                 "spec": {"replicas": 1, "paused": True,
                                          "selector": {"matchLabels": {"app": "col"}},
                                          "template": {
                                              "metadata": {"labels": {"app": "col"}},
                                              "spec": {"containers": [{"name": "c", "image": "v1"}]}}}})
    d = await c.get(DEPLOYMENTS, "col", "default")
    taken = f"col-{compute_hash(d['spec']['template'])}"  # the name the (defaulted) template hashes to
    await c.create(REPLICASETS, {  # someone else's ReplicaSet already holds it
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": taken, "namespace": "default"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"other": "x"}},
                 "template": {"metadata": {"labels": {"other": "x"}},
                              "spec": {"containers": [{"name": "c", "image": "other"}]}}}})
    await c.patch(DEPLOYMENTS, "col", {"spec": {"paused": False}}, "default")

    async def own_rs() -> Any:
        items = (await c.list(REPLICASETS, "default"))["items"]
        mine = [r for r in items if (r["metadata"].get("ownerReferences") or [{}])[0].get("name") == "col"]
        return mine or None
    [rs] = await env.until(own_rs, "the deployment's own ReplicaSet")
    assert rs["metadata"]["name"] != taken
    d = await c.get(DEPLOYMENTS, "col", "default")
    assert d["status"]["collisionCount"] == 1
    assert rs["metadata"]["name"] == f"col-{compute_hash(d['spec']['template'], 1)}"


async def test_orphan_pod_wakes_the_replicaset_that_selects_it(env: Env) -> None:
    c = env.client
    await c.create(REPLICASETS, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "zero", "namespace": "default"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "zero"}},
                 "template": {"metadata": {"labels": {"app": "zero"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})

    async def observed() -> Any:
        rs = await c.get(REPLICASETS, "zero", "default")
        return rs if (rs.get("status") or {}).get("observedGeneration") == 1 else None
    await env.until(observed, "the ReplicaSet's first status")

    # a bare pod the ReplicaSet's selector matches: adopted, and then one too many for replicas 0
    await c.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": "orphan", "namespace": "default", "labels": {"app": "zero"}},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}})

    async def deleted_event() -> Any:
        events = (await c.list(EVENTS, "default"))["items"]
        return [e for e in events if e["reason"] == "SuccessfulDelete"] or None
    [ev] = await env.until(deleted_event, "the ReplicaSet deleting the adopted pod")
    assert ev["message"] == "Deleted pod: orphan"
    assert ev["involvedObject"]["kind"] == "ReplicaSet" and ev["involvedObject"]["name"] == "zero"
