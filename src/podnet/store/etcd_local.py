"""Run etcd members on loopback: for tests, benchmarks and single-machine clusters.

`start_etcd_cluster(n, directory)` starts n members of one new cluster (static
`--initial-cluster`), each on free 127.0.0.1 ports for its client and peer URLs, with its
data dir and log under `directory`, and waits until the cluster answers. Each member is
tracked by the PID this module started; `stop()` ends exactly that process (SIGKILL) and
`cleanup()` removes its files. Nothing is found or ended by name. The members also get
PR_SET_PDEATHSIG, so they die with the process that started them even if it is killed
before its cleanup runs.

`shared_etcd()` is one throwaway single-member etcd per process (tests, benchmarks), with
its data on tmpfs (/dev/shm) where there is one: etcd fsyncs its WAL on every commit,
which on tmpfs costs nothing. `stop_shared_etcd()` ends it; atexit does too.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ETCD_BINARY = "/usr/bin/etcd"


class EtcdStartError(RuntimeError):
    pass


def etcd_binary() -> str | None:
    """Path of the etcd server binary, or None if it is not installed."""
    if os.access(ETCD_BINARY, os.X_OK):
        return ETCD_BINARY
    return shutil.which("etcd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL this member's own process (by PID) and reap it."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def healthy(self, timeout: float = 0.5) -> bool:
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=timeout) as resp:
                return b'"true"' in resp.read()
        except (OSError, urllib.error.URLError):
            return False


@dataclass
class EtcdCluster:
    members: list[EtcdMember]
    directory: Path

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def url(self) -> str:
        """The store URL for `podnet.store.open_store`."""
        return "etcd://" + ",".join(self.endpoints)

    def stop(self) -> None:
        for member in self.members:
            member.kill()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _command(binary: str, member: EtcdMember, initial_cluster: str, token: str,
             heartbeat_ms: int, election_ms: int) -> list[str]:
    return [binary, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", token,
            "--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms),
            "--logger", "zap", "--log-level", "error"]


def start_etcd_cluster(size: int, directory: Path, *, heartbeat_ms: int = 50, election_ms: int = 500,
                       ready_timeout: float = 15.0) -> EtcdCluster:
    """Start `size` members of a fresh cluster under `directory` (created; must not hold one
    already) and wait until every member reports healthy. On failure every started member
    is killed and EtcdStartError names the cause, with the end of the member's log."""
    if size < 1:
        raise ValueError(f"an etcd cluster needs at least 1 member, got {size}")
    binary = etcd_binary()
    if binary is None:
        raise EtcdStartError(f"etcd is not installed ({ETCD_BINARY} missing; apt-get install etcd-server)")
    directory.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:8]
    members = []
    used: set[int] = set()
    for i in range(size):
        ports: list[int] = []
        while len(ports) < 2:
            port = free_port()
            if port not in used:
                used.add(port)
                ports.append(port)
        members.append(EtcdMember(f"m{i}-{suffix}", ports[0], ports[1], directory / f"m{i}.data",
                                  directory / f"m{i}.log"))
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    cluster = EtcdCluster(members, directory)
    try:
        for m in members:
            with open(m.log_path, "wb") as log:
                m.process = subprocess.Popen(
                    _command(binary, m, initial, f"podnet-{suffix}", heartbeat_ms, election_ms),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + ready_timeout
        pending = list(members)
        while pending:
            for m in list(pending):
                if not m.running():
                    raise EtcdStartError(f"etcd member {m.name} exited at start "
                                         f"(code {m.process.returncode if m.process else '?'}): "
                                         f"{m.log_tail()}")
                if m.healthy():
                    pending.remove(m)
            if pending:
                if time.monotonic() > deadline:
                    raise EtcdStartError(f"etcd member {pending[0].name} not healthy after "
                                         f"{ready_timeout:g}s: {pending[0].log_tail()}")
                time.sleep(0.05)
    except BaseException:
        cluster.cleanup()
        raise
    return cluster


_shared: EtcdCluster | None = None
_shared_lock = threading.Lock()


def scratch_dir(prefix: str) -> Path:
    """A new private directory on tmpfs if the machine has one, else in the temp dir."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=base))


def shared_etcd() -> EtcdCluster:
    """This process's throwaway one-member etcd, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None or not all(m.running() for m in _shared.members):
            if _shared is not None:
                _shared.cleanup()
            directory = scratch_dir("podnet-etcd")
            try:
                _shared = start_etcd_cluster(1, directory / "cluster")
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            _shared.directory = directory
            atexit.register(stop_shared_etcd)
        return _shared


def stop_shared_etcd() -> None:
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.cleanup()
            _shared = None
