"""Read the settings podnet's DNS server understands from a CoreDNS Corefile.

So the stock CoreDNS Deployment (`args: ["-conf", "/etc/coredns/Corefile"]`, the
`coredns` ConfigMap) runs podnet's server unchanged. Understood, from the first server
block: its port (`.:53`), `kubernetes <zone> ... { pods ..., ttl ... }`,
`forward . <resolv.conf path | IP[:PORT] ...>`, `health [addr]`, `ready [addr]`.
Other plugins (cache, loop, reload, errors, prometheus, ...) are accepted and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class CorefileSettings:
    port: int | None = None
    cluster_domain: str | None = None
    pods: str | None = None
    ttl: int | None = None
    upstream: str | None = None  # "auto" (with resolv_conf) or "IP[:PORT],..."
    resolv_conf: str | None = None
    health_port: int | None = None
    ready_port: int | None = None
    ignored: list[str] = field(default_factory=list)


class CorefileError(ValueError):
    pass


def _tokens(text: str) -> list[list[str]]:
    """Lines of tokens, with `{` and `}` as tokens of their own and comments dropped."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        toks = re.findall(r"[{}]|[^\s{}]+", line)
        if toks:
            out.append(toks)
    return out


def _port_of(addr: str, what: str) -> int:
    m = re.search(r":(\d+)$", addr)
    if not m:
        raise CorefileError(f"Corefile: {what} address {addr!r} has no :PORT")
    return int(m.group(1))


def _upstream_of(targets: list[str], s: CorefileSettings) -> None:
    ips = []
    for t in targets:
        if t.startswith("/"):
            s.upstream, s.resolv_conf = "auto", t
            return
        t = t.removeprefix("dns://")
        if t.startswith(("tls://", "https://")):
            continue  # encrypted upstreams are not supported; the others still are
        ips.append(t)
    if ips:
        s.upstream = ",".join(ips)


def parse_corefile(text: str) -> CorefileSettings:
    s = CorefileSettings()
    lines = _tokens(text)
    depth = 0
    block: list[str] = []  # the plugin whose { } we are in (depth 2)
    first_server_done = False
    for toks in lines:
        i = 0
        while i < len(toks):
            tok = toks[i]
            if tok == "{":
                depth += 1
                i += 1
                continue
            if tok == "}":
                depth -= 1
                if depth == 0:
                    first_server_done = True
                if depth < 0:
                    raise CorefileError("Corefile: unbalanced '}'")
                block = [] if depth < 2 else block
                i += 1
                continue
            # a directive: the tokens up to '{' or end of line
            j = i
            while j < len(toks) and toks[j] not in ("{", "}"):
                j += 1
            words = toks[i:j]
            i = j
            if first_server_done:
                continue
            if depth == 0:
                m = re.search(r":(\d+)$", words[0])
                if m:
                    s.port = int(m.group(1))
            elif depth == 1:
                block = words
                name, args = words[0], words[1:]
                if name == "kubernetes":
                    zones = [z.rstrip(".") for z in args if not z.endswith(("arpa", "arpa."))]
                    if zones:
                        s.cluster_domain = zones[0]
                elif name == "forward" and len(args) >= 2:
                    _upstream_of(args[1:], s)
                elif name == "health":
                    s.health_port = _port_of(args[0], "health") if args else 8080
                elif name == "ready":
                    s.ready_port = _port_of(args[0], "ready") if args else 8181
                elif name not in s.ignored:
                    s.ignored.append(name)
            elif depth == 2 and block and block[0] == "kubernetes":
                if words[0] == "pods" and len(words) > 1:
                    s.pods = words[1]
                elif words[0] == "ttl" and len(words) > 1:
                    try:
                        s.ttl = int(words[1])
                    except ValueError:
                        msg = f"Corefile: kubernetes ttl {words[1]!r} is not a number"
                        raise CorefileError(msg) from None
    if depth != 0:
        raise CorefileError("Corefile: unbalanced '{'")
    return s
