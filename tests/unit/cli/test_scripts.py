"""The README's two commands (scripts/demo.sh, scripts/test.sh) work as given both as root without sudo
installed and as a user with sudo: scripts/as-root.sh re-runs a script through sudo only when not root."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
AS_ROOT = REPO / "scripts" / "as-root.sh"


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A scratch directory another user can enter (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="pnsudo"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _script(tmp: Path) -> Path:
    s = tmp / "needs-root.sh"
    s.write_text(f'#!/usr/bin/env bash\nset -euo pipefail\n. "{AS_ROOT}"\necho "ran as $(id -u) with $*"\n')
    s.chmod(0o755)
    return s


def _path_without_sudo(tmp: Path) -> str:
    """A PATH with bash, id, basename and echo's friends but no sudo (as on a fresh root-only machine)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "id", "basename", "dirname"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the script as root")
def test_as_root_without_sudo_the_script_just_runs(tmp_path: Path) -> None:
    s = _script(tmp_path)
    res = subprocess.run([str(s), "a", "b c"], env={"PATH": _path_without_sudo(tmp_path)},
                         capture_output=True, text=True, timeout=10)
    assert (res.returncode, res.stdout, res.stderr) == (0, "ran as 0 with a b c\n", "")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to become nobody")
def test_as_a_user_the_script_runs_again_through_sudo(world_readable_tmp: Path) -> None:
    tmp_path = world_readable_tmp
    s = _script(tmp_path)
    path = _path_without_sudo(tmp_path)
    record = tmp_path / "sudo-args"
    record.touch()
    record.chmod(0o666)
    fake = tmp_path / "bin" / "sudo"  # stands for sudo: records how it was called
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" > {record}\n')
    fake.chmod(0o755)
    nobody = [str(shutil.which("setpriv")), "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    res = subprocess.run([*nobody, str(s), "--name", "x"], env={"PATH": path}, capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 0 and res.stdout == "", res.stderr
    assert "needs root: running it again through sudo" in res.stderr
    assert record.read_text() == f"-- {s} --name x\n"
    fake.unlink()  # a user without sudo is told what to do
    res = subprocess.run([*nobody, str(s)], env={"PATH": path}, capture_output=True, text=True, timeout=10)
    assert res.returncode == 1
    assert res.stderr == ("needs-root.sh needs root (network namespaces, nftables): run it as root; sudo is "
                          "not installed\n")


def test_both_readme_scripts_use_it() -> None:
    for name in ("demo.sh", "test.sh"):
        text = (REPO / "scripts" / name).read_text()
        assert '. "$(dirname "$0")/as-root.sh"' in text, name
    readme = (REPO / "README.md").read_text()
    assert "\n./scripts/demo.sh\n" in readme and "\n./scripts/test.sh\n" in readme
    assert "sudo ./scripts" not in readme


@pytest.mark.skipif(os.geteuid() != 0, reason="podnet join checks for root first")
def test_join_takes_its_token_from_the_environment_too() -> None:
    import sys

    base = [sys.executable, "-m", "podnet.cli.main", "join", "--server", "https://127.0.0.1:1"]
    env = {k: v for k, v in os.environ.items() if k != "PODNET_JOIN_TOKEN"}
    res = subprocess.run(base, env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and res.stderr.strip() == (
        "error: give the join token: --token abcdef.0123456789abcdef, or PODNET_JOIN_TOKEN in the "
        "environment")
    res = subprocess.run(base, env={**env, "PODNET_JOIN_TOKEN": "not-a-token"}, capture_output=True,
                         text=True, timeout=30)
    assert 'invalid --token "not-a-token"' in res.stderr  # the environment's token is the one checked
