"""A container's console, held by its shim: the attach socket `kubectl attach` reaches through the agent.

Both shims (shim.py for the built-in runtime, ocishim.py for runc) import this module from its file's
package root; it uses the standard library only and no `json`, so the lean shim stays lean.

The shim owns the container's end of stdin (the write end of a pipe, or the master side of the
container's pseudo-terminal when `tty: true`) for the container's whole life, so an agent restart
does not touch it. `Console` serves a unix socket `attach` in the container's run directory (0600, in
the pod's 0700 state directory; SOCK_SEQPACKET, so each message keeps its boundaries). Messages are
one type byte and a payload:

  agent -> shim   0 STDIN bytes for the container; 4 RESIZE "<width> <height>" (ASCII);
                  255 STDIN_END: this session's input ended (with stdinOnce and no tty, the
                  container's stdin is closed once its pending bytes are written, as containerd does)
  shim -> agent   1 STDOUT / 2 STDERR output, as it is also written to the container log;
                  3 EXIT "<exit code>" (ASCII) when the container ended, then the shim closes.

Any number of sessions may be attached at once; each sees all output from its attach on, and all of
them type into the same stdin. A session that cannot keep up (over `MAX_QUEUED` bytes unsent) is dropped
rather than stalling the container's log.

The socket path is reached as `/proc/self/fd/<directory fd>/attach`, so its length stays within what a
unix socket address holds however deep the state directory is.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

ATTACH_SOCKET = "attach"
STDIN, STDOUT, STDERR, EXIT, RESIZE, STDIN_END = 0, 1, 2, 3, 4, 255
CHUNK = 32 * 1024
MAX_QUEUED = 4 * 1024 * 1024


def socket_path(dir_fd: int) -> str:
    """The attach socket's address through an open descriptor of its directory (short at any depth)."""
    return f"/proc/self/fd/{dir_fd}/{ATTACH_SOCKET}"


def bind_private(sock: socket.socket, path: str) -> None:
    """Bind a unix socket at `path` that only its owner may use (0600), replacing a stale one."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)


def set_window_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(0, height), max(0, width), 0, 0))


def parse_size(payload: bytes) -> tuple[int, int] | None:
    """`b"<width> <height>"` -> (width, height); None for anything else."""
    parts = payload.split()
    if len(parts) != 2 or not all(p.isdigit() and len(p) < 6 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


class Console:
    """The attach socket of one container start, driven from the shim's select() loop.

    stdin_fd: the container's side the shim holds (a pipe's write end for `stdin`, or the pty master
    when `tty`), or -1. Input is taken only when the container has `stdin` (else its stdin is
    /dev/null, or a terminal nobody types into, and input is dropped, as containerd does).
    """

    def __init__(self, run_dir: str, stdin_fd: int = -1, *, tty: bool = False, stdin: bool = False,
                 stdin_once: bool = False):
        self.tty = tty
        self.stdin = stdin
        self.stdin_once = stdin_once
        self.stdin_fd = stdin_fd
        self.pending = bytearray()  # typed input not yet taken by the container
        self.close_stdin_when_flushed = False
        if stdin_fd >= 0:
            os.set_blocking(stdin_fd, False)
        self.dir_fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.path = socket_path(self.dir_fd)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        bind_private(self.listener, self.path)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.clients: dict[int, socket.socket] = {}
        self.queues: dict[int, list[bytes]] = {}
        self.queued: dict[int, int] = {}

    # ---- what the shim's select() watches ----
    def readers(self) -> list[int]:
        return [self.listener.fileno(), *self.clients] if self.listener.fileno() >= 0 else list(self.clients)

    def writers(self) -> list[int]:
        out = [fd for fd, q in self.queues.items() if q]
        if self.stdin_fd >= 0 and (self.pending or self.close_stdin_when_flushed):
            out.append(self.stdin_fd)
        return out

    def owns(self, fd: int) -> bool:
        return fd == self.listener.fileno() or fd in self.clients

    # ---- events ----
    def readable(self, fd: int) -> None:
        if fd == self.listener.fileno():
            self._accept()
            return
        sock = self.clients.get(fd)
        if sock is None:
            return
        try:
            msg = sock.recv(CHUNK + 1)
        except BlockingIOError:
            return
        except OSError:
            msg = b""
        if not msg:
            self._drop(fd)
            return
        kind, payload = msg[0], msg[1:]
        if kind == STDIN:
            if self.stdin and self.stdin_fd >= 0 and not self.close_stdin_when_flushed:
                self.pending += payload
                self._write_stdin()
        elif kind == RESIZE:
            size = parse_size(payload)
            if size is not None and self.tty and self.stdin_fd >= 0:
                try:
                    set_window_size(self.stdin_fd, *size)
                except OSError:
                    pass
        elif kind == STDIN_END and self.stdin_once and not self.tty and self.stdin_fd >= 0:
            self.close_stdin_when_flushed = True
            self._write_stdin()

    def writable(self, fd: int) -> None:
        if fd == self.stdin_fd:
            self._write_stdin()
        elif fd in self.clients:
            self._flush(fd)

    def output(self, kind: int, data: bytes) -> None:
        """What the container wrote (STDOUT or STDERR), for every attached session."""
        for i in range(0, len(data), CHUNK):
            packet = bytes([kind]) + data[i:i + CHUNK]
            for fd in list(self.clients):
                self._send(fd, packet)

    def stdin_gone(self) -> None:
        """The container's side is gone (the pty reported EIO): forget the stdin end (the shim closes it)."""
        self.stdin_fd = -1
        self.pending.clear()
        self.close_stdin_when_flushed = False

    def finish(self, exit_code: int) -> None:
        """The container ended: tell every session its exit code, close them and the socket."""
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self.listener.close()
        for fd in list(self.clients):
            self._send(fd, bytes([EXIT]) + str(exit_code).encode())
            sock = self.clients.get(fd)
            if sock is None:
                continue
            sock.settimeout(1.0)
            try:
                for packet in self.queues.get(fd, []):
                    sock.send(packet)
            except OSError:
                pass
            self._drop(fd)
        if self.stdin_fd >= 0 and not self.tty:
            try:
                os.close(self.stdin_fd)
            except OSError:
                pass
            self.stdin_fd = -1
        os.close(self.dir_fd)

    # ---- internals ----
    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            fd = sock.fileno()
            self.clients[fd] = sock
            self.queues[fd] = []
            self.queued[fd] = 0

    def _send(self, fd: int, packet: bytes) -> None:
        q = self.queues.get(fd)
        if q is None:
            return
        q.append(packet)
        self.queued[fd] += len(packet)
        if self.queued[fd] > MAX_QUEUED:
            self._drop(fd)  # a session that stopped reading: it must not stall the container's log
            return
        self._flush(fd)

    def _flush(self, fd: int) -> None:
        sock, q = self.clients.get(fd), self.queues.get(fd)
        if sock is None or q is None:
            return
        while q:
            try:
                sock.send(q[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(fd)
                return
            self.queued[fd] -= len(q[0])
            q.pop(0)

    def _drop(self, fd: int) -> None:
        sock = self.clients.pop(fd, None)
        self.queues.pop(fd, None)
        self.queued.pop(fd, None)
        if sock is not None:
            sock.close()

    def _write_stdin(self) -> None:
        fd = self.stdin_fd
        if fd < 0:
            return
        while self.pending:
            try:
                n = os.write(fd, self.pending[:CHUNK])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EPIPE: the container closed its stdin; EIO: its terminal is gone
                self.pending.clear()
                break
            del self.pending[:n]
        if self.close_stdin_when_flushed and not self.tty:
            try:
                os.close(fd)
            except OSError:
                pass
            self.stdin_fd = -1
            self.close_stdin_when_flushed = False
