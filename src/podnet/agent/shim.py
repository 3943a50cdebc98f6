"""The container shim: one small process per container start (the role conmon plays).

Run as a file (`python -I shim.py ...`), standard library only, in its own session so
an agent crash does not touch it. It:
  1. forks the container process, which enters the pod's network namespace, gets its
     own mount and UTS namespaces (pod /etc/resolv.conf and /etc/hosts bind-mounted,
     hostname = pod hostname), changes to workingDir and execs the command;
  2. relays the container's stdout/stderr to the log file in CRI format
     (`<RFC3339Nano> stdout F <line>`), as `kubectl logs` reads it;
  3. writes `<dir>/pid` once the exec succeeded, `<dir>/exit.json` when the container
     ended (exit code, signal, times; reason StartError if exec failed), then kills
     what is left of the container's process group;
  4. holds the container's console: with `--stdin 1` the write end of its stdin pipe, with
     `--tty 1` the master side of its pseudo-terminal (the container is then a session of its
     own with the terminal as its controlling terminal, stdout and stderr both on it), and serves
     the attach socket `<dir>/attach` (agent/console.py) that `kubectl attach` reaches.
The shim ignores SIGTERM/SIGINT/SIGHUP so a signal sent to the group reaches the container
while the shim keeps logging; the container gets default signal handling back before exec,
and PR_SET_PDEATHSIG: if the shim is killed, so is the container.
A container from a real image has its own, leaner shim (ocishim.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import os
import select
import signal
import sys
import termios
import time

# run as a file (`python -I shim.py`): the package root is not on sys.path by itself
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from podnet.agent.console import Console
from podnet.agent.shimio import LogWriter, pump

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


MS_RDONLY = 1
MS_REMOUNT = 32


def _mount_point(src: str, dst: str) -> str:
    """The real path to mount on, made (an empty directory or file, like the source) when missing."""
    real = os.path.realpath(dst)
    if not os.path.lexists(real):
        if os.path.isdir(src):
            os.makedirs(real, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(real), exist_ok=True)
            with open(real, "a"):
                pass
    return real


def bind_volumes(volumes: list[tuple[str, str, bool]]) -> None:
    """Bind each volume source (a host path) on its destination, read-only where asked."""
    libc = _libc()
    for dst, src, readonly in volumes:
        real = _mount_point(src, dst)
        _check(libc.mount(src.encode(), real.encode(), None, MS_BIND | MS_REC, None), f"bind {src} on {dst}")
        if readonly:
            _check(libc.mount(None, real.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, None),
                   f"remount {dst} read-only")


def enter_sandbox(netns: str, hostname: str, binds: list[tuple[str, str]]) -> None:
    libc = _libc()
    if netns:
        fd = os.open(netns, os.O_RDONLY)
        try:
            _check(libc.setns(fd, CLONE_NEWNET), f"setns {netns}")
        finally:
            os.close(fd)
    flags = CLONE_NEWNS | (CLONE_NEWUTS if hostname else 0)
    _check(libc.unshare(flags), "unshare")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    for src, dst in binds:
        real = os.path.realpath(dst)
        if not os.path.exists(real):
            continue  # e.g. a dangling /etc/resolv.conf symlink: nothing to cover
        _check(libc.mount(src.encode(), real.encode(), None, MS_BIND, None), f"bind {src} on {dst}")
    if hostname:
        h = hostname.encode()
        _check(libc.sethostname(h, len(h)), "sethostname")


def write_json(path: str, data: dict[str, object]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def run(opts: dict[str, str], argv: list[str]) -> int:
    d = opts["dir"]
    if os.getpgid(0) != os.getpid():
        os.setsid()  # own session and process group, whoever started us
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    log = LogWriter(opts["log"])
    tty, want_stdin = opts.get("tty") == "1", opts.get("stdin") == "1"
    master = slave = in_r = in_w = -1
    if tty:
        master, slave = os.openpty()
        out_r, out_w, err_r, err_w = master, slave, -1, -1
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if want_stdin:
            in_r, in_w = os.pipe()
    console = Console(d, master if tty else in_w, tty=tty, stdin=want_stdin,
                      stdin_once=opts.get("stdin-once") == "1")
    exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
    started = time.time()
    shim_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the container
        try:
            for fd in (out_r, err_r, exec_r, in_w):
                if fd >= 0:
                    os.close(fd)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
                signal.signal(sig, signal.SIG_DFL)
            # if the shim is killed (e.g. SIGKILL from `podnet down`), the container goes with it
            _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
            if os.getppid() != shim_pid:
                os._exit(137)
            binds = [(opts[k], dst) for k, dst in (("resolv", "/etc/resolv.conf"), ("hosts", "/etc/hosts"))
                     if opts.get(k)]
            enter_sandbox(opts.get("netns", ""), opts.get("hostname", ""), binds)
            if opts.get("mounts"):
                with open(opts["mounts"]) as f:
                    bind_volumes([(str(d), str(s), bool(r)) for d, s, r in json.load(f)])
            if opts.get("cwd"):
                try:
                    os.chdir(opts["cwd"])
                except OSError as e:
                    raise OSError(e.errno, f"chdir to cwd (\"{opts['cwd']}\") set in config.json failed: "
                                           f"{e.strerror}") from None
            if tty:  # a session of its own, the terminal its controlling terminal, as runc does
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for i in (0, 1, 2):
                    os.dup2(slave, i)
            else:
                os.dup2(in_r if in_r >= 0 else os.open("/dev/null", os.O_RDONLY), 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
            os.execvpe(argv[0], argv, dict(os.environ))
        except BaseException as e:
            msg = str(e)
            if isinstance(e, FileNotFoundError) and "/" not in argv[0]:
                msg = f'exec: "{argv[0]}": executable file not found in $PATH'
            elif isinstance(e, FileNotFoundError | PermissionError):
                msg = f'exec: "{argv[0]}": {e.strerror}'
            os.write(exec_w, msg.encode()[:4000])
        os._exit(128)
    for fd in (out_w, err_w, exec_w, in_r):
        if fd >= 0:
            os.close(fd)
    failure = b""
    while True:
        chunk = os.read(exec_r, 4096)
        if not chunk:
            break
        failure += chunk
    os.close(exec_r)
    if failure:
        os.waitpid(pid, 0)
        msg = failure.decode(errors="replace")
        log.feed("stderr", msg.encode() + b"\n")
        write_json(os.path.join(d, "exit.json"), {
            "exitCode": 128, "reason": "StartError", "message": msg,
            "startedAt": started, "finishedAt": time.time()})
        console.finish(128)
        return 0
    info: dict[str, object] = {"pid": pid, "startedAt": started}
    if tty:  # the container leads its own session: signals for it go to its process group too
        info.update(session=1, pidStart=_start_time(pid))
    write_json(os.path.join(d, "pid.json"), info)
    streams = {out_r: "stdout", err_r: "stderr"} if not tty else {master: "stdout"}
    status: int | None = None
    drain_deadline = 0.0
    while streams:
        if status is None:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = st
                drain_deadline = time.time() + 0.5
        elif time.time() > drain_deadline:
            break  # a background child still holds the pipe: stop waiting for it
        ready, writable, _ = select.select(list(streams) + console.readers(), console.writers(), [], 0.2)
        pump(console, ready, writable, streams, log, master)
    if status is None:
        _, status = os.waitpid(pid, 0)
    log.flush()
    result: dict[str, object] = {"startedAt": started, "finishedAt": time.time()}
    if os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
        result["exitCode"] = 128 + os.WTERMSIG(status)
    else:
        result["exitCode"] = os.WEXITSTATUS(status)
    write_json(os.path.join(d, "exit.json"), result)
    console.finish(int(str(result["exitCode"])))
    # what the container left behind in its process group goes with it (the shim too)
    try:
        if os.getpgid(0) == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    except OSError:
        pass
    return 0


def _start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def parse_args(args: list[str]) -> tuple[dict[str, str], list[str]]:
    if "--" not in args:
        raise SystemExit("usage: shim.py --dir D --log L [--netns P] [--hostname H] [--resolv R] "
                         "[--hosts F] [--cwd W] [--stdin 1] [--stdin-once 1] [--tty 1] -- CMD...")
    i = args.index("--")
    opts: dict[str, str] = {}
    it = iter(args[:i])
    for k in it:
        opts[k.lstrip("-")] = next(it)
    return opts, args[i + 1:]


if __name__ == "__main__":
    o, cmd = parse_args(sys.argv[1:])
    sys.exit(run(o, cmd))
