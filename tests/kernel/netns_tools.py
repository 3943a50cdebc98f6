"""Helpers for real-kernel tests: run Python inside a network namespace, a TCP echo server
that answers with the address it saw the client come from, and unique names.

All traffic stays inside the test's own namespaces; every process is bounded in time.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from podnet.net.nsthread import netns_exec_argv

ECHO_SERVER = r"""
import socket, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port))
s.listen(16)
s.settimeout(1.0)
print("ready", flush=True)
deadline = time.monotonic() + 30
served = 0
while time.monotonic() < deadline and served < 50:
    try:
        c, peer = s.accept()
    except TimeoutError:
        continue
    with c:
        c.sendall(peer[0].encode())
    served += 1
"""

TCP_CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print(c.recv(100).decode())
"""


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 100000}{secrets.token_hex(2)}"


def ns_python(netns: str, code: str, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        netns_exec_argv(netns, [sys.executable, "-c", code, *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def echo_server(netns: str, ip: str, port: int = 8080) -> Iterator[None]:
    p = subprocess.Popen(
        netns_exec_argv(netns, [sys.executable, "-c", ECHO_SERVER, ip, str(port)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "ready", f"echo server failed: {line!r} {p.stderr.read() if p.stderr else ''}"
        yield
    finally:
        p.kill()
        p.wait(timeout=5)


def tcp_peer_seen(netns: str, ip: str, port: int = 8080) -> str:
    """Connect from `netns` to ip:port; return the client address the server saw (or raise)."""
    r = ns_python(netns, TCP_CLIENT, ip, str(port), timeout=10)
    assert r.returncode == 0, f"connect from {netns} to {ip}:{port} failed: {r.stderr.strip()[-300:]}"
    return r.stdout.strip()
