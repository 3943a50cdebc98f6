"""RuleInterpreter: podnet's nftables rules held in memory and evaluated for one packet.

`apply(text)` parses a transaction (all or nothing, like the kernel) into the model of
nft_model.py; `trace(packet)` walks a NEW connection's first packet through the hooks and
the node's routing decisions and says which chain/rule/map element matched, the candidate
endpoints, DNAT, masquerade and the verdict. `podnet trace` feeds it the live rules of a node
(`nft list table`); real-kernel tests check it decides as the kernel does. The test double
`FakeNft` (fake.py) is a thin user of it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from podnet.proxy.nft import NftError
from podnet.proxy.nft_model import Chain, Elem, ParseError, Parser, Table, norm
from podnet.proxy.render import FAMILY, TABLE

PROTO_NUM = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}


@dataclass
class Packet:
    src: str
    dst: str
    dport: int
    proto: str = "tcp"
    sport: int = 40000
    entry: str = "in"  # "in": arrives on an interface (prerouting); "local": sent by the node itself (output)


@dataclass
class TraceStep:
    hook: str
    chain: str
    rule: str
    note: str = ""

    def __str__(self) -> str:
        where = f"[{self.hook}] {self.chain}:" if self.chain else f"[{self.hook}]"
        return f"{where} {self.rule}" + (f"  ({self.note})" if self.note else "")


@dataclass
class TraceResult:
    verdict: str  # accept / drop / reject / unreachable (the node has no route for the destination)
    steps: list[TraceStep] = field(default_factory=list)
    service: str = ""  # the matched frontend's comment, e.g. "default/web:http/TCP clusterIP"
    candidates: list[tuple[str, int]] = field(default_factory=list)
    dnat: tuple[str, int] | None = None  # the target chosen in this walk (candidate 0)
    masquerade: bool = False  # for the chosen target
    masquerade_by_candidate: dict[tuple[str, int], bool] = field(default_factory=dict)
    sticky: bool = False  # session affinity is on for this service
    delivered: str = ""  # "local" (input hook) or "forward"
    reject_with: str = ""


class _Stop(Exception):
    def __init__(self, verdict: str, how: str = ""):
        self.verdict = verdict
        self.how = how


@dataclass
class _State:
    pkt: Packet
    ct_mark: int = 0
    meta_mark: int = 0
    dnat: tuple[str, int] | None = None
    masq: bool = False
    choice: int = 0
    candidates: list[tuple[str, int]] = field(default_factory=list)
    service: str = ""
    sticky: bool = False
    local_ips: tuple[str, ...] = ()
    devices: dict[str, str] | None = None  # route destination (CIDR) → its device; None: unknown

    def device(self, ip: str) -> str:
        """The device the node routes `ip` through (the most specific route). Without the node's
        routes, every address is taken to have a device of its own, as a pod has (its veth)."""
        if self.devices is None:
            return ip
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            return f"? {ip}"
        best, dev = -1, f"? {ip}"
        for dst, d in self.devices.items():
            net = ipaddress.IPv4Network("0.0.0.0/0" if dst == "default" else dst, strict=False)
            if addr in net and net.prefixlen > best:
                best, dev = net.prefixlen, d
        return dev

    @property
    def daddr(self) -> str:
        return self.dnat[0] if self.dnat else self.pkt.dst

    @property
    def dport(self) -> int:
        return self.dnat[1] if self.dnat else self.pkt.dport


class RuleInterpreter:
    """podnet's nftables table(s) in memory: transactions applied, packets traced."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], Table] = {}

    def apply(self, text: str) -> None:
        """Apply one `nft -f` transaction: all or nothing, NftError on any error (as the kernel)."""
        try:
            self.tables = Parser(self.tables).run(text)
        except (ParseError, IndexError, ValueError) as e:
            raise NftError(f"nft -f - failed: {e}") from e

    # ---- inspection -------------------------------------------------------------------
    @property
    def table(self) -> Table:
        t = self.tables.get((FAMILY, TABLE))
        if t is None:
            raise NftError(f"table {FAMILY} {TABLE} does not exist")
        return t

    def set_elements(self, name: str) -> dict[tuple[str, ...], Elem]:
        return self.table.sets[name].elements

    # ---- tracing ---------------------------------------------------------------------
    def trace(self, pkt: Packet, local_ips: tuple[str, ...] = (),
              routes: tuple[str, ...] | None = None, devices: dict[str, str] | None = None) -> TraceResult:
        """Walk the first packet of a new connection through every hook of podnet's table.

        `routes`: the destinations (CIDRs) the node's routing table can reach; with them the
        routing decisions are checked too (None: every destination is routable). `devices`: each
        route's device (CIDR → device), for `fib daddr . iif oif` (a packet arrives through the
        device its source is routed through); None: every address has a device of its own.
        """
        first = self._walk(pkt, local_ips, routes, choice=0, devices=devices)
        if len(first.candidates) > 1:
            for n, cand in enumerate(first.candidates):
                other = first if n == 0 else self._walk(pkt, local_ips, routes, choice=n, devices=devices)
                first.masquerade_by_candidate[cand] = other.masquerade
        elif first.dnat is not None:
            first.masquerade_by_candidate[first.dnat] = first.masquerade
        return first

    def _walk(self, pkt: Packet, local_ips: tuple[str, ...], routes: tuple[str, ...] | None,
              choice: int, devices: dict[str, str] | None = None) -> TraceResult:
        t = self.table
        st = _State(pkt, choice=choice, local_ips=local_ips, devices=devices)
        res = TraceResult("accept")
        hooks = ["prerouting"] if pkt.entry == "in" else ["output"]
        try:
            if pkt.entry == "local":  # a local socket is routed before the output hook runs
                _route_or_stop(pkt.dst, local_ips, routes, res)
            for hook in hooks:
                self._run_hook(t, hook, st, res)
            local = st.daddr in local_ips
            res.delivered = "local" if local else "forward"
            if pkt.entry == "in" or st.dnat is not None:  # forwarding decision / re-route after DNAT
                _route_or_stop(st.daddr, local_ips, routes, res)
            if pkt.entry == "in":
                self._run_hook(t, "input" if local else "forward", st, res)
            if not local or pkt.entry == "local":
                self._run_hook(t, "postrouting", st, res)
        except _Stop as s:
            res.verdict = s.verdict
            res.reject_with = s.how
        res.service, res.candidates, res.sticky = st.service, st.candidates, st.sticky
        res.dnat, res.masquerade = st.dnat, st.masq
        return res

    def _run_hook(self, t: Table, hook: str, st: _State, res: TraceResult) -> None:
        for c in sorted((c for c in t.chains.values() if c.hook == hook), key=lambda c: c.priority):
            if c.kind == "nat" and hook in ("prerouting", "output") and st.dnat is not None:
                continue
            v = self._run_chain(t, c, hook, st, res, depth=0)
            if v == "drop":
                raise _Stop("drop")
            if v is None and c.policy == "drop":
                res.steps.append(TraceStep(hook, c.name, "policy drop"))
                raise _Stop("drop")

    def _run_chain(self, t: Table, c: Chain, hook: str, st: _State, res: TraceResult,
                   depth: int) -> str | None:
        """Returns "accept"/"drop" when a verdict ends the hook, None when the chain falls through."""
        if depth > 16:
            raise NftError(f"chain {c.name}: jump loop")
        for rule in c.rules:
            try:
                out = _Rule(self, t, rule, st, hook, c.name, res, depth).run()
            except _Verdict as v:
                return v.verdict
            except _Return:
                return None
            if out is None:
                continue
            if out == "return":
                return None
            return out
        return None


class _Rule:
    """Evaluates one rule's tokens left to right; None = no match / fell through."""

    def __init__(self, fake: RuleInterpreter, t: Table, toks: list[str], st: _State, hook: str, chain: str,
                 res: TraceResult, depth: int):
        self.fake, self.t, self.toks, self.st = fake, t, toks, st
        self.hook, self.chain, self.res, self.depth = hook, chain, res, depth
        self.i = 0
        self.text = " ".join(toks)
        # a matched set element with a comment (a frontend): named by the rule's verdict, as a
        # verdict map's element would be
        self.hit: tuple[str, Elem] | None = None

    def peek(self, k: int = 0) -> str:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else ""

    def take(self) -> str:
        tok = self.peek()
        self.i += 1
        return tok

    def step(self, note: str = "") -> None:
        self.res.steps.append(TraceStep(self.hook, self.chain, self.text, note))

    def verdict_step(self, verdict: str) -> None:
        """The step of a verdict statement; a frontend matched on the way names the Service."""
        if self.hit is None:
            self.step()
            return
        name, e = self.hit
        if not self.st.service:
            self.st.service = e.comment
        self.step(f"@{name} element {' . '.join(e.key)} \"{e.comment}\" → {verdict}")

    # ---- expressions --------------------------------------------------------------------
    def field(self) -> str:
        """One selector: returns its canonical name (e.g. 'ip daddr', 'numgen')."""
        a = self.take()
        if a == "numgen":
            self.take()  # random
            self.take()  # mod
            return f"numgen {self.take()}"
        if a == "fib":  # fib saddr type / fib daddr type / fib daddr . iif oif
            which = self.take()
            if self.peek() == ".":
                self.take()
                flag = self.take()
                return f"fib {which} . {flag} {self.take()}"
            self.take()  # type
            return f"fib {which} type"
        if a == "ct" and self.peek() in ("original", "reply"):
            d = self.take()
            return f"ct {d} {self.take()} {self.take()}"
        return f"{a} {self.take()}"

    def expr(self) -> list[str]:
        fields = [self.field()]
        while self.peek() == ".":
            self.take()
            fields.append(self.field())
        return fields

    def value(self, f: str) -> str:
        st = self.st
        match f:
            case "ip saddr":
                return st.pkt.src
            case "ip daddr":
                return st.daddr
            case "meta l4proto":
                return st.pkt.proto
            case "th dport" | "tcp dport" | "udp dport":
                return str(st.dport)
            case "th sport" | "tcp sport" | "udp sport":
                return str(st.pkt.sport)
            case "ct mark":
                return str(st.ct_mark)
            case "meta mark":
                return str(st.meta_mark)
            case "ct state":
                return "new"
            case "ct direction":
                return "original"
            case "ct status":
                return "dnat" if st.dnat else ""
            case "fib saddr type":
                return "local" if st.pkt.entry == "local" or st.pkt.src in st.local_ips else "unicast"
            case "fib daddr type":
                return "local" if st.daddr in st.local_ips else "unicast"
            case "fib daddr . iif oif":
                # the route to the destination leaves through the interface the packet came in on
                # (forwarded packets come in through the device their source is routed through)
                same = st.pkt.entry == "in" and st.device(st.daddr) == st.device(st.pkt.src)
                return "exists" if same else "missing"
        raise NftError(f"the rule interpreter does not know selector {f!r} (rule: {self.text})")

    def key(self, fields: list[str], numgen: int = 0) -> tuple[str, ...]:
        return tuple(str(numgen) if f.startswith("numgen") else norm(self.value(f)) for f in fields)

    def lookup(self, set_name: str, key: tuple[str, ...]) -> Elem | None:
        s = self.t.sets[set_name]
        e = s.elements.get(key)
        if e is not None or not s.interval:
            return e
        for cand in s.elements.values():
            if len(cand.key) == len(key) and all(
                    _part_match(p, v) for p, v in zip(cand.key, key, strict=True)):
                return cand
        return None

    def anon_set(self) -> set[str]:
        self.take()  # {
        vals = set()
        while self.peek() != "}":
            tok = self.take()
            if tok != ",":
                vals.add(norm(tok))
        self.take()
        return vals

    # ---- statements ------------------------------------------------------------------
    def run(self) -> str | None:
        st = self.st
        while self.i < len(self.toks):
            tok = self.peek()
            if tok in ("accept", "drop"):
                self.verdict_step(tok)
                return tok
            if tok == "return":
                return "return"
            if tok in ("jump", "goto"):
                self.take()
                target = self.take()
                self.verdict_step(f"{tok} {target}")
                v = self.fake._run_chain(self.t, self.t.chains[target], self.hook, st, self.res,
                                         self.depth + 1)
                if v is None and tok == "goto":
                    return "return"
                return v
            if tok == "reject":
                how = " ".join(self.toks[self.i + 1:]) or "icmp port-unreachable"
                self.step()
                raise _Stop("reject", "tcp reset" if "reset" in how else how.replace("with ", ""))
            if tok == "masquerade":
                st.masq = True
                self.step("source NAT to the node's address")
                return "accept"
            if tok == "counter":
                self.take()
                while self.peek() in ("packets", "bytes"):
                    self.i += 2
                continue
            if tok == "dnat":
                return self.dnat()
            if tok == "update" or (tok == "add" and self.peek(1).startswith("@")):
                self.take()
                self.take()
                self.anon_skip()
                continue
            fields = self.expr()
            nxt = self.peek()
            if nxt == "set":  # assignment: `ct mark set EXPR map @m` / `meta mark set meta mark | V`
                self.take()
                if not self.assign(fields[0]):
                    return None
                continue
            if not self.match(fields):
                return None
        return None

    def anon_skip(self) -> None:
        if self.peek() == "{":
            depth = 0
            while True:
                tok = self.take()
                depth += tok == "{"
                depth -= tok == "}"
                if depth == 0:
                    return

    def assign(self, target: str) -> bool:
        st = self.st
        src = self.expr()
        if self.peek() == "map":
            self.take()
            name = self.take()[1:]
            e = self.lookup(name, self.key(src))
            if e is None or not e.data:
                return False
            val = int(e.data[0])
        elif self.peek() == "|":
            self.take()
            val = int(self.value(src[0])) | int(self.take(), 0)
        else:
            val = int(self.value(src[0]))
        if target == "ct mark":
            st.ct_mark = val
        elif target == "meta mark":
            st.meta_mark = val
        return True

    def match(self, fields: list[str]) -> bool:
        nxt = self.peek()
        if nxt == "vmap":
            self.take()
            name = self.take()[1:]
            e = self.lookup(name, self.key(fields))
            if e is None or not e.data:
                return False
            if e.comment and not self.st.service:
                self.st.service = e.comment
            self.step(f"@{name} element {' . '.join(e.key)}" + (f" \"{e.comment}\"" if e.comment else "")
                      + f" → {' '.join(e.data)}")
            verdict = e.data[0]
            if verdict in ("jump", "goto"):
                v = self.fake._run_chain(self.t, self.t.chains[e.data[1]], self.hook, self.st, self.res,
                                         self.depth + 1)
                if v is None and verdict == "goto":
                    raise _Return()
                if v is not None:
                    raise _Verdict(v)
                return True
            raise _Verdict(verdict)
        negate = False
        if nxt == "!=":
            negate = True
            self.take()
            nxt = self.peek()
        elif nxt == "==":
            self.take()
            nxt = self.peek()
        if nxt == "&":
            self.take()
            mask = int(self.take(), 0)
            self.take()  # ==
            want = int(self.take(), 0)
            return (int(self.value(fields[0])) & mask) == want
        if nxt.startswith("@"):
            self.take()
            e = self.lookup(nxt[1:], self.key(fields))
            if e is not None and e.comment and not negate:
                self.hit = (nxt[1:], e)
            return (e is not None) != negate
        if nxt == "{":
            vals = self.anon_set()
            hit = norm(self.value(fields[0])) in vals
            return hit != negate
        tok = self.take()
        actual = self.value(fields[0])
        hit = _part_match(norm(tok), norm(actual)) if "/" in tok else norm(tok) == norm(actual)
        return hit != negate

    def dnat(self) -> str | None:
        st = self.st
        self.take()  # dnat
        if self.peek() == "ip":
            self.take()
        self.take()  # to
        fields = self.expr()
        self.take()  # map
        name = self.take()[1:]
        ng = [f for f in fields if f.startswith("numgen")]
        if ng:
            k = int(ng[0].split()[1])
            cands = []
            for n in range(k):
                e = self.lookup(name, self.key(fields, n))
                if e is not None and e.data:
                    cands.append((e.data[0], int(e.data[1])))
            if not cands:
                return None
            st.candidates = cands
            st.dnat = cands[st.choice % len(cands)]
            self.step(f"@{name}: {k} candidate(s) {', '.join(f'{a}:{p}' for a, p in cands)}")
        else:
            e = self.lookup(name, self.key(fields))
            if e is None or not e.data:
                return None
            st.dnat = (e.data[0], int(e.data[1]))
            st.candidates = [st.dnat]
            st.sticky = True
            self.step(f"@{name}: session affinity → {st.dnat[0]}:{st.dnat[1]}")
        return "accept"


def _route_or_stop(dst: str, local_ips: tuple[str, ...], routes: tuple[str, ...] | None,
                   res: TraceResult) -> None:
    """The node's routing decision for `dst`: no route ends the walk as the kernel does (ENETUNREACH)."""
    if routes is None or dst in local_ips:
        return
    try:
        addr = ipaddress.IPv4Address(dst)
    except ValueError:
        return
    if addr.is_loopback or any(addr in ipaddress.IPv4Network(r, strict=False) for r in routes):
        return
    res.steps.append(TraceStep("routing", "", f"no route to {dst}", "Network is unreachable"))
    raise _Stop("unreachable", "network unreachable")


class _Verdict(Exception):
    def __init__(self, verdict: str):
        self.verdict = verdict


class _Return(Exception):
    pass


def _part_match(pattern: str, value: str) -> bool:
    if pattern == value:
        return True
    if "/" in pattern:
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    if "-" in pattern:
        lo, _, hi = pattern.partition("-")
        try:
            return ipaddress.IPv4Address(lo) <= ipaddress.IPv4Address(value) <= ipaddress.IPv4Address(hi)
        except ValueError:
            try:
                return int(lo) <= int(value) <= int(hi)
            except ValueError:
                return False
    return False

