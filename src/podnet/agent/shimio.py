"""The container's output as both shims handle it (shim.py for the built-in runtime, ocishim.py for
runc): the CRI log file and one select() round over the output streams and the console.

Imported by the shims from their file's package root, like `console`: standard library only and no
`json`, so the lean shim stays lean.
"""

from __future__ import annotations

import os
import time

from podnet.agent.console import STDERR, STDOUT, Console

MAX_LINE = 16 * 1024  # a longer line is written in parts tagged P, as the CRI log format does


def rfc3339nano(t: float | None = None) -> str:
    t = time.time() if t is None else t
    secs = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{int((t - secs) * 1e9):09d}Z"


class LogWriter:
    """The container log in the CRI format: `<time> <stream> <F|P> <line>`."""

    def __init__(self, path: str):
        self.f = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the shim
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def emit(self, stream: str, tag: str, line: bytes) -> None:
        self.f.write(f"{rfc3339nano()} {stream} {tag} ".encode() + line + b"\n")

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            self.emit(stream, "F", buf[:nl])
            buf = buf[nl + 1:]
        while len(buf) >= MAX_LINE:
            self.emit(stream, "P", buf[:MAX_LINE])
            buf = buf[MAX_LINE:]
        self.partial[stream] = buf

    def flush(self) -> None:
        for stream, buf in self.partial.items():
            if buf:
                self.emit(stream, "F", buf)
        self.partial = {"stdout": b"", "stderr": b""}


def pump(console: Console, readable: list[int], writable: list[int], streams: dict[int, str],
         log: LogWriter, master: int) -> None:
    """Handle one select() round: the console's clients and the container's stdin, then the output
    streams (`streams`: fd -> "stdout"/"stderr"), each chunk to the log and to attached sessions. A
    stream at its end is closed and dropped from `streams`; when it is the terminal's master, the
    console learns that input can no longer reach the container. Other fds are left to the caller."""
    for fd in writable:
        console.writable(fd)
    for fd in readable:
        if console.owns(fd):
            console.readable(fd)
            continue
        if fd not in streams:
            continue
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError:  # EIO: every holder of the terminal's other side is gone
            data = b""
        if data:
            log.feed(streams[fd], data)
            console.output(STDOUT if streams[fd] == "stdout" else STDERR, data)
        else:
            del streams[fd]
            if fd == master:
                console.stdin_gone()
            os.close(fd)
