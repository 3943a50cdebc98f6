"""Helpers shared by the benchmarks: percentiles, the machine's description, process memory, and output
(a Rich table of figures, or one JSON document with `-o json`).

A figure is one measured number with its unit, an optional baseline (measured in the same run, or a
published figure labelled as such) and the ratio between the two.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

PODNET = [sys.executable, "-c", "from podnet.cli.main import main; raise SystemExit(main())"]


# ---- statistics --------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; nan for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p99(values: list[float]) -> float:
    return pct(values, 99)


# ---- the machine ------------------------------------------------------------------------------
def meminfo_kib() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0])
    return out


def mem_available_kib() -> int:
    return meminfo_kib().get("MemAvailable", 0)


def loadavg() -> tuple[float, float, float]:
    a, b, c = os.getloadavg()
    return round(a, 2), round(b, 2), round(c, 2)


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mi = meminfo_kib()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "mem_total_gib": round(mi.get("MemTotal", 0) / 2**20, 1),
        "mem_available_gib": round(mi.get("MemAvailable", 0) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load": loadavg(),
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def machine_line(m: dict[str, Any]) -> str:
    return (f"machine: {m['cores']} cores ({m['cpu']}), {m['mem_total_gib']} GiB, kernel {m['kernel']}, "
            f"load at start {m['load']}, at end {loadavg()}")


# ---- process memory ---------------------------------------------------------------------------
def proc_mem_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB; (0, 0) when it is gone. PSS shares pages among their users, so a
    sum of PSS over many processes of the same interpreter does not count shared pages many times."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError):
        return 0, 0
    return rss, pss


_MAPPING = re.compile(r"^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")
ARENA_ALIGN = 64 << 20  # glibc's secondary malloc arenas (other threads') are heaps aligned to 64 MiB


def rss_parts(pid: int) -> dict[str, int]:
    """A process's resident memory by kind of mapping, KiB: `heap` (the main thread's malloc heap,
    brk), `arenas` (other threads' malloc arenas), `anon` (other anonymous mappings: pymalloc's
    arenas, large mmap'd blocks, thread stacks) and `file` (code and data of files)."""
    parts = {"heap": 0, "arenas": 0, "anon": 0, "file": 0}
    kind = ""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return parts
    for line in text.splitlines():
        m = _MAPPING.match(line)
        if m:
            start, name = int(m.group(1), 16), m.group(2)
            kind = ("heap" if name == "[heap]" else "file" if name.startswith("/") else
                    "arenas" if not name and start % ARENA_ALIGN == 0 else "anon" if not name else "")
        elif kind and line.startswith("Rss:"):
            parts[kind] += int(line.split()[1])
    return parts


def proc_cmdline(pid: int) -> list[str]:
    try:
        return [
            a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a
        ]
    except OSError:
        return []


# ---- running things ---------------------------------------------------------------------------
def sh(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:8])} failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-800:]}"
        )
    return p


# ---- figures and output ------------------------------------------------------------------------
@dataclass
class Figure:
    group: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    higher_is_better: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or self.value != self.value:
            return None
        return self.value / self.baseline

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if v != v:
        return "n/a"
    small = unit in ("s", "ms") or abs(v) < 100
    s = (f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}") if small else f"{v:,.0f}"
    return f"{s} {unit}".strip()


class Report:
    def __init__(self, title: str):
        self.title = title
        self.figures: list[Figure] = []
        self.info: dict[str, Any] = {"machine": machine()}
        self.errors: list[str] = []

    def add(self, fig: Figure) -> Figure:
        self.figures.append(fig)
        print(
            f"  {fig.group}: {fig.name} = {fmt(fig.value, fig.unit)}"
            + (
                f"  (baseline {fmt(fig.baseline, fig.unit)} {fig.baseline_label})"
                if fig.baseline is not None
                else ""
            ),
            file=sys.stderr,
            flush=True,
        )
        return fig

    def to_dict(self) -> dict[str, Any]:
        self.info["machine_at_end"] = {
            "load": loadavg(),
            "mem_available_gib": round(mem_available_kib() / 2**20, 1),
        }
        return {
            "bench": self.title,
            "info": self.info,
            "errors": self.errors,
            "figures": [f.to_dict() for f in self.figures],
        }

    def print(self, as_json: bool) -> None:
        if as_json:
            print(json.dumps(self.to_dict(), indent=1))
            return
        t = Table(title=self.title)
        for col in ("group", "figure", "result", "baseline", "ratio", "note"):
            t.add_column(col, overflow="fold")
        for f in self.figures:
            ratio = f.ratio
            t.add_row(
                f.group,
                f.name,
                fmt(f.value, f.unit),
                "" if f.baseline is None else f"{fmt(f.baseline, f.unit)} ({f.baseline_label})",
                "" if ratio is None else f"{ratio:.2f}x",
                f.note,
            )
        con = Console(width=160)
        con.print(t)
        con.print(machine_line(self.info["machine"]))
        for e in self.errors:
            con.print(f"[red]error:[/red] {e}")
