"""The machine-wide registry of mount points the built-in runtime makes on the host's filesystem."""

from __future__ import annotations

import os
from pathlib import Path

from podnet.agent.mountpoints import MountPointRegistry


def _sources(tmp_path: Path) -> tuple[str, str]:
    d = tmp_path / "src-dir"
    d.mkdir()
    f = tmp_path / "src-file"
    f.write_text("x")
    return str(d), str(f)


def test_claim_makes_missing_paths_and_the_last_release_removes_them(tmp_path: Path) -> None:
    reg = MountPointRegistry("/c1", tmp_path / "state" / "mountpoints.json")
    src_dir, src_file = _sources(tmp_path)
    host = tmp_path / "host"
    host.mkdir()
    dst_dir = host / "etc" / "settings"
    dst_file = host / "etc" / "one.conf"
    made = reg.claim("uid-a", [(str(dst_dir), src_dir), (str(dst_file), src_file)])
    assert made == [str(host / "etc"), str(dst_dir), str(dst_file)]
    assert dst_dir.is_dir() and dst_file.is_file() and dst_file.stat().st_size == 0
    other = MountPointRegistry("/c2", reg.path)  # another cluster on the machine
    assert other.claim("uid-b", [(str(dst_dir), src_dir)]) == []  # already made: a second owner
    assert reg.release("uid-a") == [str(dst_file)]  # the file had one owner; the dir has another
    assert dst_dir.is_dir() and not dst_file.exists()
    assert reg.release_scope() == []
    assert other.release_scope() == [str(dst_dir), str(host / "etc")]
    assert sorted(os.listdir(host)) == []
    assert (tmp_path / "state" / "mountpoints.json").stat().st_mode & 0o777 == 0o600


def test_the_hosts_own_paths_are_never_tracked_nor_removed(tmp_path: Path) -> None:
    reg = MountPointRegistry("/c1", tmp_path / "state" / "mountpoints.json")
    src_dir, _ = _sources(tmp_path)
    existing = tmp_path / "etc-existing"
    existing.mkdir()
    assert reg.claim("uid-a", [(str(existing), src_dir)]) == []
    assert reg.release_scope() == []
    assert existing.is_dir()


def test_a_made_path_someone_filled_is_left_alone(tmp_path: Path) -> None:
    reg = MountPointRegistry("/c1", tmp_path / "state" / "mountpoints.json")
    src_dir, _ = _sources(tmp_path)
    dst = tmp_path / "made"
    reg.claim("uid-a", [(str(dst), src_dir)])
    (dst / "kept").write_text("data")
    assert reg.release("uid-a") == []
    assert (dst / "kept").read_text() == "data"
    assert reg.release_scope() == []  # forgotten: not tried again


def test_a_made_path_removed_meanwhile_is_made_again_for_the_next_owner(tmp_path: Path) -> None:
    reg = MountPointRegistry("/c1", tmp_path / "state" / "mountpoints.json")
    src_dir, _ = _sources(tmp_path)
    dst = tmp_path / "again"
    reg.claim("uid-a", [(str(dst), src_dir)])
    dst.rmdir()
    assert reg.claim("uid-b", [(str(dst), src_dir)]) == [str(dst)]
    assert reg.release_scope() == [str(dst)]
    assert not dst.exists()
