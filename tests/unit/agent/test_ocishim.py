"""The lean shim's own pieces (no json/signal imports: its JSON is its own) and the CRI log framing."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

SHIM = Path(__file__).resolve().parents[3] / "src" / "podnet" / "agent" / "ocishim.py"


@pytest.fixture(scope="module")
def shim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ocishim_under_test", SHIM)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_its_json_is_json(shim: ModuleType, tmp_path: Path) -> None:
    path = str(tmp_path / "exit.json")
    msg = 'exec: "nope": executable file not found in $PATH\n\ttab \\ back'
    shim.write_json(path, [("exitCode", 128), ("reason", "StartError"), ("message", msg), ("startedAt", 1.5)])
    assert json.loads(Path(path).read_text()) == {"exitCode": 128, "reason": "StartError", "message": msg,
                                                  "startedAt": 1.5}


def test_cri_log_lines(tmp_path: Path) -> None:
    from podnet.agent import shimio  # both shims' log writer

    log = shimio.LogWriter(str(tmp_path / "log"))
    log.feed("stdout", b"one\ntw")
    log.feed("stderr", b"err\n")
    log.feed("stdout", b"o\n" + b"x" * (shimio.MAX_LINE + 5))
    log.flush()
    lines = (tmp_path / "log").read_bytes().split(b"\n")[:-1]
    pat = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) ")
    assert all(pat.match(line) for line in lines)
    body = [line.split(b" ", 3)[1:] for line in lines]
    assert body[:3] == [[b"stdout", b"F", b"one"], [b"stderr", b"F", b"err"], [b"stdout", b"F", b"two"]]
    assert body[3][:2] == [b"stdout", b"P"] and len(body[3][2]) == shimio.MAX_LINE
    assert body[4] == [b"stdout", b"F", b"xxxxx"]


def test_runtime_error_is_the_last_error_runc_logged(shim: ModuleType, tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    log.write_text(json.dumps({"level": "warning", "msg": "ignored"}) + "\n"
                   + json.dumps({"level": "error", "msg": 'runc run failed: exec: "x": not found'}) + "\n")
    assert shim.runtime_error(str(log)) == 'runc run failed: exec: "x": not found'
    assert shim.runtime_error(str(tmp_path / "none")) == "the OCI runtime failed to start the container"


def test_usage_names_what_is_missing(shim: ModuleType) -> None:
    with pytest.raises(SystemExit, match=r"usage: ocishim\.py"):
        shim.parse_args(["--dir", "d"])
    assert shim.parse_args(["--dir", "d", "--log", "l", "--bundle", "b", "--lower", "r", "--runtime", "runc",
                            "--runtime-root", "s", "--id", "c"])["runtime-root"] == "s"
    assert sys.modules.get("ocishim_under_test") is None  # loaded from its file, as the launcher runs it


def test_shim_server_refuses_bad_requests_and_the_launcher_falls_back(tmp_path: Path) -> None:
    import socket
    import subprocess
    import time

    from podnet.agent.launcher import OCI_SHIM, ShimServer

    sock = tmp_path / "shim.sock"
    proc = subprocess.Popen([sys.executable, "-I", "-S", OCI_SHIM, "--serve", str(sock)])
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(str(sock))
            c.sendall(b"--dir\0d")
            c.shutdown(socket.SHUT_WR)
            assert c.recv(200).startswith(b"error usage: ocishim.py")
        assert ShimServer(sock, tmp_path / "log")._ask(["--dir", "d"]) is None
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        proc.wait(5)
    # no server, and none can be started on a path too long for a unix socket: no shim from it
    far = tmp_path / ("x" * 120) / "shim.sock"
    assert ShimServer(far, tmp_path / "log").spawn(["--dir", "d"]) is None
