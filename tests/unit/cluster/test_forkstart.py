"""Daemons forked from the supervisor (podnet.cluster.forkstart): which argvs are forked, what a forked
daemon is (own session, its log as stdout/stderr, its exit code, its journal record, its cmdline), the
exec fallback, and the supervisor starting a daemon `podnet up` recorded without a PID."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from podnet.cluster.forkstart import ForkStarter, parse_daemon_argv
from podnet.cluster.procs import is_same_process
from podnet.cluster.supervise import Supervisor
from podnet.core import journal as jr

PY = sys.executable


def _wait_exit(pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    raise AssertionError(f"child {pid} did not exit")


def test_only_podnet_daemon_argvs_are_taken_apart() -> None:
    d = parse_daemon_argv(["nsenter", "--net=/run/netns/pn-x-node-1", "--", PY, "-m", "podnet.cli.main",
                           "agent", "--name", "x"])
    assert d is not None and d.netns == "/run/netns/pn-x-node-1" and d.args == ["agent", "--name", "x"]
    d = parse_daemon_argv([PY, "-m", "podnet.cli.main", "controlplane", "--name", "x"])
    assert d is not None and d.netns is None and d.command == "controlplane"
    assert parse_daemon_argv(["sleep", "30"]) is None
    assert parse_daemon_argv(["/usr/bin/python3.9", "-m", "podnet.cli.main", "agent"]) is None  # not this one
    assert parse_daemon_argv(["nsenter", "--net=/x", PY, "-m", "podnet.cli.main", "agent"]) is None  # no "--"
    assert parse_daemon_argv([PY, "-m", "podnet.cli.main"]) is None  # no command


def _fake_daemon(args: list[str]) -> int:
    """What the forked child runs: reports on itself into its log (stdout), exits with args[1]."""
    print(json.dumps({"args": args, "sid": os.getsid(0), "pid": os.getpid(), "argv": sys.argv,
                      "stdin": os.readlink("/proc/self/fd/0"),
                      "cmdline": [a for a in Path("/proc/self/cmdline").read_text().split("\0") if a],
                      "comm": Path("/proc/self/comm").read_text().strip()}), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    return int(args[1])


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier tests in this process may leave an idle thread behind; the supervisor has none."""
    monkeypatch.setattr(threading, "active_count", lambda: 1)


def test_a_forked_daemon_runs_in_its_own_session_with_its_log_and_journal_record(tmp_path: Path,
                                                                                  one_thread: None) -> None:
    loaded: list[str] = []
    starter = ForkStarter(_fake_daemon, {"fake": lambda: loaded.append("fake")}, enabled=True)
    j = jr.Journal(tmp_path)
    log = tmp_path / "logs" / "fake.log"
    argv = [PY, "-m", "podnet.cli.main", "fake", "7"]
    started = starter.start(j, "agent-n1", argv, log)
    assert _wait_exit(started.pid) == 7
    assert loaded == ["fake"]  # preloaded once, before the fork
    e = next(e for e in j.entries(jr.PROCESS) if e.name == "agent-n1")
    assert e.attrs == {"argv": argv, "log": str(log), "pid": started.pid, "starttime": started.starttime}
    lines = log.read_text().splitlines()
    report = json.loads(lines[0])
    assert lines[1] == "to stderr"
    assert report["args"] == ["fake", "7"] and report["pid"] == started.pid
    assert report["sid"] == started.pid  # a session of its own, as start_new_session gives
    assert report["argv"] == ["podnet", "fake", "7"] and report["stdin"] == "/dev/null"
    assert report["cmdline"][:3] == ["podnet", "fake", "7"] or report["cmdline"] == argv
    assert report["comm"] == "pn-fake"
    assert os.getsid(0) != started.pid  # this process is untouched
    again = starter.start(j, "agent-n1", argv, log)
    assert _wait_exit(again.pid) == 7 and again.pid != started.pid
    assert loaded == ["fake"]  # no second preload


def test_a_second_thread_makes_the_starter_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    starter = ForkStarter(_fake_daemon, {"fake": lambda: None}, enabled=True)
    assert starter.forkable([PY, "-m", "podnet.cli.main", "fake"]) is None


def test_a_daemon_that_raises_exits_1_with_the_traceback_in_its_log(tmp_path: Path, one_thread: None) -> None:
    def broken(args: list[str]) -> int:
        raise RuntimeError("boom in the child")

    starter = ForkStarter(broken, {"fake": lambda: None}, enabled=True)
    log = tmp_path / "fake.log"
    started = starter.start(jr.Journal(tmp_path), "controlplane", [PY, "-m", "podnet.cli.main", "fake"], log)
    assert _wait_exit(started.pid) == 1
    assert "RuntimeError: boom in the child" in log.read_text()


def test_other_argvs_and_a_disabled_fork_server_exec_as_before(tmp_path: Path) -> None:
    j = jr.Journal(tmp_path)
    starter = ForkStarter(_fake_daemon, {"fake": lambda: None}, enabled=True)
    s1 = starter.start(j, "helper", ["sh", "-c", "echo exec-ed"], tmp_path / "a.log")
    off = ForkStarter(_fake_daemon, {"fake": lambda: None}, enabled=False)
    s2 = off.start(j, "controlplane", [PY, "-c", "print('python ran')", "-m", "podnet.cli.main", "fake"],
                   tmp_path / "b.log")
    for s in (s1, s2):
        _wait_exit(s.pid)
    assert (tmp_path / "a.log").read_text() == "exec-ed\n"
    assert (tmp_path / "b.log").read_text() == "python ran\n"


def test_the_cmdline_is_rewritten_in_place_when_prctl_is_not_allowed(tmp_path: Path) -> None:
    """Without CAP_SYS_RESOURCE the argument area is overwritten: what fits, long values first to go."""
    script = tmp_path / "t.py"
    script.write_text("from podnet.cluster.forkstart import _overwrite_args\n"
                      "ok = _overwrite_args(['podnet', 'agent', '--name', 'c',"
                      " '--server', 'unix:///' + 'x' * 200, '--node-name', 'c-node-1'])\n"
                      "print(ok, open('/proc/self/cmdline', 'rb').read().rstrip(b'\\0').split(b'\\0'))\n")
    out = subprocess.run([PY, str(script), "y" * 30], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False [b'podnet', b'agent', b'--name', b'c', b'--node-name', b'c-node-1']"


def test_the_supervisor_starts_a_daemon_recorded_without_a_pid_and_counts_no_restart(tmp_path: Path) -> None:
    j = jr.Journal(tmp_path)
    log = tmp_path / "logs" / "controlplane.log"
    j.record(jr.PROCESS, "controlplane", argv=["sleep", "30"], log=str(log))  # what `podnet up` writes
    sup = Supervisor(j)
    assert sup.check_once() == ["controlplane"]
    e = next(e for e in j.entries(jr.PROCESS) if e.name == "controlplane")
    try:
        assert is_same_process(e.attrs["pid"], e.attrs["starttime"])
        assert sup.restarts == 0 and sup.tracks["controlplane"].failures == 0
        assert sup.check_once() == []
    finally:
        os.kill(e.attrs["pid"], 9)
        _wait_exit(e.attrs["pid"])


@pytest.mark.parametrize("value,enabled", [("1", False), ("", True)])
def test_podnet_no_forkserver_turns_forking_off(monkeypatch: pytest.MonkeyPatch, value: str,
                                                enabled: bool) -> None:
    monkeypatch.setenv("PODNET_NO_FORKSERVER", value)
    assert ForkStarter(_fake_daemon, {}).enabled is enabled


def test_a_preload_that_fails_makes_that_daemon_exec_and_the_supervisor_go_on(tmp_path: Path,
                                                                                one_thread: None) -> None:
    def broken() -> None:
        raise ImportError("no module named nowhere")

    starter = ForkStarter(_fake_daemon, {"controlplane": broken}, enabled=True)
    argv = [PY, "-m", "podnet.cli.main", "controlplane", "--name", "no-such-cluster-fs"]
    assert starter.forkable(argv) is not None
    s = starter.start(jr.Journal(tmp_path), "controlplane", argv, tmp_path / "cp.log")
    assert _wait_exit(s.pid) == 1  # the real `podnet controlplane`, exec'd (its message below)
    assert 'error: cluster "no-such-cluster-fs" not found' in (tmp_path / "cp.log").read_text()
    assert "controlplane" not in starter.preload
