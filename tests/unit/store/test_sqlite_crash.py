"""An acknowledged SqliteStore write survives SIGKILL of the writing process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from podnet.store import SqliteStore

# The child creates services (every third write an update of an earlier one) and prints
# "<name> <rv>" after each write returns: that line is the acknowledgement.
CHILD = r"""
import asyncio, sys
from podnet.store import SqliteStore

async def main(path: str) -> None:
    store = SqliteStore(path)
    for i in range(200000):
        if i % 3 == 2:
            name = f"s{i - 1}"
            obj = {"metadata": {"name": name, "namespace": "default", "labels": {"w": str(i)}}}
            out = await store.update("services", obj)
        else:
            name = f"s{i}"
            out = await store.create("services", {"metadata": {"name": name, "namespace": "default"}})
        print(name, out["metadata"]["resourceVersion"], out["metadata"].get("labels", {}).get("w", ""),
              flush=True)

asyncio.run(main(sys.argv[1]))
"""


def parse(line: str) -> tuple[str, int, str]:
    name, rv, label = line.rstrip("\n").split(" ")
    return name, int(rv), label


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / f"crash-{os.getpid()}.db"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True)
    acked: list[tuple[str, int, str]] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        while len(acked) < 1500 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(parse(line))
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the child is still writing
        proc.wait(10)
        for line in proc.stdout:  # acknowledgements printed before the kill landed
            if not line.endswith("\n"):
                break  # cut off by the kill mid-print: not an acknowledgement
            acked.append(parse(line))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 1500, f"child acknowledged only {len(acked)} writes"

    store = SqliteStore(db)
    try:
        latest: dict[str, tuple[int, str]] = {}
        for name, ack_rv, label in acked:
            latest[name] = (ack_rv, label)
        assert await store.current_rv() >= acked[-1][1]
        items, _ = await store.list("services", "default")
        held = {o["metadata"]["name"]: o for o in items}
        for name, (ack_rv, label) in latest.items():
            obj = held[name]
            # The stored version is the acknowledged one or a later write that landed before the kill.
            assert int(obj["metadata"]["resourceVersion"]) >= ack_rv, name
            if int(obj["metadata"]["resourceVersion"]) == ack_rv:
                assert obj["metadata"].get("labels", {}).get("w", "") == label
        # And the store carries on from where the child stopped.
        created = await store.create("services", {"metadata": {"name": "after", "namespace": "default"}})
        assert int(created["metadata"]["resourceVersion"]) == await store.current_rv() > acked[-1][1]
    finally:
        await store.close()
