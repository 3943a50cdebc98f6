"""FakeNft: the in-memory `Nft` (test double) — the rule interpreter plus a log of what was applied."""

from __future__ import annotations

from typing import Any

from podnet.proxy.nft_interp import Packet, RuleInterpreter, TraceResult, TraceStep
from podnet.proxy.render import FAMILY, TABLE

__all__ = ["FakeNft", "Packet", "TraceResult", "TraceStep"]


class FakeNft(RuleInterpreter):
    """Implements the `Nft` protocol in memory; `applied` keeps every transaction that succeeded."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[str] = []

    def apply(self, text: str) -> None:
        super().apply(text)
        self.applied.append(text)

    def list_ruleset_json(self) -> dict[str, Any]:
        t = self.tables.get((FAMILY, TABLE))
        if t is None:
            return {"nftables": []}
        items: list[dict[str, Any]] = [{"table": {"family": FAMILY, "name": TABLE}}]
        for s in t.sets.values():
            elems = []
            for e in s.elements.values():
                val: Any = e.key[0] if len(e.key) == 1 else {"concat": list(e.key)}
                body: dict[str, Any] = {"val": val}
                if e.comment:
                    body["comment"] = e.comment
                if s.counter:
                    body["counter"] = {"packets": e.packets, "bytes": e.bytes}
                elems.append({"elem": body} if not s.is_map else [{"elem": body}, _data_json(e.data or ())])
            items.append({"map" if s.is_map else "set": {"family": FAMILY, "table": TABLE, "name": s.name,
                                                         "elem": elems}})
        for c in t.chains.values():
            items.append({"chain": {"family": FAMILY, "table": TABLE, "name": c.name}})
        return {"nftables": items}


def _data_json(data: tuple[str, ...]) -> Any:
    """A map element's value as `nft -j` writes it: a verdict object, a value or a concatenation."""
    if data and data[0] in ("goto", "jump"):
        return {data[0]: {"target": data[1]}}
    if data and data[0] in ("accept", "drop", "continue", "return"):
        return {data[0]: None}
    return data[0] if len(data) == 1 else {"concat": list(data)}
