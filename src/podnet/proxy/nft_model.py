"""A model of nftables tables and a parser for the subset of nft syntax podnet emits and
`nft list table` prints back.

It builds a `Table` (sets/maps with elements, chains with rules kept as token lists) that
`RuleInterpreter` (nft_interp.py) applies transactions to and evaluates packets against.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r'"[^"]*"|\n|[{},;:]|[^\s{},;:"]+')
ELEM_OPTIONS = ("comment", "counter", "timeout", "expires", "packets", "bytes")


class ParseError(Exception):
    pass


def tokenize(text: str) -> list[str]:
    lines = [ln.split("#", 1)[0] if not ln.lstrip().startswith("#") else "" for ln in text.splitlines()]
    return _TOKEN.findall("\n".join(lines))


def norm(value: str) -> str:
    """Canonical spelling of one element part: hex and decimal numbers alike, CIDRs as networks."""
    v = value.strip()
    if re.fullmatch(r"0x[0-9a-fA-F]+", v):
        return str(int(v, 16))
    if "/" in v:
        try:
            return str(ipaddress.ip_network(v, strict=False))
        except ValueError:
            return v
    return v


@dataclass
class Elem:
    key: tuple[str, ...]
    data: tuple[str, ...] | None = None  # map value parts; verdict maps: ("goto", "ep-2") or ("drop",)
    comment: str = ""
    packets: int = 0
    bytes: int = 0


@dataclass
class NSet:
    name: str
    is_map: bool
    key_expr: str = ""  # "ip daddr . meta l4proto . th dport" (typeof) or "ipv4_addr . inet_proto" (type)
    data_expr: str = ""
    flags: set[str] = field(default_factory=set)
    counter: bool = False
    timeout: str = ""
    elements: dict[tuple[str, ...], Elem] = field(default_factory=dict)

    @property
    def interval(self) -> bool:
        return "interval" in self.flags


@dataclass
class Chain:
    name: str
    hook: str = ""
    priority: int = 0
    policy: str = "accept"
    kind: str = ""  # filter / nat
    rules: list[list[str]] = field(default_factory=list)


@dataclass
class Table:
    family: str
    name: str
    sets: dict[str, NSet] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    counters: dict[str, tuple[int, int]] = field(default_factory=dict)


PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}


class Parser:
    """Applies nft text to a dict of tables (copy first: a failed transaction leaves nothing)."""

    def __init__(self, tables: dict[tuple[str, str], Table]):
        self.tables = copy.deepcopy(tables)
        self.toks: list[str] = []
        self.i = 0

    # ---- token helpers ----------------------------------------------------------
    def peek(self, skip_nl: bool = True) -> str:
        j = self.i
        while skip_nl and j < len(self.toks) and self.toks[j] == "\n":
            j += 1
        return self.toks[j] if j < len(self.toks) else ""

    def next(self, skip_nl: bool = True) -> str:
        while skip_nl and self.i < len(self.toks) and self.toks[self.i] == "\n":
            self.i += 1
        if self.i >= len(self.toks):
            raise ParseError("unexpected end of input")
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, tok: str) -> None:
        t = self.next()
        if t != tok:
            raise ParseError(f"syntax error: expected {tok!r}, got {t!r}")

    def block_tokens(self) -> list[str]:
        """Tokens between a `{` (already consumed) and its matching `}`."""
        depth, out = 1, list[str]()
        while True:
            t = self.next(skip_nl=False)
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if depth == 0:
                    return out
            out.append(t)

    # ---- top level ----------------------------------------------------------------
    def run(self, text: str) -> dict[tuple[str, str], Table]:
        self.toks, self.i = tokenize(text), 0
        while self.peek():
            if self.peek() in (";",):
                self.next()
                continue
            self.command()
        return self.tables

    def table(self, family: str, name: str) -> Table:
        t = self.tables.get((family, name))
        if t is None:
            raise ParseError(f"Could not process rule: No such file or directory: table {family} {name}")
        return t

    def command(self) -> None:
        verb = self.next()
        if verb == "table":
            fam, name = self.next(), self.next()
            self.tables.setdefault((fam, name), Table(fam, name))
            self.expect("{")
            self.table_body(self.tables[(fam, name)])
            return
        if verb not in ("add", "create", "delete", "flush", "destroy"):
            raise ParseError(f"syntax error, unexpected {verb!r}")
        what = self.next()
        if what == "table":
            fam, name = self.next(), self.next()
            if verb in ("add", "create"):
                if verb == "create" and (fam, name) in self.tables:
                    raise ParseError(f"Could not process rule: File exists: table {fam} {name}")
                self.tables.setdefault((fam, name), Table(fam, name))
                if self.peek(skip_nl=False) == "{":
                    self.next()
                    self.table_body(self.tables[(fam, name)])
            elif verb == "delete":
                self.table(fam, name)
                del self.tables[(fam, name)]
            elif verb == "flush":
                t = self.table(fam, name)
                for c in t.chains.values():
                    c.rules.clear()
            return
        fam, tname, obj = self.next(), self.next(), self.next()
        t = self.table(fam, tname)
        if what in ("set", "map"):
            if verb == "add":
                self.expect("{")
                s = self.set_decl(obj, what == "map")
                t.sets.setdefault(obj, s)
            elif verb == "flush":
                self._set(t, obj).elements.clear()
            elif verb == "delete":
                self._set(t, obj)
                del t.sets[obj]
        elif what == "chain":
            if verb == "add":
                c = t.chains.setdefault(obj, Chain(obj))
                if self.peek(skip_nl=False) == "{":
                    self.next()
                    self.chain_body(c)
            elif verb == "flush":
                self._chain(t, obj).rules.clear()
            elif verb == "delete":
                self._chain(t, obj)
                del t.chains[obj]
        elif what == "rule":
            c = self._chain(t, obj)
            toks = []
            while self.peek(skip_nl=False) not in ("\n", ";", ""):
                toks.append(self.next(skip_nl=False))
            c.rules.append(toks)
        elif what == "element":
            s = self._set(t, obj)
            self.expect("{")
            elems = self.elements(s, self.block_tokens())
            for e in elems:
                if verb == "add":
                    old = s.elements.get(e.key)
                    if old is not None and old.data != e.data:
                        raise ParseError(f"Could not process rule: File exists: element {' . '.join(e.key)}"
                                         f" in {obj}")
                    s.elements[e.key] = e if old is None else old
                elif verb == "delete":
                    if e.key not in s.elements:
                        raise ParseError(f"Could not process rule: No such file or directory: element "
                                         f"{' . '.join(e.key)} in {obj}")
                    del s.elements[e.key]
        elif what == "counter":
            if verb == "add":
                t.counters.setdefault(obj, (0, 0))
                if self.peek(skip_nl=False) == "{":
                    self.next()
                    self.block_tokens()
        else:
            raise ParseError(f"syntax error, unexpected {what!r}")
        self.check_refs(t)

    @staticmethod
    def _set(t: Table, name: str) -> NSet:
        if name not in t.sets:
            raise ParseError(f"Could not process rule: No such file or directory: set {name}")
        return t.sets[name]

    @staticmethod
    def _chain(t: Table, name: str) -> Chain:
        if name not in t.chains:
            raise ParseError(f"Could not process rule: No such file or directory: chain {name}")
        return t.chains[name]

    def table_body(self, t: Table) -> None:
        while True:
            tok = self.next()
            if tok == "}":
                return
            if tok == ";":
                continue
            name = self.next()
            self.expect("{")
            if tok in ("set", "map"):
                t.sets[name] = self.set_decl(name, tok == "map")
            elif tok == "chain":
                c = t.chains.setdefault(name, Chain(name))
                self.chain_body(c)
            elif tok == "counter":
                body = self.block_tokens()
                nums = [int(x) for x in body if x.isdigit()]
                t.counters[name] = (nums[0], nums[1]) if len(nums) >= 2 else (0, 0)
            else:
                raise ParseError(f"syntax error, unexpected {tok!r} in table body")

    def set_decl(self, name: str, is_map: bool) -> NSet:
        body = self.block_tokens()
        s = NSet(name, is_map)
        for stmt in _split(body, (";", "\n")):
            if not stmt:
                continue
            head = stmt[0]
            if head in ("typeof", "type"):
                text = " ".join(stmt[1:])
                key, _, data = text.partition(" : ")
                s.key_expr, s.data_expr = key.strip(), data.strip()
            elif head == "flags":
                s.flags |= {f for f in "".join(stmt[1:]).split(",") if f}
            elif head == "counter":
                s.counter = True
            elif head == "timeout":
                s.timeout = stmt[1]
            elif head == "elements":
                # elements = { ... } : the tokens after '=' include braces
                inner = stmt[3:-1] if stmt[2] == "{" else []
                for e in self.elements(s, inner):
                    s.elements[e.key] = e
            elif head in ("size", "policy", "comment", "auto-merge", "gc-interval"):
                continue
            else:
                raise ParseError(f"syntax error, unexpected {head!r} in set {name}")
        return s

    def elements(self, s: NSet, toks: list[str]) -> list[Elem]:
        out = []
        for part in _split(toks, (",",)):
            part = [t for t in part if t != "\n"]
            if not part:
                continue
            key: list[str] = []
            data: tuple[str, ...] | None = None
            e = Elem(())
            j = 0
            while j < len(part):
                t = part[j]
                if t == ":":
                    rest = part[j + 1:]
                    data = tuple(norm(x) for x in rest if x != ".")
                    break
                if t == "comment":
                    e.comment = part[j + 1].strip('"')
                    j += 2
                    continue
                if t in ("packets", "bytes"):
                    setattr(e, t, int(part[j + 1]))
                    j += 2
                    continue
                if t in ("timeout", "expires"):
                    j += 2
                    continue
                if t in ("counter", "."):
                    j += 1
                    continue
                key.append(norm(t))
                j += 1
            e.key, e.data = tuple(key), data
            out.append(e)
        return out

    def chain_body(self, c: Chain) -> None:
        body = self.block_tokens()
        for stmt in _split(body, (";", "\n")):
            if not stmt:
                continue
            if stmt[0] == "type":
                c.kind, c.hook = stmt[1], stmt[3]
                c.priority = _priority(stmt[5:])
            elif stmt[0] == "policy":
                c.policy = stmt[1]
            elif stmt[0] in ("comment", "devices", "device"):
                continue
            else:
                c.rules.append(stmt)

    def check_refs(self, t: Table) -> None:
        """Like the kernel: a transaction may not leave a reference to a missing chain or set."""
        for c in t.chains.values():
            for r in c.rules:
                for j, tok in enumerate(r):
                    if tok.startswith("@") and tok[1:] not in t.sets:
                        raise ParseError(f"Error: No such file or directory: set {tok[1:]} in chain {c.name}")
                    if tok in ("jump", "goto") and j + 1 < len(r) and r[j + 1] not in t.chains:
                        raise ParseError(f"Error: No such file or directory: chain {r[j + 1]}")
        for s in t.sets.values():
            if s.data_expr == "verdict":
                for e in s.elements.values():
                    if e.data and e.data[0] in ("goto", "jump") and e.data[1] not in t.chains:
                        raise ParseError(f"Error: No such file or directory: chain {e.data[1]} "
                                         f"(map {s.name})")


def _split(toks: list[str], seps: tuple[str, ...]) -> list[list[str]]:
    """Split at separators outside braces."""
    out: list[list[str]] = [[]]
    depth = 0
    for t in toks:
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
        if depth == 0 and t in seps:
            out.append([])
            continue
        out[-1].append(t)
    return [[t for t in p if t != "\n"] if ";" in seps or "," in seps else p for p in out]


def _priority(toks: list[str]) -> int:
    total, sign = 0, 1
    for t in toks:
        if t == "-":
            sign = -1
        elif t == "+":
            sign = 1
        elif t in PRIORITY_NAMES:
            total += sign * PRIORITY_NAMES[t]
        else:
            try:
                total += sign * int(t)
            except ValueError:
                continue
    return total
