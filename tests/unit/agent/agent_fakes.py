"""Fakes for the pod runtime: a launcher whose processes exit on command, a network that hands out IPs."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from podnet.agent.launcher import ExitInfo, LaunchSpec


class FakeProcess:
    def __init__(self, spec: LaunchSpec, pid: int, *, start_ok: bool = True, term_exit: int | None = 143):
        self.spec = spec
        self.shim_pid = pid
        self.shim_start = pid * 10
        self._started = time.time()
        self.start_ok = start_ok
        self.term_exit = term_exit  # exit code on SIGTERM; None: ignores SIGTERM
        self.signals: list[int] = []
        self._exit: asyncio.Future[ExitInfo] = asyncio.get_running_loop().create_future()
        if not start_ok:
            self.exit(128, reason="StartError", message="exec failed")

    def exit(self, code: int, *, reason: str = "", message: str = "", sig: int | None = None) -> None:
        if not self._exit.done():
            why = reason or ("Completed" if code == 0 else "Error")
            self._exit.set_result(ExitInfo(code, why, message, sig, self._started, time.time()))

    def container_pid(self) -> int | None:
        return self.shim_pid + 1 if self.alive() else None

    def started_at(self) -> float | None:
        return self._started

    async def wait_started(self, timeout: float = 10.0) -> bool:
        return self.start_ok

    async def wait(self) -> ExitInfo:
        return await self._exit

    def signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGKILL:
            self.exit(137, sig=9)
        elif sig == signal.SIGTERM and self.term_exit is not None:
            self.exit(self.term_exit)

    def alive(self) -> bool:
        return not self._exit.done()


class FakeLauncher:
    def __init__(self) -> None:
        self.started: list[FakeProcess] = []
        self.next_pid = 1000
        self.start_ok = True
        self.term_exit: int | None = 143

    def start(self, spec: LaunchSpec) -> FakeProcess:
        self.next_pid += 10
        p = FakeProcess(spec, self.next_pid, start_ok=self.start_ok, term_exit=self.term_exit)
        self.started.append(p)
        return p

    def adopt(self, run_dir: Path, shim_pid: int, shim_start: int) -> FakeProcess | None:
        for p in self.started:
            if p.shim_pid == shim_pid and p.alive():
                return p
        return None


class FakeNetwork:
    def __init__(self) -> None:
        self.ips: dict[str, str] = {}
        self.torn_down: list[str] = []
        self.fail: str = ""

    def setup(self, pod_uid: str) -> str:
        if self.fail:
            raise RuntimeError(self.fail)
        return self.ips.setdefault(pod_uid, f"10.244.1.{len(self.ips) + 2}")

    def teardown(self, pod_uid: str) -> None:
        self.torn_down.append(pod_uid)
        self.ips.pop(pod_uid, None)

    def netns_name(self, pod_uid: str) -> str:
        return f"pn-test-pod-{pod_uid}"

    def netns_path(self, pod_uid: str) -> str:
        return f"/run/netns/{self.netns_name(pod_uid)}"


class FakeApi:
    """What the worker tells the API: every status it pushed, and the final delete."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.events: list[tuple[str, str, str, str]] = []
        self.changed = asyncio.Event()

    def record_event(self, pod: dict[str, Any], etype: str, reason: str, message: str, path: str) -> None:
        self.events.append((etype, reason, message, path))

    async def push_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        self.statuses.append(status)
        self.changed.set()

    async def finish_delete(self, pod: dict[str, Any]) -> None:
        self.deleted.append(pod["metadata"]["name"])
        self.changed.set()

    async def get_configmap(self, ns: str, name: str) -> dict[str, Any] | None:
        return None

    @property
    def last(self) -> dict[str, Any]:
        return self.statuses[-1]

    async def wait(self, what: str, pred: Any, timeout: float = 3.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.statuses and pred(self.last):
                return self.last
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        raise AssertionError(f"no status with {what}; last: {self.statuses[-1] if self.statuses else None}")
