"""The life of an image's HTTP server process: its ready line, a clean exit on SIGTERM, and exit
code 1 with the image's name when its port is taken."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from podnet.images import http_echo, webserver


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on all IPv4 addresses that something else already listens on."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("", 0))
        s.listen(1)
        yield int(s.getsockname()[1])
    finally:
        s.close()


def test_http_echo_port_taken_exits_1(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert http_echo.main(["-text=hi", f"-listen=127.0.0.1:{busy_port}"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("http-echo: ") and "address already in use" in err.lower()


def test_webserver_port_taken_exits_1(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert webserver.main(["--flavor", "whoami", "--port", str(busy_port)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("whoami: ") and "address already in use" in err.lower()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_echo_prints_ready_line_and_stops_on_sigterm() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "podnet.images.http_echo", "-text=hi", f"-listen=127.0.0.1:{port}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"[INFO] server is listening on 127.0.0.1:{port}\n"
        # an answer means the event loop runs, so the SIGTERM handler is in place
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.read() == b"hi\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
