"""Keeping a cluster's daemons alive: one small supervisor process per cluster (`podnet supervise`).

`podnet up` (and `podnet start`) starts it last, recorded in the journal as `supervisor` and in the
cluster's cgroup, so `podnet down` ends it like everything else (first, so it restarts nothing).
It watches the daemons the journal records (`controlplane`, `agent-<node>`) by PID and start time, and
restarts one that died with the very argv and log it was started with (the journal has both):
at once the first time, then after 1, 2, 4 ... 30 s while it keeps dying within 30 s of starting (the
same back-off idea as the kubelet's for crashing containers). It never starts a daemon the journal
does not record.

A machine that joined a cluster has one too, over its own state directory: `podnet join --background`
starts `podnet supervise --state-dir DIR` (`run_joined_supervisor`), and a foreground `podnet join`
becomes (exec) `podnet supervise --state-dir DIR --foreground` (`supervise_in_foreground`: the agent is
its child, the agent's log is copied to the terminal, Ctrl-C or SIGTERM stops the agent and then the
supervisor). Both restart the node's agent
the same way, and are recorded in the journal as `supervisor`; `podnet leave` ends them first.

`restore_network` re-makes what a reboot of the machine removes (the bridge and its address, the guard
routes, the nodes' namespaces and links) from the cluster's config, for `podnet start`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from podnet.cluster.cgroup import ClusterCgroup
from podnet.cluster.procs import Started, is_same_process, proc_starttime, start_process, stop_processes
from podnet.core import journal as jr
from podnet.core.config import ClusterConfig
from podnet.core.layout import host_cidr, plan_nodes
from podnet.core.logfiles import LogFollower
from podnet.net.nodenet import setup_node_netns
from podnet.net.ops import PROTO_PODNET_NODE, ExistsError, NetOps, Route

log = logging.getLogger("podnet.supervisor")


class Starter(Protocol):
    """How the supervisor starts a daemon: `procs.start_process` or `forkstart.ForkStarter.start`."""

    def __call__(self, journal: jr.Journal, label: str, argv: Sequence[str], log: Path, /, *,
                 cgroup: ClusterCgroup | None = None) -> Started: ...


SUPERVISOR = "supervisor"
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # a daemon that ran this long is healthy again: its back-off starts over


def supervised(name: str) -> bool:
    return name == "controlplane" or name.startswith("agent-")


@dataclass
class _Track:
    failures: int = 0
    next_start: float = 0.0
    started: float = 0.0
    pid: int = 0


def backoff(failures: int) -> float:
    """Wait before restart number `failures` (1-based) of a daemon that keeps dying: 0, 1, 2, 4 ... 30 s."""
    if failures <= 1:
        return 0.0
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 2)))


class Supervisor:
    def __init__(self, journal: jr.Journal, cgroup: ClusterCgroup | None = None,
                 clock: Callable[[], float] = time.monotonic, starter: Starter = start_process):
        self.journal = journal
        self.cgroup = cgroup
        self.clock = clock
        self.starter = starter
        self.tracks: dict[str, _Track] = {}
        self.restarts = 0

    def _alive(self, e: jr.JournalEntry) -> bool:
        pid, st = e.attrs.get("pid"), e.attrs.get("starttime")
        return isinstance(pid, int) and pid > 1 and is_same_process(pid, st if isinstance(st, int) else None)

    def check_once(self) -> list[str]:
        """Restart the daemons that died and whose back-off has passed; the labels restarted."""
        _reap_children()
        now = self.clock()
        restarted = []
        for e in self.journal.entries(jr.PROCESS):
            if not supervised(e.name):
                continue
            t = self.tracks.setdefault(e.name, _Track(started=now))
            if self._alive(e):
                if t.pid != e.attrs.get("pid"):
                    t.pid, t.started = int(e.attrs["pid"]), now
                if t.failures and now - t.started >= STABLE_AFTER:
                    t.failures = 0
                continue
            argv, logfile = e.attrs.get("argv"), e.attrs.get("log")
            if not isinstance(argv, list) or not argv or not isinstance(logfile, str):
                continue
            if now < t.next_start:
                continue
            first = "pid" not in e.attrs  # recorded to be started (`podnet up`), not one that died
            if now - t.started >= STABLE_AFTER:
                t.failures = 0
            if not first:
                t.failures += 1
            t.next_start = now + backoff(t.failures + 1)
            cg = self.cgroup if self.cgroup is not None and self.cgroup.path.exists() else None
            try:
                proc = self.starter(self.journal, e.name, [str(a) for a in argv], Path(logfile), cgroup=cg)
            except OSError as ex:
                log.error("cannot restart %s: %s", e.name, ex)
                continue
            t.pid, t.started = proc.pid, now
            restarted.append(e.name)
            if first:
                log.info("started %s (pid %d)", e.name, proc.pid)
                continue
            self.restarts += 1
            log.warning("%s was not running: restarted it (pid %d, restart %d in a row; next wait %.0fs)",
                        e.name, proc.pid, t.failures, backoff(t.failures + 1))
        return restarted

    def run(self, stop: Callable[[], bool], interval: float = 0.2) -> None:
        while not stop():
            self.check_once()
            time.sleep(interval)


def _reap_children() -> None:
    """Collect the daemons this supervisor started that have exited (else they stay zombies)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_supervisor(cfg: ClusterConfig, starter: Starter = start_process) -> None:
    """`podnet supervise`: watch cluster `cfg.name` until SIGTERM/SIGINT, starting daemons with `starter`
    (`forkstart.ForkStarter.start`: by fork from this process's preloaded modules)."""
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    cg = ClusterCgroup.for_cluster(cfg.name)
    cg = cg if cg is not None and cg.usable else None
    log.info("supervising cluster %s (state in %s)", cfg.name, cfg.state_dir)
    Supervisor(jr.Journal(cfg.state_dir), cg, starter=starter).run(lambda: stopping)
    log.info("supervisor stopped")


def run_joined_supervisor(state_dir: Path, *, foreground: bool = False, out: BinaryIO | None = None) -> int:
    """`podnet supervise --state-dir DIR`: keep the agent of a joined machine (recorded in DIR's journal)
    running until SIGTERM/SIGINT; restarts are exec'd with this process's environment (the agent's).
    With `foreground` (what a foreground `podnet join` becomes), start the agent first, copy its log to
    `out`, stop also on SIGHUP, and stop the agent before returning. The number of restarts."""
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT) + ((signal.SIGHUP,) if foreground else ()):
        signal.signal(sig, on_signal)
    journal = jr.Journal(state_dir)
    if foreground:
        agents = [e for e in journal.entries(jr.PROCESS) if e.name.startswith("agent-")
                  and isinstance(e.attrs.get("argv"), list) and isinstance(e.attrs.get("log"), str)]
        if not agents:
            raise ValueError(f"{state_dir} records no agent to run (its journal has none)")
        a = agents[0]
        argv = [str(x) for x in a.attrs["argv"]]
        return supervise_in_foreground(journal, a.name, argv, Path(a.attrs["log"]), stop=lambda: stopping,
                                       out=out)
    log.info("supervising the joined node in %s", state_dir)
    sup = Supervisor(journal)
    sup.run(lambda: stopping)
    log.info("supervisor stopped")
    return sup.restarts


def supervise_in_foreground(journal: jr.Journal, label: str, argv: Sequence[str], log_file: Path, *,
                            stop: Callable[[], bool], env: dict[str, str] | None = None,
                            out: BinaryIO | None = None, interval: float = 0.2,
                            grace: float = 4.0) -> int:
    """Be the supervisor of one daemon in the foreground (a foreground `podnet join`): record this process
    as the journal's `supervisor`, start the daemon (`label`, detached, output to `log_file`, which is
    copied to `out`), restart it with back-off while it dies, and when `stop()` turns true (the caller's
    SIGINT/SIGTERM handler) stop it: SIGTERM, SIGKILL after `grace` seconds (within `podnet leave`'s wait
    for a supervisor). The number of restarts."""
    me = os.getpid()
    journal.record(jr.PROCESS, SUPERVISOR, pid=me, starttime=proc_starttime(me), foreground=True)
    follower = LogFollower(log_file, out) if out is not None else None

    def starter(j: jr.Journal, name: str, args: Sequence[str], logf: Path, /, *,
                cgroup: ClusterCgroup | None = None) -> Started:
        return start_process(j, name, args, logf, cgroup=cgroup, env=env)

    sup = Supervisor(journal, starter=starter)
    started = starter(journal, label, argv, log_file)
    log.info("started %s (pid %d), log %s", label, started.pid, log_file)
    try:
        while not stop():
            sup.check_once()
            if follower is not None:
                follower.poll()
            time.sleep(interval)
    finally:
        procs = []
        for e in journal.entries(jr.PROCESS):
            pid, st = e.attrs.get("pid"), e.attrs.get("starttime")
            if e.name == label and isinstance(pid, int) and pid > 1:
                procs.append((pid, st if isinstance(st, int) else None))
        stopped = stop_processes(procs, grace=grace)
        if follower is not None:
            while follower.poll():  # what the daemon logged while it stopped
                pass
            follower.close()
        log.info("stopped %s (pid %s)", label, ", ".join(str(p) for p in stopped) or "none running")
    return sup.restarts


def start_supervisor(cfg: ClusterConfig, journal: jr.Journal, cgroup: ClusterCgroup | None) -> None:
    import sys

    argv = [sys.executable, "-m", "podnet.cli.main", "supervise", "--name", cfg.name]
    start_process(journal, SUPERVISOR, argv, cfg.state_dir / "logs" / "supervisor.log", cgroup=cgroup)


def supervisor_alive(journal: jr.Journal) -> bool:
    for e in journal.entries(jr.PROCESS):
        if e.name == SUPERVISOR:
            pid, st = e.attrs.get("pid"), e.attrs.get("starttime")
            return isinstance(pid, int) and is_same_process(pid, st if isinstance(st, int) else None)
    return False


def stop_supervisor(journal: jr.Journal, timeout: float = 5.0) -> bool:
    """End the supervisor the journal records (SIGTERM, then SIGKILL after `timeout`) and wait until it
    is gone, so that it restarts nothing while the caller stops the rest; whether one was running."""
    for e in journal.entries(jr.PROCESS):
        if e.name != SUPERVISOR:
            continue
        pid, st = e.attrs.get("pid"), e.attrs.get("starttime")
        start = st if isinstance(st, int) else None
        if not isinstance(pid, int) or pid <= 1 or not is_same_process(pid, start):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_same_process(pid, start) and time.monotonic() < deadline:
            _reap_children()
            time.sleep(0.05)
        if is_same_process(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return True
    return False


# ---- after a reboot -------------------------------------------------------------------------------
def restore_network(cfg: ClusterConfig, ops: NetOps, journal: jr.Journal) -> list[str]:
    """Re-make the cluster's host network where it is missing, from its config and the guard routes its
    journal records; what was made."""
    made: list[str] = []
    bridge = cfg.bridge
    if ops.link_get(bridge) is None:
        ops.bridge_add(bridge)
        made.append(f"bridge {bridge}")
    want = host_cidr(cfg)
    if all(a.cidr != want for a in ops.addr_list(ifname=bridge)):
        ops.addr_add(bridge, want)
    ops.link_set(bridge, up=True)
    for e in journal.entries(jr.ROUTE):
        metric = e.attrs.get("metric")
        if e.attrs.get("netns") or not isinstance(metric, int) or metric <= 0:
            continue
        with contextlib.suppress(ExistsError):
            ops.route_add(Route(dst=e.name, type="unreachable", metric=metric, proto=PROTO_PODNET_NODE))
            made.append(f"guard route {e.name}")
    prefix = ipaddress.IPv4Network(cfg.node_network).prefixlen
    for n in plan_nodes(cfg):
        if not ops.netns_exists(n.netns) or ops.link_get(n.host_if) is None:
            made.append(f"node {n.name}")
        setup_node_netns(ops, netns=n.netns, host_if=n.host_if, bridge=bridge,
                         node_ip_cidr=f"{n.ip}/{prefix}")
    return made
