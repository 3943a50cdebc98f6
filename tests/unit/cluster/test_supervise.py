"""The cluster supervisor (podnet.cluster.supervise): restarts a dead daemon from its journal record, at
once, then with a growing back-off while it keeps dying; leaves live ones and non-daemons alone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from podnet.cluster.procs import is_same_process, start_process
from podnet.cluster.supervise import Supervisor, backoff
from podnet.core import journal as jr


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _entry(j: jr.Journal, label: str) -> jr.JournalEntry:
    return next(e for e in j.entries(jr.PROCESS) if e.name == label)


def _wait_dead(pid: int, starttime: int | None) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not is_same_process(pid, starttime):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not end")


def test_backoff_schedule() -> None:
    assert [backoff(n) for n in range(1, 9)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_killed_daemon_is_restarted_at_once_with_its_argv_and_log(tmp_path: Path) -> None:
    j = jr.Journal(tmp_path)
    log = tmp_path / "logs" / "controlplane.log"
    first = start_process(j, "controlplane", ["sleep", "30"], log)
    other = start_process(j, "helper", ["sleep", "30"], tmp_path / "logs" / "helper.log")
    sup = Supervisor(j, clock=Clock())
    try:
        assert sup.check_once() == []
        os.kill(first.pid, signal.SIGKILL)
        os.kill(other.pid, signal.SIGKILL)
        _wait_dead(first.pid, first.starttime)
        assert sup.check_once() == ["controlplane"]  # not "helper": only podnet's daemons are supervised
        e = _entry(j, "controlplane")
        assert e.attrs["pid"] != first.pid
        assert e.attrs["argv"] == ["sleep", "30"] and e.attrs["log"] == str(log)
        assert is_same_process(e.attrs["pid"], e.attrs["starttime"])
        assert sup.check_once() == []
    finally:
        for e in j.entries(jr.PROCESS):
            if is_same_process(e.attrs["pid"], e.attrs.get("starttime")):
                os.kill(e.attrs["pid"], signal.SIGKILL)
                _wait_dead(e.attrs["pid"], e.attrs.get("starttime"))


def test_a_daemon_that_keeps_dying_is_restarted_with_back_off(tmp_path: Path) -> None:
    j = jr.Journal(tmp_path)
    p = start_process(j, "agent-n1", ["true"], tmp_path / "logs" / "agent.log")
    clock = Clock()
    sup = Supervisor(j, clock=clock)
    starts = []
    _wait_dead(p.pid, p.starttime)
    for step in range(0, 160):  # 16 s of fake time in 0.1 s steps
        clock.now = 100.0 + step / 10
        if sup.check_once():
            starts.append(round(clock.now - 100.0, 1))
            e = _entry(j, "agent-n1")
            _wait_dead(e.attrs["pid"], e.attrs["starttime"])
    assert starts == [0.0, 1.0, 3.0, 7.0, 15.0]
    # once it stays up long enough, the next death is answered at once again
    e = _entry(j, "agent-n1")
    j.record(jr.PROCESS, "agent-n1", argv=["sleep", "30"])
    clock.now = 200.0
    assert sup.check_once() == ["agent-n1"]
    e = _entry(j, "agent-n1")
    clock.now = 240.0
    assert sup.check_once() == []
    os.kill(e.attrs["pid"], signal.SIGKILL)
    _wait_dead(e.attrs["pid"], e.attrs["starttime"])
    clock.now = 240.1
    assert sup.check_once() == ["agent-n1"]
    e = _entry(j, "agent-n1")
    os.kill(e.attrs["pid"], signal.SIGKILL)
    _wait_dead(e.attrs["pid"], e.attrs["starttime"])


FOREGROUND = """
import signal, sys, time
from pathlib import Path
from podnet.cluster.supervise import supervise_in_foreground
from podnet.core import journal as jr

stopping = []
signal.signal(signal.SIGINT, lambda s, f: stopping.append(s))
d = Path(sys.argv[1])
n = supervise_in_foreground(jr.Journal(d), "agent-n1", [sys.executable, "-c", sys.argv[2]],
                            d / "logs" / "agent.log", stop=lambda: bool(stopping), out=sys.stdout.buffer,
                            interval=0.05, grace=2.0)
print("restarts", n, flush=True)
"""

DAEMON = "import os, time; print('daemon', os.getpid(), flush=True); time.sleep(60)"


def test_a_foreground_supervisor_restarts_its_daemon_shows_its_log_and_stops_it_on_ctrl_c(
        tmp_path: Path) -> None:
    """A foreground `podnet join`: the supervisor is the command itself (recorded as `supervisor`), a
    kill -9 of the daemon's recorded PID is followed by a restart, its log reaches the terminal, and
    SIGINT stops the daemon, then the supervisor."""
    import subprocess
    import sys

    j = jr.Journal(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", FOREGROUND, str(tmp_path), DAEMON], stdout=subprocess.PIPE)
    pids: list[tuple[int, int | None]] = []
    try:
        def daemon() -> tuple[int, int | None] | None:
            e = next((e for e in j.entries(jr.PROCESS) if e.name == "agent-n1"), None)
            if e is None or not isinstance(e.attrs.get("pid"), int):
                return None
            p = (e.attrs["pid"], e.attrs.get("starttime"))
            return p if is_same_process(*p) else None

        deadline = time.monotonic() + 10
        while (first := daemon()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first is not None
        pids.append(first)
        log = tmp_path / "logs" / "agent.log"
        while f"daemon {first[0]}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # it runs (and logs) before it is killed
        sup = _entry(j, "supervisor")
        assert sup.attrs["pid"] == proc.pid and sup.attrs["foreground"] is True
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while ((second := daemon()) is None or second == first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second is not None and second != first
        pids.append(second)
        while f"daemon {second[0]}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # a poll of the log after the line
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        lines = out.decode().splitlines()
        assert lines == [f"daemon {first[0]}", f"daemon {second[0]}", "restarts 1"]
        assert not is_same_process(*second)  # stopped with the supervisor
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for p in pids:
            if is_same_process(*p):
                os.kill(p[0], signal.SIGKILL)
