"""PolicyState → nft transaction text. Pure: no I/O, golden-file tested.

The table `ip podnet-policy` is separate from the service proxy's `ip podnet`, so a failed
transaction of one never touches the other. Its base chains:

* `forward` (filter hook, after the proxy's DNAT in prerouting, so Service traffic is judged on
  the real pod addresses): replies of allowed connections pass (conntrack), a local pod reaching
  itself passes, then the sender's egress class and the receiver's ingress class judge the packet;
* `input`: a local pod's egress to its own node is judged too. Traffic the node sends (kubelet
  probes) leaves through `output`, which this table does not filter: Kubernetes allows it.

A full sync replaces the table in one transaction (`add; delete; add`), so there is no moment
without rules; a delta adds and deletes set and map elements only.
"""

from __future__ import annotations

from podnet.policy.compile import PolicyState, quote

FAMILY = "ip"
TABLE = "podnet-policy"
FULL_MARK = f"delete table {FAMILY} {TABLE}\n"

BASE_CHAINS = """\
\tchain egress-np {
\t\tip saddr vmap @egress-class
\t\tip saddr vmap @banp-egress-class
\t}
\tchain egress-tiers {
\t\tip saddr vmap @anp-egress-class
\t\tgoto egress-np
\t}
\tchain ingress-np {
\t\tip daddr vmap @ingress-class
\t\tip daddr vmap @banp-ingress-class
\t}
\tchain ingress-tiers {
\t\tip daddr vmap @anp-ingress-class
\t\tgoto ingress-np
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state established,related accept
\t\tip saddr . ip daddr @self accept
\t\tjump egress-tiers
\t\tjump ingress-tiers
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state established,related accept
\t\tjump egress-tiers
\t}
"""

MAPS = ("ingress-class", "egress-class", "anp-ingress-class", "anp-egress-class", "banp-ingress-class",
        "banp-egress-class")


def _elements(values: list[str]) -> str:
    return "elements = { " + ",\n\t\t\t".join(values) + " }"


def render_full(st: PolicyState) -> str:
    out = [f"add table {FAMILY} {TABLE}\n", FULL_MARK, f"table {FAMILY} {TABLE} {{\n"]
    for name, comment in sorted(st.counters.items()):
        out.append(f"\tcounter {name} {{\n\t\tcomment {quote(comment)};\n\t}}\n")
    ordered = [n for n in sorted(st.sets) if n not in MAPS] + [n for n in MAPS if n in st.sets]
    chains_at = len([n for n in ordered if n not in MAPS])
    for i, name in enumerate(ordered):
        if i == chains_at:
            out += _chains(st)
        sd = st.sets[name]
        kind = "map" if ":" in sd.typeof else "set"
        body = [f"typeof {sd.typeof};"]
        if sd.interval:
            body.append("flags interval;")
        if sd.comment:
            body.append(f"comment {quote(sd.comment)};")
        elems = st.elements.get(name) or {}
        if elems:
            body.append(_elements([elems[k] for k in sorted(elems)]) + ";")
        out.append(f"\t{kind} {name} {{\n\t\t" + "\n\t\t".join(body) + "\n\t}\n")
    if chains_at >= len(ordered):
        out += _chains(st)
    out.append(BASE_CHAINS)
    out.append("}\n")
    return "".join(out)


def _chains(st: PolicyState) -> list[str]:
    return [f"\tchain {name} {{\n" + "".join(f"\t\t{line}\n" for line in st.chains[name]) + "\t}\n"
            for name in sorted(st.chains)]


def is_full(text: str) -> bool:
    return FULL_MARK in text


def can_delta(old: PolicyState | None, new: PolicyState) -> bool:
    return old is not None and old.structure() == new.structure()


def carry_over(old: PolicyState, new: PolicyState) -> PolicyState:
    """`new` plus the chains, sets and counters only `old` has (a class no pod is in any more, the
    sets of a rule no local pod needs): when nothing else changed structurally, the sync stays a
    delta. What is carried is referenced by no map element; the next full sync drops it."""
    if not (set(new.chains) - set(old.chains) or set(new.sets) - set(old.sets)
            or set(new.counters) - set(old.counters)):
        merged = PolicyState(sets={**old.sets, **new.sets}, elements=dict(new.elements),
                             chains={**old.chains, **new.chains}, counters={**old.counters, **new.counters},
                             classes={**old.classes, **new.classes}, problems=new.problems)
        for name in old.sets:
            if name not in new.sets:
                merged.elements[name] = old.elements.get(name) or {}
        if merged.structure() == old.structure():
            return merged
    return new


def render_delta(old: PolicyState, new: PolicyState) -> str:
    """Element adds/deletes from `old` to `new`, or the full ruleset when the structure changed
    ("" when nothing changed)."""
    if not can_delta(old, new):
        return render_full(new)
    out: list[str] = []
    for name in sorted(new.sets):
        before, after = old.elements.get(name) or {}, new.elements.get(name) or {}
        gone = [k for k in before if k not in after or after[k] != before[k]]
        added = [after[k] for k in after if k not in before or before[k] != after[k]]
        if gone:
            out.append(f"delete element {FAMILY} {TABLE} {name} {{ {', '.join(sorted(gone))} }}\n")
        if added:
            out.append(f"add element {FAMILY} {TABLE} {name} {{ {', '.join(sorted(added))} }}\n")
    return "".join(out)
