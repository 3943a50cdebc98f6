"""Starting a cluster's daemons by fork from the supervisor, a fork server (zygote) for them.

A control plane and N node agents are N + 1 Python interpreters that import mostly the same modules
(asyncio, aiohttp, pyroute2, cryptography, the model, the client): ~45 MiB of module objects and
code each when every one imports them itself. The supervisor imports them once (`preload`), moves
every object it has into the permanent generation (`gc.freeze()`, so no collection in a child ever
writes to those objects' headers), and forks each daemon from that image instead of running
`python -m podnet.cli.main ...` anew: the children share those pages copy-on-write, and each one's
PSS counts only its share of them plus what it wrote itself.

A forked daemon is what the exec'd one would be: its own session, its log file as stdout/stderr,
/dev/null as stdin, the cluster's cgroup, the network namespace named by the argv's `nsenter --net=`
prefix, default signal handlers, `/proc/<pid>/cmdline` set to the argv it stands for (so `ps`
and the benches still tell daemons apart; needs CAP_SYS_RESOURCE, which root has), and the same
journal record (argv, log, PID, start time), so `podnet down`, the supervisor's restarts and `podnet
start` treat it like any other. An argv this module does not know (another program, tests'
stand-ins) is exec'd as before (`procs.start_process`), as is every daemon when the supervisor has
a second thread (fork would copy a lock held by it) or `PODNET_NO_FORKSERVER=1` is set (the
benches' baseline).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from podnet.cluster.cgroup import ClusterCgroup
from podnet.cluster.procs import Started, proc_starttime, start_process
from podnet.core import journal as jr
from podnet.net.nsthread import setns_net

log = logging.getLogger("podnet.supervisor")

ENTRY = ("-m", "podnet.cli.main")  # how up/start/supervise name a podnet daemon in an argv
NSENTER_NET = "--net="
NO_FORKSERVER_ENV = "PODNET_NO_FORKSERVER"
HOST_NETNS_ENV = "PODNET_HOST_NETNS_FD"  # agents pull images from the machine's own network namespace

_PR_SET_MM = 35
_PR_SET_MM_ARG_START = 8
_PR_SET_MM_ARG_END = 9
_cmdline_buffers: list[ctypes.Array[ctypes.c_char]] = []  # kept alive: the kernel reads them


@dataclass(frozen=True)
class DaemonArgv:
    """A podnet daemon's argv taken apart: the network namespace to enter (None: this one) and the
    arguments of `podnet` (e.g. `["agent", "--name", ...]`)."""

    netns: str | None
    args: list[str]

    @property
    def command(self) -> str:
        return self.args[0]


def parse_daemon_argv(argv: Sequence[str], python: str = sys.executable) -> DaemonArgv | None:
    """`[nsenter --net=PATH --] <this python> -m podnet.cli.main COMMAND ...`, else None."""
    argv = list(argv)
    netns = None
    if argv[:1] == ["nsenter"]:
        if len(argv) < 3 or not argv[1].startswith(NSENTER_NET) or argv[2] != "--":
            return None
        netns, argv = argv[1][len(NSENTER_NET):], argv[3:]
    if len(argv) < 4 or argv[0] != python or tuple(argv[1:3]) != ENTRY:
        return None
    return DaemonArgv(netns, argv[3:])


_PR_SET_NAME = 15
_LONG_VALUES = ("--server", "--token-file", "--state-dir", "--node-ip")  # left out when space is short


def set_cmdline(argv: Sequence[str]) -> bool:
    """Make /proc/self/cmdline read `argv`, and the process name (`comm`, what `ps -e` and `top` show)
    `pn-<command>`. False when only a shortened form fits.

    With CAP_SYS_RESOURCE the kernel is pointed at a new buffer (prctl PR_SET_MM); without it the
    supervisor's own argument area is overwritten in place, NUL-padded: what fits of
    `podnet COMMAND --name ... --node-name ...` (the other values are the first to go).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    d = parse_daemon_argv(argv)
    if d is not None:
        name = ctypes.create_string_buffer(f"pn-{d.command}"[:15].encode())
        prctl(_PR_SET_NAME, ctypes.addressof(name), 0, 0, 0)
    data = b"\0".join(a.encode() for a in argv) + b"\0"
    buf = ctypes.create_string_buffer(data, len(data))
    start = ctypes.addressof(buf)
    end = start + len(data)
    # the kernel keeps arg_start <= arg_end at every step: move the end first when the new area is higher
    order = ((_PR_SET_MM_ARG_END, end), (_PR_SET_MM_ARG_START, start))
    for attempt in (order, order[::-1]):
        if all(prctl(_PR_SET_MM, what, addr, 0, 0) == 0 for what, addr in attempt):
            _cmdline_buffers.append(buf)
            return True
    return _overwrite_args(argv if d is None else ["podnet", *d.args])


def _overwrite_args(argv: Sequence[str]) -> bool:
    try:
        rest = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        arg_start, arg_end = int(rest[45]), int(rest[46])  # fields 48 and 49 of proc(5)
    except (OSError, IndexError, ValueError):
        return False
    room = arg_end - arg_start
    words = list(argv)
    full = True
    while words and len(b"\0".join(w.encode() for w in words)) + 1 > room:
        full = False
        cut = next((i for i, w in enumerate(words) if w in _LONG_VALUES), None)
        if cut is not None:
            del words[cut:cut + 2]
        else:
            words.pop()
    if room <= 0 or not words:
        return False
    data = b"\0".join(w.encode() for w in words)
    ctypes.memmove(arg_start, data.ljust(room, b"\0"), room)
    return full


def _fileno(stream: object) -> int | None:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except Exception:
        return None


class ForkStarter:
    """`start(journal, label, argv, log, cgroup)` as `procs.start_process`, by fork where it can.

    `preload[command]()` imports what daemon COMMAND needs (called once, before its first fork);
    `run(args)` runs `podnet ARGS` in the child and returns its exit code.
    """

    def __init__(self, run: Callable[[list[str]], int], preload: Mapping[str, Callable[[], None]],
                 *, enabled: bool | None = None):
        self.run = run
        self.preload = dict(preload)
        self.enabled = os.environ.get(NO_FORKSERVER_ENV, "") != "1" if enabled is None else enabled
        self._loaded: set[str] = set()

    def warm(self, commands: Sequence[str]) -> None:
        """Import what COMMANDS need now (the supervisor does it before its first check)."""
        if not self.enabled:
            return
        fresh = [c for c in commands if c in self.preload and c not in self._loaded]
        for c in fresh:
            try:
                self.preload[c]()
            except Exception:  # never the supervisor's end: that daemon is exec'd instead
                log.exception("cannot preload the modules of `podnet %s`: it will be started by exec", c)
                del self.preload[c]
                continue
            self._loaded.add(c)
        if fresh:
            gc.collect()
            gc.freeze()  # what the image holds now is never traversed (written) by a child's collector

    def forkable(self, argv: Sequence[str]) -> DaemonArgv | None:
        if not self.enabled or threading.active_count() > 1:
            return None
        d = parse_daemon_argv(argv)
        return d if d is not None and d.command in self.preload else None

    def start(self, journal: jr.Journal, label: str, argv: Sequence[str], logfile: Path, *,
              cgroup: ClusterCgroup | None = None) -> Started:
        d = self.forkable(argv)
        if d is not None:
            self.warm([d.command])
        if d is None or d.command not in self.preload:  # not ours, or its modules did not import
            return start_process(journal, label, argv, logfile, cgroup=cgroup)
        logfile.parent.mkdir(parents=True, exist_ok=True)
        journal.record(jr.PROCESS, label, argv=list(argv), log=str(logfile))
        out = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            pid = os.fork()
            if pid == 0:  # the child never returns from here
                self._child(d, list(argv), out, cgroup)
        finally:
            os.close(out)
        st = proc_starttime(pid)
        journal.record(jr.PROCESS, label, pid=pid, starttime=st)
        # the other daemons' modules now, while this one starts (up starts the agents next)
        self.warm(list(self.preload))
        return Started(label=label, pid=pid, starttime=st, log=logfile)

    def _child(self, d: DaemonArgv, argv: list[str], out: int, cgroup: ClusterCgroup | None) -> None:
        code = 1
        try:
            os.setsid()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
                signal.signal(sig, signal.SIG_DFL)
            root = logging.getLogger()
            for h in list(root.handlers):  # the supervisor's log file is not this daemon's
                root.removeHandler(h)
                with contextlib.suppress(Exception):
                    h.close()
            root.setLevel(logging.WARNING)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.close(out)
            for fd, attr in ((1, "stdout"), (2, "stderr")):
                stream = getattr(sys, attr)
                if _fileno(stream) != fd:  # a wrapper of the parent's (a test's capture): write to the log
                    setattr(sys, attr, open(fd, "w", buffering=1, encoding="utf-8",  # noqa: SIM115
                                            errors="backslashreplace", closefd=False))
            if cgroup is not None and cgroup.usable:
                cgroup.procs_file.write_text(str(os.getpid()))
            env = {}
            if d.netns is not None:
                # the machine's namespace stays reachable for image pulls, as `up` hands it to exec'd agents
                env[HOST_NETNS_ENV] = str(os.open("/proc/self/ns/net", os.O_RDONLY))
                fd = os.open(d.netns, os.O_RDONLY)
                setns_net(fd)
                os.close(fd)
            os.environ.update(env)
            set_cmdline(argv[3:] if d.netns is not None else argv)
            sys.argv = ["podnet", *d.args]
            gc.enable()
            code = self.run(d.args)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # a child must never return into the supervisor
            with contextlib.suppress(Exception):
                import traceback

                traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)
