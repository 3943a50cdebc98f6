"""Size-bounded log files for the long-running daemons (control plane, agents, supervisor).

`podnet up` starts each daemon with stdout and stderr appended to its log file
(`<state>/logs/controlplane.log`, ...). `rotate_stderr_log()` turns that file into a rotating log:
the logging module writes to it through a RotatingFileHandler (MAX_BYTES, then `.1` ... `.N`), and
after every rollover stdout and stderr are pointed at the new file too, so a stray print or a
crash's traceback lands in the current file and nothing grows without bound.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 3
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class _StdioRotatingHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that moves fds 1 and 2 to the new file at each rollover."""

    def doRollover(self) -> None:
        super().doRollover()
        if self.stream is not None:
            for fd in (1, 2):
                os.dup2(self.stream.fileno(), fd)


def stderr_log_path() -> Path | None:
    """The regular file stderr is appended to, if it is one (None for a terminal or a pipe)."""
    try:
        if not stat.S_ISREG(os.fstat(2).st_mode):
            return None
        return Path(os.readlink("/proc/self/fd/2"))
    except OSError:
        return None


def rotate_stderr_log(level: int = logging.INFO, *, max_bytes: int = MAX_BYTES,
                      backups: int = BACKUPS) -> Path | None:
    """When stderr is a log file, log to it with rotation (see the module docstring) and return its
    path; otherwise leave logging alone and return None."""
    path = stderr_log_path()
    if path is None:
        return None
    handler = _StdioRotatingHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, logging.StreamHandler) and getattr(old, "stream", None) in (sys.stderr,
                                                                                        sys.stdout):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return path


class LogFollower:
    """Copies what a daemon appends to its log file to `out` (`tail -F` for a foreground command):
    starts at the file's current end, follows it across rotation (the rest of the old file first, then the
    new one from its start), and copies at most `chunk` bytes per `poll()`."""

    def __init__(self, path: Path, out: BinaryIO, chunk: int = 1 << 20):
        self.path = path
        self.out = out
        self.chunk = chunk
        self._f: BinaryIO | None = None
        self._start = 0
        try:
            self._start = path.stat().st_size
        except OSError:
            pass

    def poll(self) -> int:
        """Copy what is new; the number of bytes copied."""
        if self._f is None:
            try:
                self._f = open(self.path, "rb")  # noqa: SIM115 - kept open across polls, closed in close()
            except OSError:
                return 0
            self._f.seek(min(self._start, os.fstat(self._f.fileno()).st_size))
            self._start = 0
        data = self._f.read(self.chunk)
        if not data:
            try:
                rotated = os.stat(self.path).st_ino != os.fstat(self._f.fileno()).st_ino
            except OSError:
                rotated = False
            if rotated:  # the old file is read to its end: go on with the new one
                self._f.close()
                self._f = None
                return self.poll()
            return 0
        self.out.write(data)
        self.out.flush()
        return len(data)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
