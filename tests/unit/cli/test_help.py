"""Every podnet command answers --help with a description; unknown input gets an error, no traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from podnet.cli.main import build_parser


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_the_commands_a_user_expects_exist() -> None:
    expected = {"up", "down", "list", "kubeconfig", "kubectl", "exec", "node-exec", "curl", "status", "trace",
                "top", "traffic", "demo", "apply", "join", "leave", "token", "controlplane", "agent"}
    assert expected <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_help(command: str) -> None:
    res = subprocess.run([sys.executable, "-m", "podnet.cli.main", command, "--help"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: podnet {command}")
    assert len(res.stdout.splitlines()) > 3 and "Traceback" not in res.stderr


def test_unknown_cluster_is_a_clear_error(tmp_path: object) -> None:
    res = subprocess.run([sys.executable, "-m", "podnet.cli.main", "status", "--name", "no-such-cluster"],
                         capture_output=True, text=True, timeout=30,
                         env={"PODNET_STATE_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 1
    assert res.stderr.startswith('error: cluster "no-such-cluster" not found')
    assert "Traceback" not in res.stderr
