"""Starting container processes (through the shim) and following them, also after an agent restart.

`Launcher` is the seam tests replace: `ShimLauncher` runs real processes; a fake one can
play exits on demand. A `ContainerProcess` survives the agent: `ShimLauncher.adopt`
re-attaches to a shim that an earlier agent started (checked by pid and start time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

SHIM = str(Path(__file__).with_name("shim.py"))
OCI_SHIM = str(Path(__file__).with_name("ocishim.py"))


@dataclass
class OciLaunch:
    """A container from a real image: a bundle (config.json written) run by an OCI runtime."""
    bundle: Path
    lower: Path  # the image's shared unpacked root filesystem
    runtime: str  # runc
    runtime_root: Path
    container_id: str
    oom_file: str = ""  # the memory cgroup's oom_control/memory.events, read after the exit


@dataclass
class LaunchSpec:
    argv: list[str]
    env: dict[str, str]
    run_dir: Path  # one per container start: pid.json, exit.json, shim.err
    log_path: Path
    netns_path: str = ""  # /run/netns/<pod-netns>; "" = stay in the agent's namespace (tests)
    hostname: str = ""
    resolv_conf: str = ""
    hosts: str = ""
    working_dir: str = ""
    oci: OciLaunch | None = None
    mounts: list[tuple[str, str, bool]] = field(default_factory=list)
    """Volume bind mounts for the built-in runtime: (destination, host source, read-only)."""
    stdin: bool = False  # the container spec's stdin / stdinOnce / tty: the shim holds the console
    stdin_once: bool = False
    tty: bool = False

    def console_args(self) -> list[str]:
        """The shims' flags for the container's console (agent/console.py)."""
        flags = (("--stdin", self.stdin), ("--stdin-once", self.stdin_once), ("--tty", self.tty))
        return [arg for flag, on in flags if on for arg in (flag, "1")]


@dataclass
class ExitInfo:
    exit_code: int
    reason: str  # Completed, Error, StartError
    message: str = ""
    signal: int | None = None
    started_at: float = 0.0
    finished_at: float = field(default_factory=time.time)


class ContainerProcess(Protocol):
    shim_pid: int
    shim_start: int

    def container_pid(self) -> int | None: ...
    def started_at(self) -> float | None: ...
    async def wait_started(self, timeout: float = 10.0) -> bool: ...
    async def wait(self) -> ExitInfo: ...
    def signal(self, sig: int) -> None: ...
    def alive(self) -> bool: ...


class Launcher(Protocol):
    def start(self, spec: LaunchSpec) -> ContainerProcess: ...
    def adopt(self, run_dir: Path, shim_pid: int, shim_start: int) -> ContainerProcess | None: ...


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    try:
        if rest[0] == "Z":
            return None  # a zombie is gone for our purposes
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def read_exit(run_dir: Path) -> ExitInfo | None:
    try:
        data = json.loads((run_dir / "exit.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    code = int(data.get("exitCode", 0))
    reason = str(data.get("reason") or ("Completed" if code == 0 else "Error"))
    return ExitInfo(code, reason, str(data.get("message", "")), data.get("signal"),
                    float(data.get("startedAt", 0.0)), float(data.get("finishedAt", time.time())))


class ShimProcess:
    def __init__(self, run_dir: Path, shim_pid: int, shim_start: int, popen: subprocess.Popen[bytes] | None):
        self.run_dir = run_dir
        self.shim_pid = shim_pid
        self.shim_start = shim_start
        self._popen = popen
        self._exit: ExitInfo | None = None

    def _oci_pid(self) -> int | None:
        """The container's own pid when an OCI runtime runs it (and it is still that process)."""
        info = self._pid_info()
        if not info.get("oci") or not info.get("pid"):
            return None
        pid = int(info["pid"])
        return pid if proc_start_time(pid) == int(info.get("pidStart") or 0) else None

    def _pid_info(self) -> dict[str, float]:
        try:
            data: dict[str, float] = json.loads((self.run_dir / "pid.json").read_text())
            return data
        except (FileNotFoundError, ValueError):
            return {}

    def container_pid(self) -> int | None:
        pid = self._pid_info().get("pid")
        return int(pid) if pid else None

    def started_at(self) -> float | None:
        t = self._pid_info().get("startedAt")
        return float(t) if t else None

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return proc_start_time(self.shim_pid) == self.shim_start

    async def wait_started(self, timeout: float = 10.0) -> bool:
        """True once the command runs; False when it failed to start (or the shim died first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.run_dir / "pid.json").exists():
                return True
            if (self.run_dir / "exit.json").exists() or not self.alive():
                return (self.run_dir / "pid.json").exists()
            await asyncio.sleep(0.01)
        return False

    async def wait(self) -> ExitInfo:
        if self._exit is not None:
            return self._exit
        await self._wait_gone()
        info = read_exit(self.run_dir)
        if info is None:  # the shim was killed (SIGKILL to the group): so was the container
            info = ExitInfo(137, "Error", "", signal.SIGKILL, self.started_at() or 0.0, time.time())
        self._exit = info
        return info

    async def _wait_gone(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(self.shim_pid)
        except (OSError, AttributeError):
            fd = -1
        if fd >= 0 and self.alive():
            gone = asyncio.Event()
            loop.add_reader(fd, gone.set)
            try:
                while self.alive():  # readable once the process exits; recheck guards a reused pid
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(gone.wait(), 1.0)
                    gone.clear()
            finally:
                loop.remove_reader(fd)
                os.close(fd)
        else:
            if fd >= 0:
                os.close(fd)
            while self.alive():
                await asyncio.sleep(0.1)
        if self._popen is not None:
            self._popen.wait()

    def signal(self, sig: int) -> None:
        """Signal the container's whole process group (the shim ignores TERM/INT/HUP)."""
        if not self.alive():
            return
        oci_pid = self._oci_pid()
        if oci_pid is not None:  # the shim waits for it and records the exit
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(oci_pid, sig)
            return
        leader = self._session_leader()
        if leader is not None:  # a container on a terminal leads a session (and group) of its own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(leader, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.shim_pid, sig)

    def _session_leader(self) -> int | None:
        info = self._pid_info()
        if not info.get("session") or not info.get("pid"):
            return None
        pid = int(info["pid"])
        return pid if proc_start_time(pid) == int(info.get("pidStart") or 0) else None


class ShimServer:
    """The node's shim server (ocishim.py --serve): forks the shim of each real-image container start, so
    shims share one interpreter's pages. Started on first use, recorded in the journal, and reused by a
    restarted agent; when it cannot be reached, the launcher starts the shim directly instead."""

    def __init__(self, sock: Path, log: Path, record: Callable[[int, int], None] | None = None):
        self.sock = sock
        self.log = log
        self.record = record

    def _ask(self, args: list[str]) -> tuple[int, int] | None:
        import socket

        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.settimeout(5.0)
                c.connect(str(self.sock))
                c.sendall("\0".join(args).encode())
                c.shutdown(socket.SHUT_WR)
                answer = b""
                while not answer.endswith(b"\n"):
                    chunk = c.recv(256)
                    if not chunk:
                        break
                    answer += chunk
        except OSError:
            return None
        parts = answer.decode(errors="replace").split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            return None
        return int(parts[0]), int(parts[1])

    def _start_server(self) -> None:
        if len(str(self.sock)) > 100:  # beyond what a unix socket address holds
            return
        self.sock.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            p = subprocess.Popen([sys.executable, "-I", "-S", OCI_SHIM, "--serve", str(self.sock)],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                 close_fds=True)
        p.returncode = 0  # it outlives this agent; do not warn about it
        if self.record is not None:
            self.record(p.pid, proc_start_time(p.pid) or 0)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not self.sock.exists():
            time.sleep(0.01)

    def spawn(self, args: list[str]) -> tuple[int, int] | None:
        """(pid, start time) of a shim forked by the server with `args`; None when there is no server."""
        got = self._ask(args)
        if got is None:
            self._start_server()
            got = self._ask(args)
        return got


class ShimLauncher:
    """Runs each container start as `python -I shim.py ...` in a new session (a real-image container's
    shim is forked by the node's shim server when there is one)."""

    def __init__(self, server: ShimServer | None = None):
        self.server = server

    def start(self, spec: LaunchSpec) -> ShimProcess:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("pid.json", "exit.json"):
            (spec.run_dir / stale).unlink(missing_ok=True)
        if spec.oci is not None:
            o = spec.oci
            argv = [sys.executable, "-I", "-S", OCI_SHIM, "--dir", str(spec.run_dir),
                    "--log", str(spec.log_path), "--bundle", str(o.bundle), "--lower", str(o.lower),
                    "--runtime", o.runtime, "--runtime-root", str(o.runtime_root), "--id", o.container_id]
            if o.oom_file:
                argv += ["--oom", o.oom_file]
            argv += spec.console_args()
            if self.server is not None:
                got = self.server.spawn(argv[4:])
                if got is not None:
                    return ShimProcess(spec.run_dir, got[0], got[1], None)
        else:
            argv = [sys.executable, "-I", SHIM, "--dir", str(spec.run_dir), "--log", str(spec.log_path)]
            for flag, value in (("--netns", spec.netns_path), ("--hostname", spec.hostname),
                                ("--resolv", spec.resolv_conf), ("--hosts", spec.hosts),
                                ("--cwd", spec.working_dir)):
                if value:
                    argv += [flag, value]
            if spec.mounts:
                mounts_file = spec.run_dir / "mounts.json"
                mounts_file.write_text(json.dumps([list(m) for m in spec.mounts]))
                argv += ["--mounts", str(mounts_file)]
            argv += [*spec.console_args(), "--", *spec.argv]
        with open(spec.run_dir / "shim.err", "ab") as err:
            popen = subprocess.Popen(argv, env=spec.env, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                     start_new_session=True, close_fds=True)
        start = proc_start_time(popen.pid) or 0
        return ShimProcess(spec.run_dir, popen.pid, start, popen)

    def adopt(self, run_dir: Path, shim_pid: int, shim_start: int) -> ShimProcess | None:
        """Re-attach to a shim started by an earlier agent; None when it is gone and left no exit record."""
        proc = ShimProcess(run_dir, shim_pid, shim_start, None)
        if proc.alive() or (run_dir / "exit.json").exists():
            return proc
        return None
