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


def test_the_follower_copies_what_is_appended_from_the_end_and_across_a_rotation(tmp_path: Path) -> None:
    import io

    from podnet.core.logfiles import LogFollower

    log = tmp_path / "agent.log"
    log.write_bytes(b"from an earlier run\n")
    out = io.BytesIO()
    f = LogFollower(log, out, chunk=8)
    try:
        assert f.poll() == 0 and out.getvalue() == b""  # what was there before is not replayed
        with open(log, "ab") as w:
            w.write(b"line 1\nline 2\n")
        while f.poll():
            pass
        assert out.getvalue() == b"line 1\nline 2\n"
        with open(log, "ab") as w:
            w.write(b"last line before rotation\n")
        log.rename(tmp_path / "agent.log.1")
        log.write_bytes(b"first line after\n")
        while f.poll():
            pass
        assert out.getvalue() == b"line 1\nline 2\nlast line before rotation\nfirst line after\n"
    finally:
        f.close()


def test_the_follower_waits_for_a_log_that_does_not_exist_yet(tmp_path: Path) -> None:
    import io

    from podnet.core.logfiles import LogFollower

    out = io.BytesIO()
    f = LogFollower(tmp_path / "new.log", out)
    assert f.poll() == 0
    (tmp_path / "new.log").write_bytes(b"hello\n")
    assert f.poll() == 6 and out.getvalue() == b"hello\n"
    f.close()
