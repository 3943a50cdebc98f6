"""Run every podnet benchmark in sequence, each as its own process with a time limit, and print one summary.

    sudo .venv/bin/python bench/run_all.py [--quick] [--only NAME[,NAME]] [--out DIR] [-o json]
    .venv/bin/python bench/run_all.py --list

Benchmarks that offer JSON (`-o json`) are run that way and their figures are collected into one table;
the others' printed tables are kept verbatim. With --out, each bench's stdout and stderr, and the summary
(summary.json), are written to DIR. A bench that overruns its limit gets SIGINT (so it can remove what it
made), then SIGKILL 180 s later; only the process group this harness started is signalled.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fmt, loadavg, machine, machine_line
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    root: bool
    full: list[str]
    quick: list[str]
    limit: float  # seconds, full run
    quick_limit: float
    json_args: list[str] = field(default_factory=list)

    def describe(self) -> str:
        try:
            text = (HERE / self.script).read_text()
        except OSError:
            return "(missing)"
        doc = text.split('"""', 2)[1] if text.count('"""') >= 2 else ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


BENCHES = [
    Bench("store", "bench_store.py", False, [], ["--creates", "2000", "--seconds", "3", "--objects", "200"],
          300, 90),
    Bench("endpoints", "bench_endpoints.py", False, [], ["--services", "200", "--samples", "50"], 300, 120),
    Bench("slice_rate", "bench_slice_rate.py", False, ["--services", "10000", "--baseline"],
          ["--services", "1000", "--baseline"], 900, 180, ["-o", "json"]),
    Bench("dns", "bench_dns.py", False, [], ["--services", "100", "--duration", "1", "--rates", "2000,10000",
                                             "--update-rounds", "5"], 300, 120),
    Bench("proxy", "bench_proxy.py", True, [], ["--max-services", "10000", "--kube-proxy-max", "1000",
                                                  "--connects", "100"], 900, 300),
    Bench("policy", "bench_policy.py", True, [], ["--policies", "200", "--pods", "300", "--connects", "100",
                                                  "--seconds", "1", "--rounds", "1"], 600, 180),
    Bench("api_bodies", "bench_api_bodies.py", False, [], ["--uploads", "2", "--rounds", "1"], 300, 120,
          ["-o", "json"]),
    Bench("up", "bench_up.py", True, [], ["--rounds", "1", "--idle", "2"], 600, 180),
    Bench("idle_memory", "bench_idle_memory.py", True, [], ["--extra", "1", "--idle", "2"], 900, 400,
          ["-o", "json"]),
    Bench("dns_memory", "bench_dns_memory.py", False, [], ["--services", "1000"], 900, 180, ["-o", "json"]),
    Bench("cluster", "bench_cluster.py", True, [], ["--quick"], 1800, 400, ["-o", "json"]),
]


@dataclass
class Result:
    name: str
    status: str  # ok, failed (rc N), timeout, skipped (...)
    seconds: float
    stdout: str = ""
    stderr: str = ""
    data: dict[str, Any] | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": round(self.seconds, 1),
                "load_before": self.load_before, "load_after": self.load_after, "data": self.data,
                "stdout": None if self.data is not None else self.stdout,
                "stderr_tail": self.stderr[-2000:]}


GRACE = 180.0  # seconds a bench gets after SIGINT to remove what it made


def _pump(stream: IO[str] | None, parts: list[str], echo_prefix: str | None) -> None:
    """Collect a child's output; with a prefix, also echo each line to our stderr as it comes."""
    if stream is None:
        return
    for line in stream:
        parts.append(line)
        if echo_prefix is not None:
            sys.stderr.write(echo_prefix + line)
            sys.stderr.flush()


def run_one(b: Bench, quick: bool, limit_scale: float, extra: list[str] | None = None) -> Result:
    if b.root and os.geteuid() != 0:
        return Result(b.name, "skipped (needs root)", 0.0)
    if not (HERE / b.script).exists():
        return Result(b.name, f"skipped ({b.script} missing)", 0.0)
    limit = (b.quick_limit if quick else b.limit) * limit_scale
    args = [*(b.quick if quick else b.full), *(extra or []), *b.json_args]
    argv = [sys.executable, str(HERE / b.script), *args]
    env = {**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}
    print(f"== {b.name}: {' '.join(argv[1:])} (limit {limit:.0f}s, load {loadavg()})", file=sys.stderr,
          flush=True)
    load0 = loadavg()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    out_parts: list[str] = []
    err_parts: list[str] = []
    readers = [threading.Thread(target=_pump, args=(proc.stdout, out_parts, None), daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, err_parts, f"   [{b.name}] "), daemon=True)]
    for t in readers:
        t.start()
    status = "ok"
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        status = f"timeout after {limit:.0f}s"
        os.killpg(proc.pid, signal.SIGINT)  # the group of the process we started, nothing else
        try:
            proc.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=GRACE)
        raise
    for t in readers:
        t.join(timeout=10)
    out, err = "".join(out_parts), "".join(err_parts)
    secs = time.monotonic() - t0
    if status == "ok" and proc.returncode != 0:
        status = f"failed (rc {proc.returncode})"
    data = None
    if out.strip().startswith("{"):
        try:
            data = json.loads(out)
        except ValueError:
            data = None
    return Result(b.name, status, secs, out, err, data, load0, loadavg())


def print_summary(results: list[Result], con: Console) -> None:
    t = Table(title="podnet benchmarks: runs")
    for c in ("bench", "status", "seconds", "load before", "load after"):
        t.add_column(c)
    for r in results:
        t.add_row(r.name, r.status, f"{r.seconds:.0f}", str(r.load_before), str(r.load_after))
    con.print(t)
    figs = Table(title="Figures (benches with JSON output)")
    for c in ("bench", "group", "figure", "result", "baseline", "ratio", "note"):
        figs.add_column(c, overflow="fold")
    nfig = 0
    for r in results:
        for f in (r.data or {}).get("figures", []):
            nfig += 1
            base = ""
            if f.get("baseline") is not None:
                base = f"{fmt(f['baseline'], f['unit'])} ({f['baseline_label']})"
            ratio = "" if f.get("ratio") is None else f"{f['ratio']:.2f}x"
            value = fmt(f["value"], f["unit"])
            figs.add_row(r.name, f["group"], f["name"], value, base, ratio, f.get("note", ""))
        for e in (r.data or {}).get("errors", []):
            con.print(f"[red]{r.name} error:[/red] {e}")
    if nfig:
        con.print(figs)
    for r in results:
        if r.data is None and r.stdout.strip():
            con.rule(f"{r.name} (printed output)")
            con.print(r.stdout.rstrip(), markup=False, highlight=False)
        if not r.status.startswith(("ok", "skipped")):
            con.rule(f"{r.name}: {r.status}, last stderr lines")
            con.print("\n".join(r.stderr.strip().splitlines()[-15:]), markup=False, highlight=False)


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: runs, figures with baselines and ratios, and the text benches' output."""
    m = summary["info"]["machine"]
    lines = [f"Machine: {m['cores']} cores ({m['cpu']}), {m['mem_total_gib']} GiB RAM, "
             f"kernel `{m['kernel']}`, "
             f"Python {m['python']}; started {m['time_utc']} UTC, load {m['load']}, at the end "
             f"{summary['info'].get('machine_at_end', {}).get('load')}.", "",
             "| bench | status | seconds | load (1/5/15 min) before | after |", "|---|---|---|---|---|"]
    for r in summary["results"]:
        lines.append(f"| {r['name']} | {r['status']} | {r['seconds']:.0f} | {r['load_before']} | "
                     f"{r['load_after']} |")
    rows = [(r["name"], f) for r in summary["results"] for f in (r.get("data") or {}).get("figures", [])]
    if rows:
        lines += ["", "| bench | figure | result | baseline | ratio | note |", "|---|---|---|---|---|---|"]
        for name, f in rows:
            base = ""
            if f.get("baseline") is not None:
                base = f"{fmt(f['baseline'], f['unit'])} ({f['baseline_label']})"
            ratio = "" if f.get("ratio") is None else f"{f['ratio']:.2f}x"
            note = str(f.get("note", "")).replace("|", "/")
            value = fmt(f["value"], f["unit"])
            lines.append(f"| {name} | {f['name']} | {value} | {base} | {ratio} | {note} |")
    for r in summary["results"]:
        for e in (r.get("data") or {}).get("errors", []):
            lines.append(f"\n{r['name']} reported: {e}")
        if r.get("data") is None and r.get("stdout"):
            lines += ["", f"`{r['name']}` printed:", "", "```", r["stdout"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--only", default="", metavar="NAME[,NAME]", help="run only these benchmarks")
    ap.add_argument("--skip", default="", metavar="NAME[,NAME]", help="do not run these benchmarks")
    ap.add_argument("--quick", action="store_true", help="short runs (each bench's own quick settings)")
    ap.add_argument("--limit-scale", type=float, default=1.0, help="multiply every time limit by this")
    ap.add_argument("--out", default="", metavar="DIR", help="write raw outputs and summary.json here")
    ap.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                    help="more arguments for one bench, e.g. --args 'cluster=--services 1000,10000'")
    ap.add_argument("--from", dest="from_dir", default="", metavar="DIR",
                    help="run nothing: print the summary saved in DIR by an earlier --out")
    ap.add_argument("-o", "--output", choices=("table", "json", "markdown"), default="table")
    a = ap.parse_args(argv)
    names = [b.name for b in BENCHES]
    if a.from_dir:
        try:
            saved = json.loads((Path(a.from_dir) / "summary.json").read_text())
        except (OSError, ValueError) as e:
            ap.error(f"--from {a.from_dir}: no readable summary.json there ({e})")
        print(markdown(saved) if a.output == "markdown" else json.dumps(saved, indent=1))
        return 0
    if a.list:
        for b in BENCHES:
            lim = f"{b.limit:.0f}s (quick {b.quick_limit:.0f}s)"
            print(f"{b.name:10} {'root ' if b.root else '     '} limit {lim:20} {b.describe()}")
        return 0
    only = [n.strip() for n in a.only.split(",") if n.strip()]
    skip = [n.strip() for n in a.skip.split(",") if n.strip()]
    bad = [n for n in only + skip if n not in names]
    if bad:
        ap.error(f"unknown benchmark(s) {', '.join(bad)}: choose from {', '.join(names)}")
    extra: dict[str, list[str]] = {}
    for item in a.args:
        name, sep, rest = item.partition("=")
        if not sep or name not in names:
            ap.error(f"--args {item!r}: must be NAME=ARGS with NAME one of {', '.join(names)}")
        extra[name] = extra.get(name, []) + shlex.split(rest)
    if not 0.1 <= a.limit_scale <= 10:
        ap.error(f"--limit-scale {a.limit_scale}: must be between 0.1 and 10")
    chosen = [b for b in BENCHES if (not only or b.name in only) and b.name not in skip]
    info = {"machine": machine(), "quick": a.quick}
    results: list[Result] = []
    for b in chosen:
        r = run_one(b, a.quick, a.limit_scale, extra.get(b.name))
        results.append(r)
        print(f"   {b.name}: {r.status} in {r.seconds:.0f}s", file=sys.stderr, flush=True)
        if a.out:
            out = Path(a.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{b.name}.stdout").write_text(r.stdout)
            (out / f"{b.name}.stderr").write_text(r.stderr)
    info["machine_at_end"] = {"load": loadavg()}
    summary = {"info": info, "results": [r.to_dict() for r in results]}
    if a.out:
        (Path(a.out) / "summary.json").write_text(json.dumps(summary, indent=1))
    if a.output == "json":
        print(json.dumps(summary, indent=1))
    elif a.output == "markdown":
        print(markdown(summary))
    else:
        con = Console(width=160)
        con.print(machine_line(info["machine"]))
        print_summary(results, con)
    return 0 if all(r.status.startswith(("ok", "skipped")) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
