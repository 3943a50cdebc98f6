"""Container probes (startup, liveness, readiness): httpGet, tcpSocket and exec, run from the node.

`run_probe` does one check; `ProbeTracker` applies successThreshold/failureThreshold the
way kubelet's prober worker does. Defaults are Kubernetes': periodSeconds 10,
timeoutSeconds 1, successThreshold 1, failureThreshold 3, initialDelaySeconds 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from podnet.model.kinds import Obj

ExecFn = Callable[[list[str], float], Awaitable[tuple[int, str]]]
"""Run a command inside the container with a timeout -> (exit code, output)."""


@dataclass(frozen=True)
class ProbeTiming:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: Obj) -> ProbeTiming:
        return cls(float(probe.get("initialDelaySeconds") or 0), float(probe.get("periodSeconds") or 10),
                   float(probe.get("timeoutSeconds") or 1), int(probe.get("successThreshold") or 1),
                   int(probe.get("failureThreshold") or 3))


def resolve_port(port: object, container: Obj) -> int:
    if isinstance(port, int):
        return port
    s = str(port)
    if s.isdigit():
        return int(s)
    for p in container.get("ports") or []:
        if p.get("name") == s:
            return int(p["containerPort"])
    raise ValueError(f"port {s!r} not found in the container's ports")


async def http_probe(host: str, port: int, path: str, *, scheme: str = "HTTP",
                     headers: list[Obj] | None = None, timeout: float = 1.0) -> tuple[bool, str]:
    ctx = None
    if scheme.upper() == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    target = f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), timeout)
    except (OSError, TimeoutError) as e:
        why = "context deadline exceeded" if isinstance(e, TimeoutError) else str(e.strerror or e)
        return False, f'Get "{scheme.lower()}://{target}{path}": dial tcp {target}: {why}'
    try:
        hdrs = {"Host": target, "User-Agent": "kube-probe/1.32", "Accept": "*/*", "Connection": "close"}
        for h in headers or []:
            hdrs[str(h.get("name", ""))] = str(h.get("value", ""))
        req = f"GET {path or '/'} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        writer.write(req.encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.decode(errors="replace").split()
        code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
        if 200 <= code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {code}"
    except (OSError, TimeoutError) as e:
        return False, f'Get "{scheme.lower()}://{target}{path}": {e or "context deadline exceeded"}'
    finally:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()


async def tcp_probe(host: str, port: int, timeout: float = 1.0) -> tuple[bool, str]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as e:
        why = "i/o timeout" if isinstance(e, TimeoutError) else str(e.strerror or e)
        return False, f"dial tcp {host}:{port}: {why}"
    writer.close()
    with contextlib.suppress(OSError, ConnectionError):
        await writer.wait_closed()
    return True, ""


async def run_probe(probe: Obj, container: Obj, pod_ip: str, exec_fn: ExecFn) -> tuple[bool, str]:
    """One probe attempt -> (success, message for events/logs)."""
    timeout = ProbeTiming.of(probe).timeout
    try:
        if "httpGet" in probe:
            g = probe["httpGet"]
            port = resolve_port(g.get("port"), container)
            return await http_probe(str(g.get("host") or pod_ip), port, str(g.get("path") or "/"),
                                    scheme=str(g.get("scheme") or "HTTP"), headers=g.get("httpHeaders"),
                                    timeout=timeout)
        if "tcpSocket" in probe:
            t = probe["tcpSocket"]
            port = resolve_port(t.get("port"), container)
            return await tcp_probe(str(t.get("host") or pod_ip), port, timeout)
        if "exec" in probe:
            cmd = [str(c) for c in (probe["exec"].get("command") or [])]
            if not cmd:
                return False, "exec probe without a command"
            code, out = await exec_fn(cmd, timeout)
            if code == 0:
                return True, ""
            return False, out.strip() or f"command {cmd!r} exited with {code}"
        if "grpc" in probe:
            return False, "grpc probes are not supported by podnet: use httpGet, tcpSocket or exec"
    except ValueError as e:
        return False, str(e)
    return False, "probe has no handler: set one of httpGet, tcpSocket, exec"


class ProbeTracker:
    """Turns single results into the probe's result with success/failure thresholds."""

    def __init__(self, timing: ProbeTiming, initial: bool):
        self.timing = timing
        self.result = initial
        self._successes = 0
        self._failures = 0

    def record(self, ok: bool) -> bool:
        """Add one attempt; return True when the overall result changed."""
        before = self.result
        if ok:
            self._successes += 1
            self._failures = 0
            if self._successes >= self.timing.success_threshold:
                self.result = True
        else:
            self._failures += 1
            self._successes = 0
            if self._failures >= self.timing.failure_threshold:
                self.result = False
        return before != self.result
