"""Service ports and the ruleset state, from the caches: built in full, or patched per changed Service.

`StateBuilder` keeps what makes the next build cheap: each Service's ports (memoized by the
resourceVersions of the Service and its slices), the frontends of each service port, and the
`StateIndex` of who claims what in the last state. A full build and a patch give the same state
(tests/unit/proxy/test_incremental.py checks it over random event sequences).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from podnet.model.kinds import Obj
from podnet.proxy.patch import Memo, StateIndex
from podnet.proxy.serviceports import NodeFacts, ServicePortInfo, service_ports_for, slices_by_service
from podnet.proxy.state import RulesetState, build_state
from podnet.proxy.tracker import ChangeTracker

PortMemo = tuple[tuple[object, ...], list[ServicePortInfo], list[str]]  # (rv key, ports, problems)


def _rv_key(svc: Obj, slices: list[Obj]) -> tuple[object, ...]:
    return (svc["metadata"].get("resourceVersion"), *(s["metadata"].get("resourceVersion") for s in slices))


@dataclass
class StateBuilder:
    ports: dict[str, PortMemo] = field(default_factory=dict)  # Service key → its ports
    frontends: Memo = field(default_factory=dict)  # id(service port) → its frontends
    node: NodeFacts | None = None  # the node facts the memos were computed for
    index: StateIndex | None = None  # who claims what in the last state (None: rebuild)
    problem_services: set[str] = field(default_factory=set)  # Services whose ports have problems
    lb_services: set[str] = field(default_factory=set)  # Services with LoadBalancer ingress IPs

    def can_patch(self, node: NodeFacts) -> bool:
        return self.index is not None and node == self.node

    def full(self, node: NodeFacts, services: Mapping[str, Obj], slices: Mapping[str, Obj],
             previous: RulesetState | None) -> RulesetState:
        """The state from every Service (memoized per object)."""
        if node != self.node:
            self.ports.clear()
            self.frontends.clear()
            self.node = node
        by_svc = slices_by_service(slices.values())
        memo: dict[str, PortMemo] = {}
        all_ports: list[ServicePortInfo] = []
        for name in sorted(services):
            svc = services[name]
            svc_slices = by_svc.get(name, [])
            key = _rv_key(svc, svc_slices)
            hit = self.ports.get(name)
            if hit is None or hit[0] != key or key[0] is None:
                probs: list[str] = []
                hit = (key, service_ports_for(svc, by_svc, node, probs), probs)
            memo[name] = hit
            all_ports += hit[1]
        self.ports = memo
        new = build_state(all_ports, node, previous.svc_ids if previous else None, self.frontends)
        self.problem_services = {s for s, m in memo.items() if m[2]}
        self.lb_services = {s for s, m in memo.items() if any(sp.lb_ips for sp in m[1])}
        self.index = StateIndex.of(((s, memo[s][1]) for s in sorted(memo)), new, node, self.frontends)
        return new

    def patch(self, node: NodeFacts, state: RulesetState, dirty: set[str], services: Mapping[str, Obj],
              slices: Mapping[str, Obj], tracker: ChangeTracker, consume: bool = False) -> RulesetState:
        """`state` with only the `dirty` Services recomputed (the same result as `full`); `consume`:
        patched in place, see StateIndex.patch."""
        assert self.index is not None
        changes: dict[str, list[ServicePortInfo]] = {}
        for name in sorted(dirty):
            svc = services.get(name)
            self.problem_services.discard(name)
            self.lb_services.discard(name)
            if svc is None:
                self.ports.pop(name, None)
                changes[name] = []
                continue
            svc_slices = tracker.slices_of(name, slices)
            probs: list[str] = []
            ports = service_ports_for(svc, {name: svc_slices}, node, probs)
            self.ports[name] = (_rv_key(svc, svc_slices), ports, probs)
            if probs:
                self.problem_services.add(name)
            if any(sp.lb_ips for sp in ports):
                self.lb_services.add(name)
            changes[name] = ports
        return self.index.patch(state, changes, node, self.frontends, consume=consume)

    def problems(self) -> list[str]:
        return [p for s in sorted(self.problem_services) for p in self.ports[s][2]]

    def lb_ports(self) -> list[ServicePortInfo]:
        return [sp for s in sorted(self.lb_services) for sp in self.ports[s][1]]
