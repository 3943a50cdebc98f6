"""Layers podnet refuses before unpacking anything (umoci would clamp or create them)."""

from __future__ import annotations

import io
import tarfile

import pytest

from podnet.images.layercheck import LayerError, check_layer


def layer(*entries: tuple[str, str, str]) -> tarfile.TarFile:
    """entries: (kind, name, target-or-content) with kind file|dir|sym|link|chr|fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for kind, name, extra in entries:
            ti = tarfile.TarInfo(name)
            data = b""
            if kind == "file":
                data = extra.encode()
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti, io.BytesIO(data) if data else None)
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r")


def check(*entries: tuple[str, str, str], budget: int = 1 << 30) -> int:
    return check_layer(layer(*entries), "sha256:l1", budget=budget, symlinks=set())


def test_an_ordinary_layer_passes_with_whiteouts_and_absolute_symlinks() -> None:
    n = check(("dir", "bin", ""), ("file", "bin/busybox", "x" * 10), ("sym", "bin/sh", "/bin/busybox"),
              ("sym", "usr/lib/x", "../../bin/busybox"), ("link", "bin/ls", "bin/busybox"),
              ("file", "www/.wh.gone.txt", ""), ("fifo", "run/fifo", ""))
    assert n == 10


@pytest.mark.parametrize(("entries", "message"), [
    ((("file", "../escaped", "x"),), "entry '../escaped': the path leaves the image's root filesystem"),
    ((("file", "a/../../escaped", "x"),), "the path leaves the image's root filesystem"),
    ((("file", "/etc/passwd", "x"),), "the path leaves the image's root filesystem"),
    ((("link", "bin/pw", "../../etc/shadow"),), "hard link to '../../etc/shadow' leaves"),
    ((("link", "bin/pw", "/etc/shadow"),), "hard link to '/etc/shadow' leaves"),
    ((("sym", "a/b", "../../../etc"),), "symbolic link to '../../../etc' leaves"),
    ((("sym", "evil", "/etc"), ("file", "evil/cron", "x")), "written through the symbolic link 'evil'"),
    ((("chr", "dev/mem", ""),), "device nodes are not allowed"),
])
def test_escapes_and_devices_are_refused(entries: tuple[tuple[str, str, str], ...], message: str) -> None:
    with pytest.raises(LayerError, match="layer sha256:l1") as e:
        check(*entries)
    assert message in str(e.value)


def test_size_limit() -> None:
    with pytest.raises(LayerError, match="unpacks to more than the limit"):
        check(("file", "big", "x" * 100), budget=50)


def test_a_symlink_replaced_by_a_directory_can_be_written_through() -> None:
    check(("sym", "d", "/elsewhere"), ("dir", "d", ""), ("file", "d/f", "x"))
