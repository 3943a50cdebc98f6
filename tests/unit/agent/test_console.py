"""The container console the shims hold (agent/console.py) and the agent's side of attach, without root:
the attach socket driven as a shim's select() loop drives it, with a pipe or a pty standing in for the
container's stdin."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import stat
import struct
import termios
from pathlib import Path

from podnet.agent.attach_ws import resize_message
from podnet.agent.console import EXIT, RESIZE, STDERR, STDIN, STDIN_END, STDOUT, Console, parse_size
from podnet.agent.launcher import LaunchSpec
from podnet.images.ocispec import RunSpec, runtime_config


def pump(console: Console, rounds: int = 10) -> None:
    for _ in range(rounds):
        r, w, _ = select.select(console.readers(), console.writers(), [], 0.02)
        if not r and not w:
            return
        for fd in w:
            console.writable(fd)
        for fd in r:
            console.readable(fd)


def attach(run_dir: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(str(run_dir / "attach"))
    s.settimeout(2.0)
    return s


def test_socket_is_root_only_and_output_reaches_every_session(tmp_path: Path) -> None:
    console = Console(str(tmp_path))
    try:
        mode = (tmp_path / "attach").stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        a, b = attach(tmp_path), attach(tmp_path)
        pump(console)
        console.output(STDOUT, b"out\n")
        console.output(STDERR, b"err\n")
        for s in (a, b):
            assert s.recv(100) == bytes([STDOUT]) + b"out\n"
            assert s.recv(100) == bytes([STDERR]) + b"err\n"
        b.close()
        pump(console)
        assert len(console.clients) == 1  # a session that went away is forgotten
        console.output(STDOUT, b"x" * 100_000)  # split into messages the socket carries
        got = b""
        while len(got) < 100_000:
            msg = a.recv(70_000)
            assert msg[0] == STDOUT
            got += msg[1:]
        assert got == b"x" * 100_000
    finally:
        console.finish(3)
    assert a.recv(100) == bytes([EXIT]) + b"3"
    assert a.recv(100) == b""  # then the shim closes the session
    assert not (tmp_path / "attach").exists()


def test_stdin_reaches_the_container_and_stdin_once_closes_it(tmp_path: Path) -> None:
    r, w = os.pipe()
    console = Console(str(tmp_path), w, stdin=True, stdin_once=True)
    try:
        s = attach(tmp_path)
        pump(console)
        s.send(bytes([STDIN]) + b"typed\n")
        pump(console)
        assert os.read(r, 100) == b"typed\n"
        s.send(bytes([STDIN_END]))  # the first session's input ended: with stdinOnce the container sees EOF
        s.send(bytes([STDIN]) + b"too late\n")
        pump(console)
        assert os.read(r, 100) == b""
    finally:
        console.finish(0)
        os.close(r)


def test_without_stdin_once_the_container_keeps_its_stdin(tmp_path: Path) -> None:
    r, w = os.pipe()
    console = Console(str(tmp_path), w, stdin=True)
    try:
        s = attach(tmp_path)
        pump(console)
        s.send(bytes([STDIN_END]))
        s.send(bytes([STDIN]) + b"next session\n")
        pump(console)
        assert os.read(r, 100) == b"next session\n"
    finally:
        console.finish(0)
        os.close(r)


def test_a_container_without_stdin_takes_no_input(tmp_path: Path) -> None:
    master, slave = os.openpty()  # a terminal nobody types into (tty without stdin)
    console = Console(str(tmp_path), master, tty=True)
    try:
        s = attach(tmp_path)
        pump(console)
        s.send(bytes([STDIN]) + b"ignored\n")
        s.send(bytes([RESIZE]) + b"120 40")
        pump(console)
        os.set_blocking(slave, False)
        try:
            typed = os.read(slave, 100)
        except BlockingIOError:
            typed = b""
        assert typed == b""
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        assert (cols, rows) == (120, 40)  # the window size is the terminal's, stdin or not
    finally:
        console.finish(0)
        os.close(master)
        os.close(slave)


def test_typing_into_a_terminal_and_resizing_it(tmp_path: Path) -> None:
    master, slave = os.openpty()
    console = Console(str(tmp_path), master, tty=True, stdin=True, stdin_once=True)
    try:
        s = attach(tmp_path)
        pump(console)
        s.send(bytes([RESIZE]) + b"77 21")
        s.send(bytes([STDIN]) + b"ls\n")
        s.send(bytes([STDIN_END]))  # with a terminal, stdinOnce does not close it (as containerd)
        s.send(bytes([STDIN]) + b"more\n")
        pump(console)
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        assert (cols, rows) == (77, 21)
        assert os.read(slave, 100) == b"ls\n"  # a terminal in canonical mode: a line per read
        assert os.read(slave, 100) == b"more\n"
    finally:
        console.finish(0)
        os.close(master)
        os.close(slave)


def test_a_deep_run_directory_still_has_an_attach_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # longer than a unix socket address may be
    deep.mkdir(parents=True)
    console = Console(str(deep))
    try:
        fd = os.open(deep, os.O_PATH)
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(f"/proc/self/fd/{fd}/attach")
            s.close()
        finally:
            os.close(fd)
    finally:
        console.finish(0)


def test_sizes_and_resize_messages() -> None:
    assert parse_size(b"80 24") == (80, 24)
    assert parse_size(b"80") is None and parse_size(b"-1 2") is None and parse_size(b"9999999 1") is None
    assert resize_message(b'{"Width": 100, "Height": 30}') == bytes([RESIZE]) + b"100 30"
    assert resize_message(b"not json") is None and resize_message(b'{"Width": -3}') is None
    assert resize_message(b"[1]") is None


def test_the_shims_get_the_containers_console_settings(tmp_path: Path) -> None:
    spec = LaunchSpec(argv=["sh"], env={}, run_dir=tmp_path, log_path=tmp_path / "log")
    assert spec.console_args() == []
    spec.stdin = spec.stdin_once = spec.tty = True
    assert spec.console_args() == ["--stdin", "1", "--stdin-once", "1", "--tty", "1"]
    run = RunSpec(argv=["sh"], env=[], cwd="/", uid=0, gid=0, additional_gids=[], hostname="h", netns_path="",
                  cgroups_path="/x")
    assert runtime_config(run)["process"]["terminal"] is False
    run.terminal = True
    assert runtime_config(run)["process"]["terminal"] is True
