"""Incremental syncs (only changed Services recomputed, the state patched) == from-scratch builds."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxy_fixtures import ep, eslice, port, svc

from podnet.client.client import ApiClient
from podnet.client.informer import Informer, obj_key
from podnet.core.config import ClusterConfig
from podnet.model.kinds import Obj
from podnet.model.services import HEADLESS_LABEL
from podnet.proxy.fake import FakeNft, Packet
from podnet.proxy.metrics import ProxyMetrics
from podnet.proxy.render import render_full
from podnet.proxy.runner import ProxyRunner
from podnet.proxy.serviceports import ServicePortInfo, service_ports_for, slices_by_service
from podnet.proxy.state import RulesetState, build_state

NODE_IP = "172.31.5.11"
NAMES = ["a", "b", "c"]
IPS = ["10.244.1.1", "10.244.1.2", "10.244.2.1", "10.9.9.9"]  # the last one is bad


async def no_conntrack(_: list[list[str]]) -> None:
    return None


def new_runner() -> tuple[ProxyRunner, FakeNft]:
    nft = FakeNft()
    r = ProxyRunner(ApiClient("http://127.0.0.1:9"), "n1", NODE_IP, ClusterConfig(name="inc"), nft,
                    metrics=ProxyMetrics(), conntrack=no_conntrack)
    return r, nft


def deliver(inf: Informer, etype: str, obj: Obj) -> None:
    """What the Informer does for one watch event: update the cache, then call the handlers."""
    key = obj_key(obj)
    prev = inf.cache.get(key)
    if etype == "DELETED":
        inf.cache.pop(key, None)
    else:
        inf.cache[key] = obj
    for h in inf.handlers:
        h(etype, obj, prev)


def reference(r: ProxyRunner, previous: RulesetState | None) -> tuple[RulesetState, list[str]]:
    """The from-scratch build over the caches, in the runner's order (services by cache key)."""
    node = r.node_facts()
    by_svc = slices_by_service(list(r.slices.cache.values()))
    ports: list[ServicePortInfo] = []
    problems: list[str] = []
    for name in sorted(r.services.cache):
        ports += service_ports_for(r.services.cache[name], by_svc, node, problems)
    st = build_state(ports, node, previous.svc_ids if previous else None)
    return st, problems + st.problems


def service_obj(name: str, variant: int, rv: int) -> Obj:
    ports: list[dict[str, Any]] = [port(80, 8080), port(53, 53, "dns", "UDP")]
    kw: dict[str, Any] = {}
    type_ = "ClusterIP"
    cip = f"10.96.0.{NAMES.index(name) + 1}"
    if variant == 1:  # the same ClusterIP as service a: a frontend conflict
        cip = "10.96.0.1"
    elif variant == 2:
        type_, kw = "NodePort", {"externalIPs": ["172.31.5.200"]}
        ports = [port(80, 8080, node_port=30080), port(81, 8080, "alt", node_port=30081)]
    elif variant == 3:
        type_ = "LoadBalancer"
        kw = {"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000, "lb_ips": ["172.31.5.201"],
              "sessionAffinity": "ClientIP"}
        ports = [port(80, 8080, node_port=30090)]
    elif variant == 4:
        ports = [ports[0], {"name": "bad", "port": 0, "protocol": "TCP"}]  # a bad port: a problem
        kw = {"internalTrafficPolicy": "Local"}
    elif variant in (5, 6):  # issue 19 item 11: NodePort + ClientIP + ETP Local, TCP/80+UDP/80 <-> SCTP/80
        type_ = "NodePort"
        kw = {"externalTrafficPolicy": "Local", "sessionAffinity": "ClientIP", "healthCheckNodePort": 32001}
        ports = [port(80, 8080, "sctp", "SCTP", node_port=30100)]
        if variant == 5:
            ports = [port(80, 8080, node_port=30100), port(80, 53, "dns", "UDP", node_port=30100)]
    elif variant == 7:  # the same ports, ETP Cluster and another affinity timeout
        type_ = "NodePort"
        kw = {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}
        ports = [port(80, 8080, "sctp", "SCTP", node_port=30100), port(80, 53, "dns", "UDP", node_port=30100)]
    s = svc(name, cip, ports, type_=type_, **kw)
    s["metadata"]["resourceVersion"] = str(rv)
    return s


def slice_obj(owner: str, idx: int, ips: list[str], headless: bool, rv: int) -> Obj:
    eps = [ep(ip, "n1" if ip.startswith("10.244.1.") else "n2", ready=i % 3 != 2, pod=f"p{idx % 2}-{ip[-1]}")
           for i, ip in enumerate(ips)]
    sl_ports = [("", 8080, "TCP"), ("dns", 53, "UDP"), ("alt", 8080, "TCP"), ("sctp", 8080, "SCTP")]
    sl = eslice(owner, eps, sl_ports, name=f"sl{idx}")
    sl["metadata"]["resourceVersion"] = str(rv)
    if headless:
        sl["metadata"]["labels"][HEADLESS_LABEL] = ""
    return sl


service_op = st.tuples(st.just("svc"), st.sampled_from(NAMES), st.integers(0, 7), st.booleans())
slice_op = st.tuples(st.just("slice"), st.integers(0, 5), st.sampled_from(NAMES),
                     st.lists(st.sampled_from(IPS), max_size=4), st.booleans(), st.booleans())
node_op = st.tuples(st.just("node"), st.sampled_from(["10.244.2.0/24", "10.244.3.0/24"]))
ops = st.lists(st.lists(st.one_of(service_op, slice_op, node_op), min_size=1, max_size=4),
               min_size=1, max_size=8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=ops)
async def test_random_event_sequences_sync_to_the_from_scratch_state(batches: list[list[Any]]) -> None:
    r, nft = new_runner()
    rv = 1
    deliver(r.services, "ADDED", service_obj("a", 0, rv))
    await r.sync_once()
    node_changes = 0
    for batch in batches:
        for op in batch:
            rv += 1
            if op[0] == "svc":
                _, name, variant, delete = op
                if delete:
                    if name in [k.split("/")[1] for k in r.services.cache]:
                        deliver(r.services, "DELETED", r.services.cache[f"default/{name}"])
                else:
                    deliver(r.services, "MODIFIED", service_obj(name, variant, rv))
            elif op[0] == "slice":
                _, idx, owner, ips, headless, delete = op
                key = f"default/sl{idx}"
                if delete:
                    if key in r.slices.cache:
                        deliver(r.slices, "DELETED", r.slices.cache[key])
                else:
                    deliver(r.slices, "MODIFIED", slice_obj(owner, idx, ips, headless, rv))
            else:
                node_changes += 1
                node = {"metadata": {"name": "n2", "resourceVersion": str(rv)},
                        "spec": {"podCIDR": op[1], "podCIDRs": [op[1]]},
                        "status": {"addresses": [{"type": "InternalIP", "address": "172.31.5.12"}]}}
                deliver(r.nodes, "MODIFIED", node)
        await sync_and_compare(r, nft)
    if not node_changes:  # a node change takes the full path; anything else is patched
        assert r.patched_syncs == len(batches)


async def sync_and_compare(r: ProxyRunner, nft: FakeNft) -> None:
    st = r.state  # copied: the runner patches its state in place
    previous = None if st is None else RulesetState(st.cluster_cidr, dict(st.frontends), dict(st.svc_ids),
                                                    dict(st.pods), dict(st.health_checks),
                                                    service_cidr=st.service_cidr)
    await r.sync_once()
    want, want_problems = reference(r, previous)
    got = r.state
    assert got is not None
    assert (got.frontends, got.svc_ids, got.pods, got.health_checks, got.problems) == (
        want.frontends, want.svc_ids, want.pods, want.health_checks, want.problems)
    assert r.problems == want_problems
    assert (got.backend_counts, got.bypass_counts, got.affinity_timeouts) == (
        want.backend_counts, want.bypass_counts, want.affinity_timeouts)
    ref = FakeNft()
    ref.apply(render_full(want))
    for name, s in ref.table.sets.items():  # what the kernel holds after the deltas == a full render
        if name.startswith("affinity-") and not name.startswith("affinity-svcs"):
            continue
        assert {k: (e.data, e.comment) for k, e in nft.table.sets[name].elements.items()} == \
            {k: (e.data, e.comment) for k, e in s.elements.items()}, name


async def test_claims_change_hands_when_their_winner_goes() -> None:
    """Shared pod IPs and a shared ClusterIP: the first Service wins; when it goes, the next one does."""
    r, nft = new_runner()
    for name in ("a", "b", "c"):
        deliver(r.services, "ADDED", service_obj(name, 0 if name == "a" else 1, 1))
    await sync_and_compare(r, nft)
    assert len(r.problems) == 4  # b and c: ClusterIP 10.96.0.1 TCP and UDP taken by a
    for i, name in enumerate(("a", "b", "c")):
        deliver(r.slices, "ADDED", slice_obj(name, i, ["10.244.1.1", "10.244.2.1"], False, 2))
    await sync_and_compare(r, nft)
    assert r.state is not None and r.state.pods["10.244.1.1"] == "default/p0-1"
    deliver(r.services, "DELETED", r.services.cache["default/a"])
    await sync_and_compare(r, nft)
    assert r.state.pods["10.244.1.1"] == "default/p1-1"
    taken = ((80, "", "TCP"), (53, "dns", "UDP"))
    assert r.problems == [f"clusterIP 10.96.0.1:{p}/{proto} of default/c:{n}/{proto} is already used by "
                          f"default/b:{n}/{proto}: skipped" for p, n, proto in taken]
    assert nft.trace(Packet("10.244.1.9", "10.96.0.1", 80)).candidates == [("10.244.1.1", 8080),
                                                                           ("10.244.2.1", 8080)]
    assert r.metrics.partial_syncs == r.patched_syncs == 2


async def test_a_slice_moving_to_another_service_updates_both() -> None:
    r, nft = new_runner()
    for name in ("a", "b"):
        deliver(r.services, "ADDED", service_obj(name, 0, 1))
    deliver(r.slices, "ADDED", slice_obj("a", 0, ["10.244.1.1"], False, 2))
    await sync_and_compare(r, nft)
    assert nft.trace(Packet("10.244.1.9", "10.96.0.1", 80)).candidates == [("10.244.1.1", 8080)]
    deliver(r.slices, "MODIFIED", slice_obj("b", 0, ["10.244.1.1"], False, 3))
    await sync_and_compare(r, nft)
    assert nft.trace(Packet("10.244.1.9", "10.96.0.1", 80)).verdict == "reject"
    assert nft.trace(Packet("10.244.1.9", "10.96.0.2", 80)).candidates == [("10.244.1.1", 8080)]
    deliver(r.slices, "MODIFIED", slice_obj("b", 0, ["10.244.1.1"], True, 4))  # now headless-labelled
    await sync_and_compare(r, nft)
    assert nft.trace(Packet("10.244.1.9", "10.96.0.2", 80)).verdict == "reject"
    assert r.patched_syncs == 2


async def test_one_changed_slice_is_a_small_delta_and_traffic_follows() -> None:
    r, nft = new_runner()
    for i in range(50):
        s = svc(f"s{i}", f"10.96.1.{i + 1}", [port(80, 8080)])
        s["metadata"]["resourceVersion"] = "1"
        deliver(r.services, "ADDED", s)
        deliver(r.slices, "ADDED", eslice(f"s{i}", [ep("10.244.1.5", "n1"), ep("10.244.2.5", "n2")],
                                           [("", 8080, "TCP")]))
    await r.sync_once()
    deliver(r.slices, "MODIFIED", eslice("s7", [ep("10.244.2.5", "n2")], [("", 8080, "TCP")]))
    n = len(nft.applied)
    await r.sync_once()
    assert len(nft.applied) == n + 1 and "delete table" not in nft.applied[-1]
    assert r.metrics.partial_syncs == r.patched_syncs == 1
    assert nft.trace(Packet("10.244.1.9", "10.96.1.8", 80)).candidates == [("10.244.2.5", 8080)]
    assert len(nft.trace(Packet("10.244.1.9", "10.96.1.9", 80)).candidates) == 2
    deliver(r.services, "DELETED", r.services.cache["default/s7"])
    await r.sync_once()
    assert nft.trace(Packet("10.244.1.9", "10.96.1.8", 80)).verdict != "dnat"
    assert "default/s7:/TCP" not in (r.state.svc_ids if r.state else {})
    assert r.patched_syncs == 2


async def test_caches_replaced_wholesale_take_the_full_path() -> None:
    r, nft = new_runner()
    deliver(r.services, "ADDED", svc("web", "10.96.0.20", [port(80, 8080)]))
    await r.sync_once()
    assert nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).verdict == "reject"
    # a relist replaces the cache dict: the runner must notice it without any event
    r.slices.cache = {"default/web-abc": eslice("web", [ep("10.244.1.5", "n1")], [("", 8080, "TCP")])}
    await r.sync_once()
    assert r.patched_syncs == 0
    assert nft.trace(Packet("10.244.1.9", "10.96.0.20", 80)).candidates == [("10.244.1.5", 8080)]


def test_udp_flows_of_an_endpoint_still_used_elsewhere_are_kept() -> None:
    from proxy_fixtures import state_of

    from podnet.proxy.render import render_delta
    from podnet.proxy.runner import udp_conntrack_commands
    s = [svc(n, f"10.96.0.{i + 10}", [port(53, 53, "dns", "UDP")]) for i, n in enumerate(("d1", "d2"))]
    both = [ep("10.244.1.3", "n1"), ep("10.244.1.4", "n1")]
    dns = [("dns", 53, "UDP")]
    old = state_of(s, [eslice("d1", both, dns), eslice("d2", both, dns)])
    new = state_of(s, [eslice("d1", both[:1], dns), eslice("d2", both, dns)], previous=old)
    render_delta(old, new)
    assert udp_conntrack_commands(old, new) == []  # 10.244.1.4:53 still serves d2
    gone = state_of(s, [eslice("d1", both[:1], dns)], previous=new)
    render_delta(new, gone)
    assert udp_conntrack_commands(new, gone) == [
        ["-p", "udp", "--reply-src", "10.244.1.4", "--reply-port-src", "53"]]
