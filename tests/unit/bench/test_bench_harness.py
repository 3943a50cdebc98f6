"""The benchmark harness (bench/run_all.py) and the helpers the benches share (bench/common.py)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))

import bench_cluster  # noqa: E402
import bench_soak  # noqa: E402
import run_all  # noqa: E402
from common import Figure, fmt, p50, p99, pct, rss_parts  # noqa: E402


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert pct(values, 99) == 99.0
    assert pct(values, 100) == 100.0
    assert pct(values, 1) == 1.0
    assert p99([7.0]) == 7.0
    assert p50([3.0, 1.0, 2.0]) == 2.0
    assert math.isnan(p50([])) and math.isnan(p99([]))


def test_figure_ratio_and_formatting() -> None:
    f = Figure("throughput", "via ClusterIP", 9.8, "Gbit/s", 10.0, "direct", higher_is_better=True)
    assert f.ratio == pytest.approx(0.98)
    assert f.to_dict()["ratio"] == pytest.approx(0.98)
    assert Figure("up", "no baseline", 2.0, "s").ratio is None
    assert fmt(1234.0, "Services/s") == "1,234 Services/s"
    assert fmt(float("nan"), "ms") == "n/a"


def _bench(tmp_path: Path, body: str, limit: float = 30.0) -> run_all.Bench:
    script = tmp_path / "bench_fake.py"
    script.write_text('"""A fake benchmark."""\n' + body)
    return run_all.Bench("fake", str(script), False, [], [], limit, limit)


def test_run_one_collects_json_figures(tmp_path: Path) -> None:
    doc = {"bench": "fake", "figures": [{"group": "g", "name": "n", "value": 1.5, "unit": "s"}]}
    body = f"import json, sys\nprint(json.dumps({doc!r}))\nprint(sys.argv[1:], file=sys.stderr)\n"
    b = _bench(tmp_path, body)
    r = run_all.run_one(b, quick=False, limit_scale=1.0, extra=["--services", "7"])
    assert r.status == "ok"
    assert r.data == doc
    assert "'--services', '7'" in r.stderr


def test_run_one_keeps_text_output_and_reports_failure(tmp_path: Path) -> None:
    b = _bench(tmp_path, "print('creates/s 1234')\nraise SystemExit(3)\n")
    r = run_all.run_one(b, quick=False, limit_scale=1.0)
    assert r.status == "failed (rc 3)"
    assert r.data is None and r.stdout == "creates/s 1234\n"


def test_run_one_interrupts_an_overrunning_bench_so_it_can_clean_up(tmp_path: Path) -> None:
    body = ("import time\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n"
            "    print('removed my cluster', flush=True)\n    raise SystemExit(130)\n")
    r = run_all.run_one(_bench(tmp_path, body, limit=1.0), quick=False, limit_scale=1.0)
    assert r.status == "timeout after 1s"
    assert r.stdout == "removed my cluster\n"
    assert r.seconds < 10


def test_run_all_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        run_all.main(["--only", "nope"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert ("unknown benchmark(s) nope: choose from store, endpoints, slice_rate, dns, proxy, policy, "
            "api_bodies, up, idle_memory, dns_memory, cluster") in err
    with pytest.raises(SystemExit):
        run_all.main(["--args", "cluster"])
    assert "--args 'cluster': must be NAME=ARGS" in capsys.readouterr().err


def test_run_all_lists_every_bench(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_all.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("store", "endpoints", "dns", "proxy", "up", "idle_memory", "dns_memory", "cluster"):
        assert f"\n{name} " in "\n" + out
    assert "Cluster-level benchmarks on a real `podnet up` cluster" in out


def test_run_all_writes_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    fake = _bench(tmp_path, "print('{\"bench\": \"fake\", \"figures\": [], \"errors\": []}')\n")
    monkeypatch.setattr(run_all, "BENCHES", [fake])
    assert run_all.main(["--out", str(tmp_path / "out"), "-o", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert printed == saved
    assert saved["results"][0]["status"] == "ok" and saved["results"][0]["data"]["bench"] == "fake"


def test_bench_cluster_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, msg in ((["--phases", "up,warp"], "unknown phase(s) warp"),
                      (["--services", "1000,x"], "--services '1000,x': must be whole numbers"),
                      (["--services", "0"], "--services [0]: each must be between 1 and 100000"),
                      (["--max-pods", "5000"], "--max-pods 5000: must be between 1 and 2000")):
        with pytest.raises(SystemExit):
            bench_cluster.parse_args(argv)
        assert msg in capsys.readouterr().err
    a = bench_cluster.parse_args(["--services", "10000,1000", "--phases", "connlat"])
    assert a.services == [1000, 10000] and a.phases == ["connlat"]


def test_markdown_from_a_saved_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fig = Figure("throughput", "iperf3 via ClusterIP", 9.8, "Gbit/s", 10.0, "direct, same run", note="a|b")
    machine = {"cores": 2, "cpu": "X", "mem_total_gib": 8, "kernel": "6.1", "python": "3.11", "time_utc": "t",
               "load": [1, 1, 1]}
    summary = {"info": {"machine": machine},
               "results": [{"name": "cluster", "status": "ok", "seconds": 12.0, "load_before": [1, 1, 1],
                            "load_after": [2, 2, 2], "data": {"figures": [fig.to_dict()], "errors": ["e1"]}},
                           {"name": "store", "status": "ok", "seconds": 3.0, "load_before": [1, 1, 1],
                            "load_after": [1, 1, 1], "data": None, "stdout": "sqlite 9,567 creates/s\n"}]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert run_all.main(["--from", str(tmp_path), "-o", "markdown"]) == 0
    out = capsys.readouterr().out
    assert ("| cluster | iperf3 via ClusterIP | 9.8 Gbit/s | 10.0 Gbit/s (direct, same run) | 0.98x | a/b |"
            in out)
    assert "cluster reported: e1" in out
    assert "```\nsqlite 9,567 creates/s\n```" in out
    with pytest.raises(SystemExit):
        run_all.main(["--from", str(tmp_path / "missing")])
    assert "no readable summary.json there" in capsys.readouterr().err


RSS_PARTS_PROBE = """
import json, os, sys, threading
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from common import rss_parts
before = rss_parts(os.getpid())
blocks = []
t = threading.Thread(target=lambda: blocks.extend(bytearray(100_000) for _ in range(40)))  # 4 MB
t.start()
t.join()
parts = rss_parts(os.getpid())
status = Path("/proc/self/status").read_text()
rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
print(json.dumps({"before": before, "parts": parts, "rss": rss}))
"""


def test_rss_parts_add_up_to_the_resident_memory() -> None:
    """bench_soak's breakdown (main heap, threads' malloc arenas, other anonymous, files), measured in a
    fresh interpreter (in a test worker that ran other tests, a thread may reuse memory already resident)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", RSS_PARTS_PROBE, str(BENCH)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    got = json.loads(out)
    before, parts, rss = got["before"], got["parts"], got["rss"]
    assert parts["heap"] > 0 and parts["file"] > 0
    # the thread's blocks are malloc'd: in its own arena (or, with many arenas about, a shared one)
    assert parts["heap"] + parts["arenas"] - before["heap"] - before["arenas"] >= 3800, (before, parts)
    assert 0.9 * rss <= sum(parts.values()) <= 1.1 * rss, (parts, rss)
    assert rss_parts(2**22 + 7) == {"heap": 0, "arenas": 0, "anon": 0, "file": 0}  # no such process


def test_bench_soak_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_soak.parse_args(["--trace", "65"])
    assert "--trace 65: must be between 0 and 64" in capsys.readouterr().err
    assert bench_soak.slope([0, 1000, 2000, 3000], [100, 102, 104, 106]) == pytest.approx(0.002)
    assert bench_soak.slope([0, 1000, 2000, 3000], [100, 110, 100, 110]) == pytest.approx(0.002)
    assert bench_soak.slope([5, 5], [1, 2]) == 0.0
    a = bench_soak.parse_args(["--full", "--trace", "1", "--snap-at", "17000"])
    assert (a.cycles, a.idle, a.trace, a.snap_at, a.sample_every) == (30000, 120.0, 1, [17000], 1500)
