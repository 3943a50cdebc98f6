"""agent/usage.py: CPU rates and resident memory of a process tree, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from podnet.agent.usage import UsageSampler, process_tree


def test_a_busy_child_shows_in_the_tree_and_its_cpu_rate() -> None:
    busy = "import time\nend = time.time() + 5\nwhile time.time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        assert child.pid in process_tree(os.getpid())
        s = UsageSampler()
        first = s.sample("c", [child.pid])
        assert first.nanocores is None and first.memory_bytes > 0  # no rate from one sample yet
        time.sleep(1.2)
        second = s.sample("c", [child.pid])
        assert second.nanocores is not None and second.nanocores > 10_000_000  # > 10m, even loaded
        assert 1.0 <= second.window < 3.0
    finally:
        child.kill()
        child.wait()


def test_forgotten_keys_start_again_without_a_rate() -> None:
    s = UsageSampler()
    s.sample("gone", [os.getpid()])
    s.forget_except(set())
    assert s.sample("gone", [os.getpid()]).nanocores is None


def test_a_child_that_exits_does_not_make_the_rate_unknown() -> None:
    loop = "import time\nend = time.time() + 1\nwhile time.time() < end: pass"
    busy = subprocess.Popen([sys.executable, "-c", loop])
    idle = subprocess.Popen(["sleep", "10"])
    try:
        s = UsageSampler()
        s.sample("node", [busy.pid, idle.pid])
        time.sleep(1.1)
        assert (s.sample("node", [busy.pid, idle.pid]).nanocores or 0) > 10_000_000
        busy.wait()
        time.sleep(1.1)
        after = s.sample("node", [idle.pid])  # the busy one is gone and its CPU time with it
        assert after.nanocores is not None and after.nanocores < 10_000_000
    finally:
        for p in (busy, idle):
            p.kill()
            p.wait()
