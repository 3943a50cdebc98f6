"""The shim of a container from a real image: one small process per container start, run by an OCI
runtime (runc). Run as a file, `python -I -S ocishim.py --dir D --log L --bundle B --lower L
--runtime R --runtime-root S --id ID [--oom F]`; kept lean on purpose (no `json`, `signal`,
`subprocess` or `ctypes.util` imports: a few MiB per pod, see BENCHMARKS.md). It:

  1. becomes a child subreaper, ignores SIGTERM/SIGINT/SIGHUP/SIGPIPE, enters a mount namespace of
     its own and mounts the container's root filesystem there (an overlay: the image's shared
     unpacked root below, the bundle's writable layer above), so the mount goes away with the shim;
  2. starts the container detached (`runc run -d`) with the log pipes as its stdout/stderr; the
     container is then the shim's child (subreaper), and `<dir>/pid.json` names it;
  3. relays stdout/stderr to the log file in CRI format (`<RFC3339Nano> <stream> <P|F> <line>`);
  4. when the container exits: the exit code or signal, OOMKilled when the memory cgroup counted an
     OOM kill, in `<dir>/exit.json`; then `runc delete --force` removes the runtime's state and cgroups;
  5. holds the container's console and serves the attach socket `<dir>/attach` (agent/console.py):
     with `--stdin 1` the write end of the container's stdin pipe (runc passes its stdin on), with
     `--tty 1` (config.json `terminal: true`) the pty master runc hands over on `--console-socket`.
A runtime failure before the start is exit.json reason StartError with the runtime's own message.
"""

import ctypes
import os
import select
import sys
import time

# run as a file (`python -I -S ocishim.py`): the package root is not on sys.path by itself
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from podnet.agent.console import Console, bind_private
from podnet.agent.shimio import LogWriter, pump

CLONE_NEWNS = 0x00020000
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_CHILD_SUBREAPER = 36
SIG_IGN = 1
SIGKILL = 9

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]


def jstr(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def write_json(path: str, fields: list[tuple[str, object]]) -> None:
    body = ", ".join(jstr(k) + ": " + (jstr(v) if isinstance(v, str) else repr(v)) for k, v in fields)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("{" + body + "}")
    os.replace(tmp, path)


def check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, what + ": " + os.strerror(err))


def spawn(argv: list[str], out: int, err: int, inp: int = -1) -> int:
    devnull = os.open("/dev/null", os.O_RDONLY)
    try:
        return os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=[
            (os.POSIX_SPAWN_DUP2, inp if inp >= 0 else devnull, 0), (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, err, 2)])
    finally:
        os.close(devnull)


def console_listener(bundle: str) -> tuple[object, str, int]:
    """A unix socket runc hands the pty master to (`--console-socket`), reached through /proc so the
    path stays short: (socket, the path runc connects to, the directory fd to close)."""
    import socket

    dir_fd = os.open(bundle, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    name = f"/proc/{os.getpid()}/fd/{dir_fd}/console.sock"
    bind_private(sock, name)
    sock.listen(1)
    return sock, name, dir_fd


def receive_console(listener: object, name: str) -> int:
    """The pty master runc sent (SCM_RIGHTS), or -1."""
    import socket

    assert isinstance(listener, socket.socket)
    listener.settimeout(5.0)
    try:
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    except OSError:
        fds = []
    finally:
        listener.close()
        try:
            os.unlink(name)
        except OSError:
            pass
    return fds[0] if fds else -1


def run_quiet(argv: list[str]) -> int:
    null = os.open("/dev/null", os.O_WRONLY)
    try:
        pid = spawn(argv, null, null)
    finally:
        os.close(null)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def oom_kills(path: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def runtime_error(log_path: str) -> str:
    """The last error the runtime logged (`--log-format json`: one object per line, "msg" field)."""
    msg = ""
    try:
        with open(log_path) as f:
            for line in f:
                flat = line.replace('": "', '":"')  # compact or not, as logrus or json.dumps write it
                if '"level":"error"' not in flat and '"level":"fatal"' not in flat:
                    continue
                i = flat.find('"msg":"')
                if i >= 0:
                    raw = flat[i + 7:]
                    j = 0
                    text = []
                    while j < len(raw) and raw[j] != '"':
                        if raw[j] == "\\" and j + 1 < len(raw):
                            j += 1
                            text.append({"n": "\n", "t": "\t"}.get(raw[j], raw[j]))
                        else:
                            text.append(raw[j])
                        j += 1
                    msg = "".join(text)
    except OSError:
        pass
    return msg or "the OCI runtime failed to start the container"


def proc_start(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def main(opts: dict[str, str]) -> int:
    d, bundle, cid = opts["dir"], opts["bundle"], opts["id"]
    runc = [opts["runtime"], "--root", opts["runtime-root"]]
    if os.getpgid(0) != os.getpid():
        os.setsid()
    for sig in (1, 2, 13, 15):  # HUP, INT, PIPE, TERM: signals for the container reach it directly
        libc.signal(sig, SIG_IGN)
    log = LogWriter(opts["log"])
    started = time.time()

    def fail(msg: str) -> int:
        log.feed("stderr", msg.encode() + b"\n")
        write_json(os.path.join(d, "exit.json"), [("exitCode", 128), ("reason", "StartError"),
                                                  ("message", msg), ("startedAt", started),
                                                  ("finishedAt", time.time())])
        return 0

    try:
        check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
        check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        rootfs = os.path.join(bundle, "rootfs")
        for sub in ("upper", "work", "rootfs"):
            os.makedirs(os.path.join(bundle, sub), exist_ok=True)
        data = f"lowerdir={opts['lower']},upperdir={bundle}/upper,workdir={bundle}/work".encode()
        check(libc.mount(b"overlay", rootfs.encode(), b"overlay", 0, data), "mount overlay root filesystem")
    except OSError as e:
        return fail(str(e))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    tty, want_stdin = opts.get("tty") == "1", opts.get("stdin") == "1"
    in_r, in_w = os.pipe() if want_stdin and not tty else (-1, -1)
    extra: list[str] = []
    listener: object = None
    if tty:
        listener, console_path, console_dir = console_listener(bundle)
        extra = ["--console-socket", console_path]
    pid_file = os.path.join(bundle, "container.pid")
    runtime_log = os.path.join(bundle, "runtime.log")
    runc_pid = spawn([*runc, "--log", runtime_log, "--log-format", "json", "run", "-d", *extra,
                      "--pid-file", pid_file, "--bundle", bundle, cid], out_w, err_w, in_r)
    os.close(out_w)
    os.close(err_w)
    if in_r >= 0:
        os.close(in_r)
    rc = os.waitstatus_to_exitcode(os.waitpid(runc_pid, 0)[1])
    master = -1
    if tty:
        master = receive_console(listener, console_path) if rc == 0 else -1
        os.close(console_dir)
    pid = 0
    if rc == 0:
        try:
            with open(pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pid = 0
    if not pid or (tty and master < 0):
        run_quiet([*runc, "delete", "--force", cid])
        for fd in (out_r, err_r, in_w, master):
            if fd >= 0:
                os.close(fd)
        if pid and rc == 0:
            return fail("the OCI runtime sent no console for the container's terminal")
        return fail(runtime_error(runtime_log) if rc != 0 else "the OCI runtime left no container pid")
    console = Console(d, master if tty else in_w, tty=tty, stdin=want_stdin,
                      stdin_once=opts.get("stdin-once") == "1")
    write_json(os.path.join(d, "pid.json"), [("pid", pid), ("startedAt", started),
                                              ("pidStart", proc_start(pid)), ("oci", 1)])
    streams = {out_r: "stdout", err_r: "stderr"}
    if master >= 0:
        streams[master] = "stdout"
    try:  # readable once the container exits: the shim sleeps in select() until something happens
        exit_fd = os.pidfd_open(pid)
    except OSError:
        exit_fd = -1
    status: int | None = None
    drain_deadline = 0.0
    while True:
        while True:  # reap the container, and whatever else was reparented to us
            try:
                wpid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if wpid == 0:
                break
            if wpid == pid:
                status = st
                drain_deadline = time.time() + 0.5
        if status is not None and (not streams or time.time() > drain_deadline):
            break
        watch = list(streams) + ([exit_fd] if exit_fd >= 0 and status is None else []) + console.readers()
        timeout = 0.1 if status is not None else (60.0 if exit_fd >= 0 else 0.5)
        ready, writable, _ = select.select(watch, console.writers(), [], timeout)
        pump(console, ready, writable, streams, log, master)  # exit_fd: the reaping above picks it up
    if exit_fd >= 0:
        os.close(exit_fd)
    log.flush()
    assert status is not None
    fields: list[tuple[str, object]] = [("startedAt", started), ("finishedAt", time.time())]
    if os.WIFSIGNALED(status):
        fields += [("signal", os.WTERMSIG(status)), ("exitCode", 128 + os.WTERMSIG(status))]
    else:
        fields.append(("exitCode", os.WEXITSTATUS(status)))
    if opts.get("oom") and oom_kills(opts["oom"]) > 0:
        fields.append(("reason", "OOMKilled"))
    run_quiet([*runc, "delete", "--force", cid])
    write_json(os.path.join(d, "exit.json"), fields)
    console.finish(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    if master >= 0 and master in streams:
        os.close(master)
    return 0


def serve(sock_path: str) -> int:
    """The node's shim server: one long-lived process that forks a shim per container start.

    A forked shim shares the server's interpreter pages (copy-on-write), so each costs well under a
    MiB of its own instead of a whole interpreter. A request is one connection on the 0600 unix socket:
    the shim's arguments, NUL-separated, then EOF; the answer is "<pid> <start time>\\n". Each shim
    is its own session and writes its own pid.json/exit.json, so it outlives this server and the agent.
    """
    import socket

    for sig in (1, 2, 13):  # HUP, INT, PIPE; TERM ends the server (its shims live on)
        libc.signal(sig, SIG_IGN)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bind_private(srv, sock_path)
    srv.listen(64)
    import gc

    gc.freeze()  # what exists now stays out of the collector's way: forked shims do not copy its pages
    while True:
        while True:
            try:
                wpid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if wpid == 0:
                break
        ready, _, _ = select.select([srv], [], [], 1.0)
        if not ready:
            continue
        conn, _ = srv.accept()
        try:
            conn.settimeout(5.0)
            data = b""
            while len(data) < 1 << 16:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            try:
                opts = parse_args(data.decode().split("\0"))
            except SystemExit as e:
                conn.sendall(f"error {e}\n".encode())
                continue
            pid = os.fork()
            if pid == 0:
                rc = 1
                try:
                    gc.disable()  # a shim makes no reference cycles worth collecting
                    srv.close()
                    conn.close()
                    os.setsid()
                    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
                    err = os.open(os.path.join(opts["dir"], "shim.err"), flags, 0o600)
                    null = os.open("/dev/null", os.O_RDONLY)
                    os.dup2(null, 0)
                    os.dup2(err, 1)
                    os.dup2(err, 2)
                    rc = main(opts)
                finally:
                    os._exit(rc)
            conn.sendall(f"{pid} {proc_start(pid)}\n".encode())
        except OSError:
            pass
        finally:
            conn.close()


def parse_args(args: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    it = iter(args)
    for k in it:
        if k == "--":
            break
        opts[k.lstrip("-")] = next(it)
    for need in ("dir", "log", "bundle", "lower", "runtime", "runtime-root", "id"):
        if need not in opts:
            raise SystemExit("usage: ocishim.py --dir D --log L --bundle B --lower DIR --runtime R "
                             "--runtime-root S --id ID [--oom FILE] [--stdin 1] [--stdin-once 1] [--tty 1]")
    return opts


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"] and len(sys.argv) == 3:
        sys.exit(serve(sys.argv[2]))
    sys.exit(main(parse_args(sys.argv[1:])))
