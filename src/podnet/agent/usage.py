"""CPU and memory used by each container and by the node, for `kubectl top` (metrics.k8s.io).

A container's use is that of its process tree: CPU time from /proc/<pid>/stat (utime + stime, plus the
children it has waited for), memory as the sum of resident pages (/proc/<pid>/statm), the figure the
kubelet reports as a container's working set comes closest to. CPU is a rate: the CPU seconds between
two samples of the same container divided by the wall time between them, in nanocores, as the kubelet's
resource metrics report it; the first sample of a container has no rate yet (kubectl then says the
metrics are not available yet, as with metrics-server right after a pod starts).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIN_WINDOW = 1.0  # seconds between the samples a rate is computed from


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (through /proc/<pid>/task/<tid>/children)."""
    out, todo, seen = [], [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        out.append(p)
        for tid in tasks:
            try:
                todo.extend(int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split())
            except (OSError, ValueError):
                continue
    return out


def cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def resident_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class Usage:
    nanocores: int | None  # None: no rate yet
    memory_bytes: int
    timestamp: float  # wall clock of the newer sample
    window: float  # seconds between the two samples


class UsageSampler:
    """Keeps the last sample of each key (a container, the node) to turn CPU time into a rate.

    CPU is counted per process: the rate is the CPU time each process present in both samples used in
    between, plus all the CPU time of a process new since the last sample. A process that exited takes
    only its last interval with it, so the rate never jumps back to "unknown" when a child ends."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, dict[int, float]]] = {}  # key -> (monotonic time, pid -> cpu s)
        self._rate: dict[str, tuple[int, float]] = {}  # key -> (nanocores, window)

    def sample(self, key: str, pids: list[int]) -> Usage:
        now = time.monotonic()
        cpu = {p: cpu_seconds(p) for p in pids}
        mem = sum(resident_bytes(p) for p in pids)
        last = self._last.get(key)
        if last is None:
            self._last[key] = (now, cpu)
        elif now - last[0] >= MIN_WINDOW:
            window = now - last[0]
            used = sum(max(0.0, t - last[1].get(p, 0.0)) for p, t in cpu.items())
            self._rate[key] = (int(used / window * 1e9), window)
            self._last[key] = (now, cpu)
        rate = self._rate.get(key)
        return Usage(rate[0] if rate else None, mem, time.time(), rate[1] if rate else 0.0)

    def forget_except(self, keys: set[str]) -> None:
        for k in [k for k in self._last if k not in keys]:
            self._last.pop(k, None)
            self._rate.pop(k, None)
