"""Daemon log files rotate (issue 19 item 12): controlplane.log no longer grows without bound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import logging, sys
from podnet.core.logfiles import rotate_stderr_log
path = rotate_stderr_log(logging.INFO, max_bytes=4000, backups=2)
print("path", path, file=sys.stderr, flush=True)
log = logging.getLogger("podnet.test")
for i in range(400):
    log.info("line %04d %s", i, "x" * 40)
    log.debug("never %d", i)
print("stray stderr at the end", file=sys.stderr, flush=True)
"""


def test_a_daemon_log_on_stderr_rotates_and_takes_stdio_along(tmp_path: Path) -> None:
    log = tmp_path / "controlplane.log"
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-c", SCRIPT], stdout=out, stderr=out, check=True, timeout=60)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["controlplane.log", "controlplane.log.1", "controlplane.log.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 4000 + 200
    current = log.read_text()
    assert "line 0399" in current and "stray stderr at the end" in current  # stderr follows the rollover
    assert "never" not in current


def test_a_terminal_or_pipe_is_left_alone() -> None:
    res = subprocess.run([sys.executable, "-c", "from podnet.core.logfiles import rotate_stderr_log; "
                          "print(rotate_stderr_log())"], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "None"
