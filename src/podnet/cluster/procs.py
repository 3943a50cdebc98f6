"""Processes podnet starts: started detached with their output in a log file, recorded by PID and
start time (so a PID the kernel has since given to another program is never signalled), and ended
with SIGTERM, then SIGKILL after a short wait."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from podnet.cluster.cgroup import ClusterCgroup
from podnet.core import journal as jr


def proc_starttime(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    rest = raw[raw.rfind(")") + 2:].split()
    return int(rest[19])


def is_same_process(pid: int, starttime: int | None) -> bool:
    """True when `pid` is alive (not a zombie) and is the very process recorded with `starttime`."""
    now = proc_starttime(pid)
    if now is None or (starttime is not None and now != starttime):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass(frozen=True)
class Started:
    label: str
    pid: int
    starttime: int | None
    log: Path


def start_process(journal: jr.Journal, label: str, argv: Sequence[str], log: Path, *,
                  cgroup: ClusterCgroup | None = None, env: dict[str, str] | None = None,
                  pass_fds: Sequence[int] = ()) -> Started:
    """Start `argv` detached (own session, stdin from /dev/null, output appended to `log`).

    It is recorded in the journal before it starts, and again with its PID and start time after.
    With a cgroup, the process joins it before it runs the program (so do all its children).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    journal.record(jr.PROCESS, label, argv=list(argv), log=str(log))
    run_argv = list(argv)
    if cgroup is not None and cgroup.usable:
        # join the cgroup first, then become the program: same PID, same start time
        run_argv = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup.procs_file), *argv]
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        p = subprocess.Popen(run_argv, stdin=devnull, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True, env=env, pass_fds=tuple(pass_fds))
    st = proc_starttime(p.pid)
    journal.record(jr.PROCESS, label, pid=p.pid, starttime=st)
    # the Popen object is dropped on purpose: the process outlives this command
    p.returncode = 0  # keep Popen.__del__ from warning about a running child
    return Started(label=label, pid=p.pid, starttime=st, log=log)


def stop_processes(procs: Sequence[tuple[int, int | None]], *, grace: float = 3.0,
                   wait_for: Sequence[int] | None = None) -> list[int]:
    """SIGTERM each live (pid, starttime), SIGKILL those still alive after `grace` seconds.

    With `wait_for`, the wait ends as soon as those PIDs have exited (the others are then killed).
    Returns the PIDs that were signalled. Processes whose PID now belongs to another program are left alone.
    """
    live = [(pid, st) for pid, st in procs if is_same_process(pid, st)]
    for pid, _ in live:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    waited = [(p, s) for p, s in live if wait_for is None or p in wait_for]
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_same_process(p, s) for p, s in waited):
        _reap([p for p, _ in live])
        time.sleep(0.05)
    for pid, st in live:
        if is_same_process(pid, st):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(is_same_process(p, s) for p, s in live):
        _reap([p for p, _ in live])
        time.sleep(0.02)
    return [pid for pid, _ in live]


def _reap(pids: Sequence[int]) -> None:
    """Collect those of `pids` that are our own exited children (when `down` runs where they were started)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
