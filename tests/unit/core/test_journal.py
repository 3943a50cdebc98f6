from __future__ import annotations

import multiprocessing
from pathlib import Path

from podnet.core.journal import Journal


def test_record_merge_forget_order(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    assert j.entries() == []
    j.record("netns", "pn-a-node-1", node="a-node-1")
    j.record("process", "controlplane", argv=["x"])
    j.record("link", "pnbr1", netns=None)
    j.record("process", "controlplane", pid=123, starttime=456)
    j.forget("link", "pnbr1")
    got = [(e.kind, e.name, e.attrs) for e in Journal(tmp_path).entries()]
    assert got == [
        ("netns", "pn-a-node-1", {"node": "a-node-1"}),
        ("process", "controlplane", {"argv": ["x"], "pid": 123, "starttime": 456}),
    ]
    assert [e.name for e in j.entries("process")] == ["controlplane"]
    j.record("link", "pnbr1", netns=None)  # recorded again after forget: back, at the end
    assert j.entries()[-1].name == "pnbr1"


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.record("netns", "a")
    with open(j.path, "a") as f:
        f.write('{"op": "record", "kind": "netns", "na')
    assert [e.name for e in j.entries()] == ["a"]


def _writer(d: str, tag: str) -> None:
    j = Journal(Path(d))
    for i in range(200):
        j.record("netns", f"{tag}-{i}", payload="x" * 300)


def test_several_processes_append_without_losing_or_tearing_lines(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), t)) for t in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    names = {e.name for e in Journal(tmp_path).entries()}
    assert len(names) == 600
    assert len(Journal(tmp_path).path.read_text().splitlines()) == 600
