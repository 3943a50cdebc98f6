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
