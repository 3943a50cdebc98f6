"""Which NetworkPolicy rule allows a packet, or which policies drop it — read from the policy table
itself (`nft list table ip podnet-policy`, or the text `render_full` produced), never from the
objects, so the answer is what the kernel does.

`parse_table(text)` reads the listing into sets, maps, chains and counters; `judge(table, ...)`
walks the packet through the same steps as the kernel: conntrack aside, a pod to itself passes,
then the sender's egress class chain (on the sender's node), then the receiver's ingress class
chain (on the receiver's node). Only the rule shapes `render` writes are understood.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

PROTO_NUMS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}

Range = tuple[int, int]


@dataclass
class Table:
    sets: dict[str, list[tuple[Range | str, ...]]] = field(default_factory=dict)
    maps: dict[str, dict[int, str]] = field(default_factory=dict)  # map → ip → chain
    chains: dict[str, list[str]] = field(default_factory=dict)
    counters: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # name → packets, bytes, comment


def _ip_range(text: str) -> Range:
    if "/" in text:
        net = ipaddress.IPv4Network(text, strict=False)
        return int(net.network_address), int(net.broadcast_address)
    if "-" in text:
        lo, hi = text.split("-", 1)
        return int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi))
    v = int(ipaddress.IPv4Address(text))
    return v, v


def _component(text: str) -> Range | str:
    text = text.strip()
    if text in PROTO_NUMS:
        return text
    if re.fullmatch(r"\d+(-\d+)?", text):
        lo, _, hi = text.partition("-")
        return int(lo), int(hi or lo)
    return _ip_range(text)


def _split_elements(body: str) -> list[str]:
    return [e.strip() for e in body.replace("\n", " ").split(",") if e.strip()]


_BLOCK = re.compile(r"^\s*(set|map|chain|counter) (\S+) \{(.*?)^\s*\}", re.S | re.M)


def parse_table(text: str) -> Table:
    t = Table()
    for kind, name, body in _BLOCK.findall(text):
        if kind == "counter":
            m = re.search(r"packets (\d+) bytes (\d+)", body)
            c = re.search(r'comment "([^"]*)"', body)
            packets, nbytes = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
            t.counters[name] = (packets, nbytes, c.group(1) if c else "")
            continue
        if kind == "chain":
            lines = [ln.strip().rstrip(";") for ln in body.splitlines() if ln.strip()]
            t.chains[name] = [ln for ln in lines if not ln.startswith("type ")]
            continue
        m = re.search(r"elements = \{(.*?)\}", body, re.S)
        elems = _split_elements(m.group(1)) if m else []
        if kind == "map":
            t.maps[name] = {}
            for e in elems:
                key, _, verdict = e.partition(":")
                t.maps[name][_ip_range(key.strip())[0]] = verdict.strip().split()[-1]
        else:
            t.sets[name] = [tuple(_component(c) for c in e.split(" . ")) for e in elems]
    return t


@dataclass(frozen=True)
class Packet:
    src: str
    dst: str
    proto: str  # tcp, udp, sctp
    port: int

    def value(self, expr: str) -> int | str:
        if expr == "ip saddr":
            return int(ipaddress.IPv4Address(self.src))
        if expr == "ip daddr":
            return int(ipaddress.IPv4Address(self.dst))
        if expr == "meta l4proto":
            return self.proto
        if expr == "th dport":
            return self.port
        if expr.endswith(" dport"):  # nft lists `meta l4proto tcp ... th dport` as `tcp dport`
            return self.port if expr.split()[0] == self.proto else -1
        raise ValueError(f"unknown expression {expr!r}")


def _in(elem: tuple[Range | str, ...], values: list[int | str]) -> bool:
    if len(elem) != len(values):
        return False
    for comp, v in zip(elem, values, strict=True):
        if isinstance(comp, str) or isinstance(v, str):
            if str(comp) != str(v) and not (isinstance(comp, tuple) and PROTO_NUMS.get(str(v)) == comp[0]):
                return False
        elif not comp[0] <= v <= comp[1]:
            return False
    return True


_EXPR = r"(?:ip saddr|ip daddr|meta l4proto|th dport|tcp dport|udp dport|sctp dport)"
_MATCH = re.compile(rf"({_EXPR}(?: \. {_EXPR})*) (@\S+|tcp|udp|sctp)")


@dataclass(frozen=True)
class RuleResult:
    matched: bool
    verdict: str  # accept, return, drop, "" (no verdict)
    comment: str


def eval_rule(table: Table, rule: str, pkt: Packet) -> RuleResult:
    comment = ""
    cm = re.search(r'comment "([^"]*)"', rule)
    if cm:
        comment = cm.group(1)
        rule = rule[:cm.start()]
    verdict = next((v for v in ("goto", "accept", "return", "drop")
                    if re.search(rf"(?<![-\w\"]){v}(?![-\w])", rule)), "")
    for exprs, target in _MATCH.findall(rule):
        values = [pkt.value(e.strip()) for e in exprs.split(" . ")]
        if target.startswith("@"):
            elems = table.sets.get(target[1:], [])
            if not any(_in(e, values) for e in elems):
                return RuleResult(False, verdict, comment)
        elif values != [target]:
            return RuleResult(False, verdict, comment)
    return RuleResult(True, verdict, comment)


@dataclass(frozen=True)
class Step:
    direction: str  # egress, ingress
    chain: str
    verdict: str  # allowed, dropped, not-isolated
    rule: str  # the allowing rule's comment ("ns/name ingress[0]") or the drop rule's
    policies: tuple[str, ...] = ()
    tier: str = ""  # who decided: "AdminNetworkPolicy", "NetworkPolicy", "BaselineAdminNetworkPolicy", ""
    passed: str = ""  # the comment of the ANP Pass rule that handed the packet to NetworkPolicy


@dataclass(frozen=True)
class AdminRule:
    """An ANP/BANP rule as its nft comment names it: "ANP Allow ingress[0] policy-name rule name"."""

    kind: str  # AdminNetworkPolicy, BaselineAdminNetworkPolicy
    policy: str
    where: str  # ingress[0]
    name: str
    action: str

    @classmethod
    def parse(cls, comment: str) -> AdminRule:
        parts = comment.split(" ")
        if len(parts) < 4 or parts[0] not in ("ANP", "BANP"):
            return cls("", "", "", comment, "")
        kind = "AdminNetworkPolicy" if parts[0] == "ANP" else "BaselineAdminNetworkPolicy"
        return cls(kind, parts[3], parts[2], " ".join(parts[4:]), parts[1])

    def text(self) -> str:
        rule = f'rule "{self.name}"' if self.name else "rule"
        return f"{self.kind} {self.policy} {rule} ({self.where}, {self.action})"


def _policies_of(table: Table, chain: str) -> tuple[str, ...]:
    last = table.chains.get(chain, [""])[-1]
    names = re.findall(r'counter name "?(drop-[a-z]+-[0-9a-f]+)"?', last)
    out = [table.counters.get(n, (0, 0, n))[2].rsplit(" ", 1)[0] for n in names]
    return tuple(out)


ANP, NP, BANP = "AdminNetworkPolicy", "NetworkPolicy", "BaselineAdminNetworkPolicy"


def judge_direction(table: Table, direction: str, pkt: Packet) -> Step:
    """One side's verdict, in the kernel's order: the pod's AdminNetworkPolicies (Allow / Deny decide,
    Pass hands over), then its NetworkPolicy class, then (only when no NetworkPolicy selects the pod
    in this direction) the BaselineAdminNetworkPolicy; nothing matched: allowed."""
    ip = int(ipaddress.IPv4Address(pkt.src if direction == "egress" else pkt.dst))
    passed = ""
    chain = table.maps.get(f"anp-{direction}-class", {}).get(ip)
    for rule in table.chains.get(chain or "", []):
        res = eval_rule(table, rule, pkt)
        if not res.matched:
            continue
        if res.verdict in ("accept", "return", "drop"):
            verdict = "dropped" if res.verdict == "drop" else "allowed"
            return Step(direction, chain or "", verdict, res.comment, tier=ANP)
        if res.verdict == "goto":
            passed = res.comment
            break
    chain = table.maps.get(f"{direction}-class", {}).get(ip)
    if chain is not None:
        for rule in table.chains.get(chain, []):
            res = eval_rule(table, rule, pkt)
            if not res.matched:
                continue
            if res.verdict in ("accept", "return"):
                return Step(direction, chain, "allowed", res.comment, _policies_of(table, chain), NP, passed)
            if res.verdict == "drop":
                return Step(direction, chain, "dropped", res.comment, _policies_of(table, chain), NP, passed)
        return Step(direction, chain, "allowed", "", _policies_of(table, chain), NP, passed)
    chain = table.maps.get(f"banp-{direction}-class", {}).get(ip)
    for rule in table.chains.get(chain or "", []):
        res = eval_rule(table, rule, pkt)
        if res.matched and res.verdict in ("accept", "return", "drop"):
            verdict = "dropped" if res.verdict == "drop" else "allowed"
            return Step(direction, chain or "", verdict, res.comment, tier=BANP, passed=passed)
    return Step(direction, "", "not-isolated", "", passed=passed)


def is_self(table: Table, pkt: Packet) -> bool:
    return any(_in(e, [pkt.value("ip saddr"), pkt.value("ip daddr")]) for e in table.sets.get("self", []))


def describe(step: Step, pkt: Packet, names: dict[str, str] | None = None) -> str:
    """One line a person reads: which rule allowed it, or who drops it and why."""
    names = names or {}
    src, dst = names.get(pkt.src, pkt.src), names.get(pkt.dst, pkt.dst)
    pod, peer, word = (src, dst, "to") if step.direction == "egress" else (dst, src, "from")
    what = f"{pkt.proto.upper()} port {pkt.port} {word} {peer}"
    before = f"passed by {AdminRule.parse(step.passed).text()}, then " if step.passed else ""
    if step.tier in (ANP, BANP):
        rule = AdminRule.parse(step.rule).text()
        if step.verdict == "allowed":
            return f"{step.direction}: {before}allowed by {rule}"
        return f"{step.direction}: {before}dropped by {rule}: pod {pod}, {what}"
    if step.verdict == "not-isolated":
        return (f"{step.direction}: {before}allowed: pod {pod} is selected by no policy for {step.direction}"
                + (" and no BaselineAdminNetworkPolicy rule matches" if before else ""))
    if step.verdict == "allowed":
        return f"{step.direction}: {before}allowed by {step.rule}"
    return (f"{before}dropped: pod {pod} is selected by policies {', '.join(step.policies)} in direction "
            f"{step.direction} and none allows {what}")
