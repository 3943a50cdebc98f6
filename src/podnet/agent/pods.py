"""One pod's life on this node: sandbox (network, resolv.conf, hosts), init containers, containers
with restart policy and back-off, probes, status, graceful termination and teardown.

A `PodWorker` owns one pod; `ContainerRunner` owns one container of it. All they know of the
outside world is in `PodDeps` (network, launcher, API callbacks), which tests replace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from podnet.agent import backoff as backoff_mod
from podnet.agent.envbuild import ConfigMapGetter, EnvError, build_env
from podnet.agent.imagepull import ImageManager, ImageUnavailable
from podnet.agent.launcher import ContainerProcess, ExitInfo, Launcher, LaunchSpec, OciLaunch
from podnet.agent.mountpoints import MountPointRegistry
from podnet.agent.network import JournalWriter, NullJournal, PodNetwork
from podnet.agent.podstate import ContainerRecord, PodDirs, PodRecord
from podnet.agent.probes import ProbeTiming, ProbeTracker, run_probe
from podnet.agent.status import ContainerView, build_status, rfc3339
from podnet.agent.volumes import PodVolumes, VolumeError, VolumeSources
from podnet.core.waiting import wait_event
from podnet.images.ocispec import ConfigError, Mount
from podnet.images.registry import CommandError, container_argv, image_id
from podnet.images.runtimes import RuntimeChoice
from podnet.images.store import StoredImage, StoreError
from podnet.model.kinds import Obj
from podnet.net.netlink_thread import in_netlink_thread

log = logging.getLogger(__name__)

DEFAULT_GRACE = 30


@dataclass
class PodDeps:
    node_name: str
    node_ip: str
    dirs: PodDirs
    network: PodNetwork
    launcher: Launcher
    push_status: Callable[[Obj, Obj], Awaitable[None]]
    finish_delete: Callable[[Obj], Awaitable[None]]
    get_configmap: ConfigMapGetter
    services: Callable[[], list[Obj]] = list
    service_env: Callable[[list[Obj], Obj], dict[str, str]] | None = None
    resolv_conf: Callable[[Obj], str] = lambda pod: ""
    hosts_file: Callable[[Obj, str], str] = lambda pod, ip: ""
    hostname: Callable[[Obj], str] = lambda pod: str(pod["metadata"]["name"])[:63]
    extra_env: Callable[[Obj], dict[str, str]] = lambda pod: {}
    exec_in: Callable[[int, list[str], dict[str, str], float], Awaitable[tuple[int, str]]] | None = None
    journal: JournalWriter = field(default_factory=NullJournal)
    record_event: Callable[[Obj, str, str, str, str], None] = lambda pod, etype, reason, msg, path: None
    backoff_scale: float = 1.0  # tests shrink kubelet's 10s..5m back-off
    use_netns: bool = True
    # real images (None: only the built-in stand-ins run, as before)
    images: ImageManager | None = None
    runtime: Callable[[], RuntimeChoice] | None = None
    runtime_root: Path = Path("/run/podnet/runc")
    cluster: str = "podnet"
    volume_mounts: Callable[[Obj, Obj], list[Mount]] = lambda pod, container: []
    # programs the pod's NetworkPolicy state (pod, IP) before its containers start: no window
    admit_network: Callable[[Obj, str], Awaitable[None]] | None = None
    # volumes (podnet.agent.volumes) and Secrets for env; None: pods get no volumes, as before
    volume_sources: VolumeSources | None = None
    get_secret: ConfigMapGetter | None = None
    volume_refresh_seconds: float = 2.0
    # mount points the built-in runtime makes on the host's filesystem (None: the shim makes them, untracked)
    mountpoints: MountPointRegistry | None = None


def pod_key(pod: Obj) -> str:
    m = pod["metadata"]
    return f"{m.get('namespace', 'default')}/{m['name']}"


def grace_seconds(pod: Obj) -> float:
    meta = pod.get("metadata") or {}
    g = meta.get("deletionGracePeriodSeconds")
    if g is None:
        g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return float(DEFAULT_GRACE if g is None else g)


class ContainerRunner:
    def __init__(self, worker: PodWorker, spec: Obj, rec: ContainerRecord, *, init: bool = False):
        self.w = worker
        self.spec = spec
        self.rec = rec
        self.init = init
        self.name = str(spec["name"])
        image = str(spec.get("image") or "")
        self.view = ContainerView(self.name, image, image_id(image), restart_count=rec.restart_count,
                                  state=rec.state or {"waiting": {"reason": "ContainerCreating"}},
                                  last_state=rec.last_state)
        self.proc: ContainerProcess | None = None
        self.backoff = backoff_mod.Backoff(rec.backoff)
        self.kill_reason = ""
        self.pull_error = ""  # the last pull failure, for ImagePullBackOff
        self.pull_backoff = 0.0
        self.image_digest = ""  # manifest digest of the real image the current start runs
        self._wake = asyncio.Event()
        self._killer: asyncio.Task[None] | None = None

    # ---- state changes ----
    def _changed(self) -> None:
        self.rec.state = self.view.state
        self.rec.last_state = self.view.last_state
        self.rec.restart_count = self.view.restart_count
        self.rec.backoff = self.backoff.current
        self.w.changed()

    def _set_waiting(self, reason: str, message: str = "") -> None:
        w: Obj = {"reason": reason}
        if message:
            w["message"] = message
        self.view.state = {"waiting": w}
        self.view.ready = False
        self.view.started = False
        self._changed()

    def event(self, etype: str, reason: str, message: str) -> None:
        kind = "initContainers" if self.init else "containers"
        self.w.deps.record_event(self.w.pod, etype, reason, message, f"spec.{kind}{{{self.name}}}")

    def container_id(self) -> str:
        return f"podnet://{self.w.uid}-{self.name}-{self.rec.attempt}"

    # ---- the loop ----
    async def run(self) -> None:
        """Run until the container will not run again (or the pod stops). Returns after the last exit."""
        adopted = self._adopt()
        while not self.w.stopping:
            if adopted is not None:
                proc, adopted = adopted, None
            else:
                started = await self._start()
                if started is None:
                    if self.w.stopping:
                        return
                    if self.pull_error:
                        await self._pull_back_off()
                        continue
                    await self._sleep(max(1.0, 10.0 * self.w.deps.backoff_scale))
                    continue
                proc = started
            info = await self._watch(proc)
            if self._after_exit(info):
                return
            delay = self.backoff.next_delay(info.finished_at - (info.started_at or info.finished_at))
            delay *= self.w.deps.backoff_scale
            if delay > 0:
                self.event("Warning", "BackOff", f"Back-off restarting failed container {self.name} in pod "
                           f"{self.w.name}_{self.w.namespace}({self.w.uid})")
                self._set_waiting("CrashLoopBackOff",
                                  f"back-off {int(delay / self.w.deps.backoff_scale)}s restarting failed "
                                  f"container={self.name} pod={self.w.name}_{self.w.namespace}({self.w.uid})")
                await self._sleep(delay)

    async def _pull_back_off(self) -> None:
        """kubelet's image back-off: ErrImagePull, then ImagePullBackOff for 10s, 20s, ... up to 5m."""
        image = self.view.image
        await self._sleep(max(0.2, 1.0 * self.w.deps.backoff_scale))
        if self.w.stopping:
            return
        self.pull_backoff = min(300.0, self.pull_backoff * 2 if self.pull_backoff else 10.0)
        self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
        self.event("Warning", "Failed", "Error: ImagePullBackOff")
        self._set_waiting("ImagePullBackOff",
                          f'Back-off pulling image "{image}": ErrImagePull: {self.pull_error}')
        await self._sleep(self.pull_backoff * self.w.deps.backoff_scale)

    async def _image(self) -> tuple[StoredImage | None, bool]:
        """(the stored image to run, or None for the built-in stand-in; False when it cannot start now)."""
        w = self.w
        if w.deps.images is None:
            return None, True
        try:
            resolved = await w.deps.images.ensure(w.pod, self.spec, self.event)
        except ImageUnavailable as e:
            self.event("Warning", "Failed", e.message)
            self.event("Warning", "Failed", f"Error: {e.reason}")
            self._set_waiting(e.reason, e.message)
            self.pull_error = e.message if e.reason == "ErrImagePull" else ""
            return None, False
        self.pull_error = ""
        self.pull_backoff = 0.0
        if resolved.stand_in_note:
            w.stand_in_notes[self.name] = resolved.stand_in_note
        else:
            w.stand_in_notes.pop(self.name, None)
        return resolved.image, True

    def _adopt(self) -> ContainerProcess | None:
        if not self.rec.shim_pid or self.rec.done:
            return None
        run_dir = self.w.deps.dirs.run_dir(self.w.uid, self.name, self.rec.attempt)
        proc = self.w.deps.launcher.adopt(run_dir, self.rec.shim_pid, self.rec.shim_start)
        if proc is None:
            log.info("pod %s container %s: process gone while the agent was away", self.w.key, self.name)
            return _GoneProcess(self.rec)
        log.info("pod %s container %s: adopted running process (shim pid %d)", self.w.key, self.name,
                 proc.shim_pid)
        self.proc = proc
        return proc

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        await wait_event(self._wake, seconds)

    def wake(self) -> None:
        self._wake.set()

    async def _start(self) -> ContainerProcess | None:
        w = self.w
        img, ok = await self._image()
        if not ok:
            return None
        try:
            argv = [] if img is not None else container_argv(self.view.image, self.spec.get("command"),
                                                              self.spec.get("args"))
            svc_env = w.deps.service_env(w.deps.services(), w.pod) if w.deps.service_env else {}
            env = await build_env(w.pod, self.spec, pod_ip=w.rec.pod_ip, host_ip=w.deps.node_ip,
                                  service_env=svc_env, get_configmap=w.deps.get_configmap,
                                  extra=w.deps.extra_env(w.pod), get_secret=w.deps.get_secret)
        except CommandError as e:
            if self.view.state.get("waiting", {}).get("reason") != e.reason:
                self.event("Warning", "Failed", e.message)
                self.event("Warning", "Failed", f"Error: {e.reason}")
            self._set_waiting(e.reason, e.message)
            return None
        except EnvError as e:
            if self.view.state.get("waiting", {}).get("reason") != "CreateContainerConfigError":
                self.event("Warning", "Failed", f"Error: {e}")
            self._set_waiting("CreateContainerConfigError", str(e))
            return None
        from podnet.agent.expansion import expand

        argv = [expand(a, env) for a in argv]
        tty = bool(self.spec.get("tty"))
        if tty and "TERM" not in env:
            env["TERM"] = "xterm"  # as containerd does for a container with a terminal
        attempt = self.view.restart_count + (1 if self.view.last_state or self.rec.shim_pid else 0)
        run_dir = w.deps.dirs.run_dir(w.uid, self.name, attempt)
        netns_path = w.deps.network.netns_path(w.uid) if w.deps.use_netns and not w.host_network else ""
        oci: OciLaunch | None = None
        if img is not None:
            try:
                oci, argv = await asyncio.to_thread(self._bundle, img, env, run_dir, netns_path, attempt)
            except (ConfigError, StoreError, OSError) as e:
                reason = e.reason if isinstance(e, ConfigError) else "CreateContainerError"
                msg = e.message if isinstance(e, ConfigError) else str(e)
                if self.view.state.get("waiting", {}).get("reason") != reason:
                    self.event("Warning", "Failed", f"Error: {msg}")
                self._set_waiting(reason, msg)
                return None
        self.view.restart_count = attempt
        self.rec.attempt = attempt
        w.deps.dirs.prune_runs(w.uid, self.name, self.rec.attempt - 1)
        spec = LaunchSpec(argv=argv, env=env, run_dir=run_dir, log_path=run_dir / "log",
                          netns_path=netns_path,
                          hostname=w.hostname, resolv_conf=str(w.resolv_path) if w.resolv_path else "",
                          hosts=str(w.hosts_path) if w.hosts_path else "",
                          working_dir=str(self.spec.get("workingDir") or ""), oci=oci,
                          mounts=[(m.destination, m.source, m.readonly)
                                  for m in w.container_mounts(self.spec)],
                          stdin=bool(self.spec.get("stdin")), stdin_once=bool(self.spec.get("stdinOnce")),
                          tty=tty)
        if oci is None and spec.mounts and w.deps.mountpoints is not None:
            await asyncio.to_thread(w.deps.mountpoints.claim, w.uid,
                                    [(dst, src) for dst, src, _ro in spec.mounts])
        label = f"container {w.key} {self.name} {self.rec.attempt} {w.uid}"
        w.deps.journal.record("process", label, argv=argv, pod=w.key)
        if w.deps.images is None:
            self.event("Normal", "Pulled", f'Container image "{self.view.image}" already present on machine')
        proc = w.deps.launcher.start(spec)
        self.event("Normal", "Created", f"Created container: {self.name}")
        self.proc = proc
        self.rec.shim_pid, self.rec.shim_start = proc.shim_pid, proc.shim_start
        w.deps.journal.record("process", label, pid=proc.shim_pid, starttime=proc.shim_start)
        self.image_digest = img.digest if img is not None else ""
        if img is not None and w.deps.images is not None:
            w.deps.images.store.record_use(img.digest, self.use_id(), proc.shim_pid, proc.shim_start)
        self._changed()
        return proc

    def use_id(self) -> str:
        return f"{self.w.deps.cluster}-{self.w.uid}-{self.name}"

    def _bundle(self, img: StoredImage, env: dict[str, str], run_dir: Path, netns_path: str,
                attempt: int) -> tuple[OciLaunch, list[str]]:
        from podnet.agent.ocibundle import BundleInputs, write_bundle

        w = self.w
        assert w.deps.images is not None and w.deps.runtime is not None
        self.view.image_id = img.image_id
        inputs = BundleInputs(pod=w.pod, container=self.spec, env=env, run_dir=run_dir, netns_path=netns_path,
                              hostname=w.hostname, resolv_conf=str(w.resolv_path) if w.resolv_path else "",
                              hosts=str(w.hosts_path) if w.hosts_path else "", cluster=w.deps.cluster,
                              container_id=f"{w.uid}-{self.name}-{attempt}", runtime=w.deps.runtime(),
                              runtime_root=w.deps.runtime_root,
                              extra_mounts=w.container_mounts(self.spec))
        return write_bundle(w.deps.images.store, img, inputs)

    async def _watch(self, proc: ContainerProcess) -> ExitInfo:
        w = self.w
        probes: asyncio.Task[None] | None = None
        if await proc.wait_started():
            started = proc.started_at() or time.time()
            cpid = proc.container_pid()
            if self.image_digest and cpid:  # `podnet down` ends it by pid too, whatever became of the shim
                from podnet.agent.launcher import proc_start_time

                label = f"container-init {w.key} {self.name} {self.rec.attempt} {w.uid}"
                w.deps.journal.record("process", label, pid=cpid, starttime=proc_start_time(cpid))
            self.rec.started_at = started
            self.view.state = {"running": {"startedAt": rfc3339(started)}}
            self.view.container_id = self.container_id()
            self.event("Normal", "Started", f"Started container {self.name}")
            spec = self.spec
            self.view.started = "startupProbe" not in spec
            self.view.ready = self.view.started and "readinessProbe" not in spec and not self.init
            self._changed()
            if not self.init and any(k in spec for k in ("startupProbe", "livenessProbe", "readinessProbe")):
                probes = asyncio.create_task(self._probe_loop(proc, started),
                                             name=f"probes-{w.key}-{self.name}")
        info = await proc.wait()
        if probes is not None:
            probes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probes
        w.deps.journal.forget("process", f"container {w.key} {self.name} {self.rec.attempt} {w.uid}")
        if self.image_digest:
            w.deps.journal.forget("process", f"container-init {w.key} {self.name} {self.rec.attempt} {w.uid}")
            if w.deps.images is not None:
                w.deps.images.store.forget_use(self.image_digest, self.use_id())
        self.proc = None
        return info

    def _after_exit(self, info: ExitInfo) -> bool:
        """Record the exit; True when the container will not be restarted."""
        term: Obj = {"exitCode": info.exit_code, "reason": info.reason, "containerID": self.container_id(),
                     "startedAt": rfc3339(info.started_at or info.finished_at),
                     "finishedAt": rfc3339(info.finished_at)}
        if info.signal:
            term["signal"] = info.signal
        if info.message:
            term["message"] = info.message
        elif self.kill_reason:
            term["message"] = self.kill_reason
        self.kill_reason = ""
        self.view.ready = False
        self.view.started = False
        policy = str((self.w.pod.get("spec") or {}).get("restartPolicy") or "Always")
        if self.init:
            policy = "OnFailure" if policy == "Always" else policy
        restart = not self.w.stopping and (
            policy == "Always" or (policy == "OnFailure" and info.exit_code != 0))
        if restart:
            self.view.last_state = {"terminated": term}
            self.view.state = {"waiting": {"reason": "ContainerCreating"}}
        else:
            self.view.state = {"terminated": term}
            self.rec.done = not self.w.stopping
        self._changed()
        log.info("pod %s container %s exited %d (%s)%s", self.w.key, self.name, info.exit_code, info.reason,
                 "" if not restart else ", restarting")
        return not restart

    async def _probe_loop(self, proc: ContainerProcess, started: float) -> None:
        spec = self.spec
        w = self.w
        start_p, live_p = spec.get("startupProbe"), spec.get("livenessProbe")
        ready_p = spec.get("readinessProbe")
        trackers: dict[str, tuple[Obj, ProbeTracker]] = {}
        if start_p:
            trackers["Startup"] = (start_p, ProbeTracker(ProbeTiming.of(start_p), False))
        if live_p:
            trackers["Liveness"] = (live_p, ProbeTracker(ProbeTiming.of(live_p), True))
        if ready_p:
            trackers["Readiness"] = (ready_p, ProbeTracker(ProbeTiming.of(ready_p), False))
        next_at = {k: started + t.timing.initial_delay for k, (_, t) in trackers.items()}
        startup_failures = 0

        async def exec_fn(cmd: list[str], timeout: float) -> tuple[int, str]:
            pid = proc.container_pid()
            if pid is None or w.deps.exec_in is None:
                return 1, "container process not found"
            return await w.deps.exec_in(pid, cmd, {}, timeout)

        while True:
            now = time.time()
            startup_done = "Startup" not in trackers or trackers["Startup"][1].result
            due = [k for k in trackers if next_at[k] <= now and (k == "Startup" or startup_done)
                   and not (k == "Startup" and startup_done)]
            for kind in due:
                probe, tracker = trackers[kind]
                next_at[kind] = time.time() + tracker.timing.period
                ok, msg = await run_probe(probe, spec, w.rec.pod_ip, exec_fn)
                if not ok:
                    log.info("pod %s container %s: %s probe failed: %s", w.key, self.name, kind, msg)
                    self.event("Warning", "Unhealthy", f"{kind} probe failed: {msg}")
                changed = tracker.record(ok)
                if kind == "Startup":
                    startup_failures = 0 if ok else startup_failures + 1
                    if tracker.result and changed:
                        self.view.started = True
                        self.view.ready = "Readiness" not in trackers
                        now2 = time.time()
                        for k in ("Liveness", "Readiness"):
                            if k in trackers:
                                next_at[k] = max(next_at[k], now2)
                        self._changed()
                    elif startup_failures >= tracker.timing.failure_threshold:
                        await self._kill_for_probe(proc, "Startup", msg)
                        return
                elif kind == "Liveness" and not tracker.result:
                    await self._kill_for_probe(proc, "Liveness", msg)
                    return
                elif kind == "Readiness" and changed:
                    self.view.ready = tracker.result and self.view.started
                    self._changed()
            pending = [next_at[k] for k in trackers
                       if not (k == "Startup" and startup_done) and (k == "Startup" or startup_done)]
            if not pending:
                return
            await asyncio.sleep(max(0.01, min(pending) - time.time()))

    async def _kill_for_probe(self, proc: ContainerProcess, kind: str, msg: str) -> None:
        log.info("pod %s container %s failed %s probe, will be restarted: %s", self.w.key, self.name,
                 kind.lower(), msg)
        self.kill_reason = f"{kind} probe failed: {msg}"
        self.event("Normal", "Killing",
                   f"Container {self.name} failed {kind.lower()} probe, will be restarted")
        grace = float((self.w.pod.get("spec") or {}).get("terminationGracePeriodSeconds") or DEFAULT_GRACE)
        self._killer = asyncio.create_task(stop_process(proc, grace))  # _watch's wait() sees the exit

    async def stop(self, grace: float) -> None:
        self.wake()
        proc = self.proc
        if proc is not None and proc.alive():
            self.event("Normal", "Killing", f"Stopping container {self.name}")
            started = time.monotonic()
            await self._pre_stop(proc, grace)
            await stop_process(proc, max(0.0, grace - (time.monotonic() - started)))

    async def _pre_stop(self, proc: ContainerProcess, grace: float) -> None:
        """Run lifecycle.preStop (exec or httpGet) within the grace period, as kubelet does."""
        hook = (self.spec.get("lifecycle") or {}).get("preStop")
        if not hook or grace <= 0:
            return
        w = self.w

        async def exec_fn(cmd: list[str], timeout: float) -> tuple[int, str]:
            pid = proc.container_pid()
            if pid is None or w.deps.exec_in is None:
                return 1, "container process not found"
            return await w.deps.exec_in(pid, cmd, {}, timeout)

        if "sleep" in hook:  # lifecycle.preStop.sleep (Kubernetes 1.30+)
            await asyncio.sleep(min(grace, float(hook["sleep"].get("seconds") or 0)))
            return
        ok, msg = await run_probe({**hook, "timeoutSeconds": grace}, self.spec, w.rec.pod_ip, exec_fn)
        if not ok:
            self.event("Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}")


class _GoneProcess:
    """Stands for a container process that vanished while the agent was away (no exit record)."""

    def __init__(self, rec: ContainerRecord):
        self.shim_pid = rec.shim_pid
        self.shim_start = rec.shim_start
        self._started = rec.started_at

    def container_pid(self) -> int | None:
        return None

    def started_at(self) -> float | None:
        return self._started

    async def wait_started(self, timeout: float = 10.0) -> bool:
        return False

    async def wait(self) -> ExitInfo:
        return ExitInfo(137, "Error", "", signal.SIGKILL, self._started, time.time())

    def signal(self, sig: int) -> None:
        pass

    def alive(self) -> bool:
        return False


async def stop_process(proc: ContainerProcess, grace: float) -> None:
    """SIGTERM to the process group, SIGKILL after `grace` seconds; returns when it is gone."""
    if not proc.alive():
        return
    proc.signal(signal.SIGTERM)
    deadline = time.monotonic() + max(0.0, grace)
    while proc.alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if proc.alive():
        proc.signal(signal.SIGKILL)
        for _ in range(100):
            if not proc.alive():
                break
            await asyncio.sleep(0.05)


class PodWorker:
    def __init__(self, pod: Obj, deps: PodDeps, rec: PodRecord | None = None):
        self.pod = pod
        self.deps = deps
        meta = pod["metadata"]
        self.uid = str(meta["uid"])
        self.name = str(meta["name"])
        self.namespace = str(meta.get("namespace") or "default")
        self.key = pod_key(pod)
        self.adopted = rec is not None
        self.rec = rec or PodRecord(self.uid, self.namespace, self.name)
        self.hostname = deps.hostname(pod)
        self.host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
        self.resolv_path: Path | None = None
        self.hosts_path: Path | None = None
        self.stopping = False
        self.sandbox_ready = False
        self.sandbox_error = ""
        self.stand_in_notes: dict[str, str] = {}
        self._stop_event = asyncio.Event()
        self._dirty = asyncio.Event()
        self._last_pushed: Obj | None = None
        self.init_runners: list[ContainerRunner] = [
            ContainerRunner(self, c, self.rec.container("init:" + str(c["name"])), init=True)
            for c in (pod.get("spec") or {}).get("initContainers") or []]
        self.runners: list[ContainerRunner] = [
            ContainerRunner(self, c, self.rec.container(str(c["name"])))
            for c in (pod.get("spec") or {}).get("containers") or []]
        if not self.init_runners:
            self.rec.init_done = True
        self.volumes: PodVolumes | None = None
        if deps.volume_sources is not None:
            self.volumes = PodVolumes(deps.dirs.pod_dir(self.uid), deps.volume_sources)
        self.task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()

    # ---- outside events ----
    def update(self, pod: Obj) -> None:
        self.pod = pod
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.request_stop()
        if self._last_pushed is not None and _condition_states(pod.get("status") or {}) != \
                _condition_states(self._last_pushed):
            # Someone else changed our conditions (the node lifecycle controller marks pods not Ready
            # when it stops hearing from this node): the API is wrong about this pod, so say it again.
            self._last_pushed = None
            self._dirty.set()

    def request_stop(self) -> None:
        if not self.stopping:
            log.info("pod %s: stopping (grace %ss)", self.key, grace_seconds(self.pod))
            self.stopping = True
            self._stop_event.set()
            for r in self.init_runners + self.runners:
                r.wake()

    def changed(self) -> None:
        self.deps.dirs.save(self.rec)
        self._dirty.set()

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name=f"pod-{self.key}")
        return self.task

    # ---- status ----
    def status(self) -> Obj:
        init_failed = any(r.view.terminated and r.view.terminated.get("exitCode") != 0 and r.rec.done
                          for r in self.init_runners)
        if not self.rec.init_done:
            for r in self.runners:
                if "waiting" in r.view.state and r.view.state["waiting"].get("reason") == "ContainerCreating":
                    r.view.state = {"waiting": {"reason": "PodInitializing"}}
        st = build_status(self.pod, host_ip=self.deps.node_ip, pod_ip=self.rec.pod_ip,
                          containers=[r.view for r in self.runners],
                          init_containers=[r.view for r in self.init_runners],
                          sandbox_ready=self.sandbox_ready, start_time=self.rec.start_time,
                          init_done=self.rec.init_done, init_failed=init_failed)
        if self.sandbox_error:
            st["message"] = self.sandbox_error
        elif self.stand_in_notes:
            st["message"] = "; ".join(f"{k}: {v}" for k, v in sorted(self.stand_in_notes.items()))
        return st

    async def _status_pusher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            st = self.status()
            if st == self._last_pushed:
                continue
            try:
                await self.deps.push_status(self.pod, st)
                self._last_pushed = st
            except Exception as e:  # the API may be briefly away: retry on the next change or tick
                log.warning("pod %s: status update failed: %s", self.key, e)
                await asyncio.sleep(1.0)
                self._dirty.set()
            await asyncio.sleep(0.02)

    # ---- the pod's life ----
    async def run(self) -> None:
        pusher = asyncio.create_task(self._status_pusher(), name=f"status-{self.key}")
        try:
            if not self.rec.start_time:
                self.rec.start_time = rfc3339()
            self.changed()
            if await self._setup_sandbox():
                containers = asyncio.create_task(self._run_containers(), name=f"containers-{self.key}")
                stop_wait = asyncio.create_task(self._stop_event.wait())
                try:
                    await asyncio.wait({containers, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                    if not containers.done():
                        await self._terminate()
                    await containers
                    await stop_wait  # a terminal pod stays until it is deleted
                finally:
                    for t in (containers, stop_wait):
                        t.cancel()
            else:
                await self._stop_event.wait()
            await self._terminate()
            self._dirty.set()
            await asyncio.sleep(0.05)
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
            self.done.set()
        await self._teardown_and_delete()

    async def _setup_sandbox(self) -> bool:
        try:
            if self.host_network:
                ip = self.deps.node_ip
            else:
                ip = await in_netlink_thread(self.deps.network.setup, self.uid)
        except Exception as e:
            self.sandbox_error = f"failed to set up the pod network: {e}"
            log.error("pod %s: %s", self.key, self.sandbox_error)
            # as kubelet reports it: `kubectl describe pod` shows why the pod stays Pending
            self.deps.record_event(self.pod, "Warning", "FailedCreatePodSandBox",
                                   f"Failed to create pod sandbox: {e}", "")
            for r in self.runners:
                r._set_waiting("ContainerCreating", self.sandbox_error)
            return False
        if self.deps.admit_network is not None and not self.host_network:
            try:
                await self.deps.admit_network(self.pod, ip)
            except Exception as e:
                self.sandbox_error = f"failed to program NetworkPolicy for the pod: {e or type(e).__name__}"
                log.error("pod %s: %s", self.key, self.sandbox_error)
                self.deps.record_event(self.pod, "Warning", "FailedCreatePodSandBox",
                                       f"Failed to create pod sandbox: {self.sandbox_error}", "")
                for r in self.runners:
                    r._set_waiting("ContainerCreating", self.sandbox_error)
                return False
        if self.rec.pod_ip and self.rec.pod_ip != ip:
            log.warning("pod %s: IP changed from %s to %s", self.key, self.rec.pod_ip, ip)
        self.rec.pod_ip = ip
        self.rec.netns = "" if self.host_network else self.deps.network.netns_name(self.uid)
        d = self.deps.dirs.pod_dir(self.uid)
        d.mkdir(parents=True, exist_ok=True)
        resolv, hosts = self.deps.resolv_conf(self.pod), self.deps.hosts_file(self.pod, ip)
        if resolv:
            self.resolv_path = d / "resolv.conf"
            self.resolv_path.write_text(resolv)
        if hosts:
            self.hosts_path = d / "hosts"
            self.hosts_path.write_text(hosts)
        self.sandbox_ready = True
        self.changed()
        return True

    def container_mounts(self, container: Obj) -> list[Mount]:
        """The container's volume mounts (what both runtimes bind into it)."""
        mounts = list(self.deps.volume_mounts(self.pod, container))
        if self.volumes is not None:
            mounts += self.volumes.mounts(self.pod, container)
        return mounts

    async def _prepare_volumes(self) -> bool:
        """Set the volumes up, retrying while a ConfigMap/Secret is missing (the pod stays in
        ContainerCreating with kubelet's FailedMount event); False when the pod is stopping."""
        if self.volumes is None:
            return True
        told = ""
        while not self.stopping:
            try:
                await self.volumes.setup(self.pod)
                return True
            except VolumeError as e:
                msg = str(e)
            except Exception as e:  # the API away: try again
                msg = f"MountVolume.SetUp failed: {type(e).__name__}"
                log.warning("pod %s: volume setup: %s", self.key, e)
            if msg != told:
                self.deps.record_event(self.pod, "Warning", "FailedMount", msg, "")
                told = msg
            for r in [*self.init_runners, *self.runners]:
                r._set_waiting("ContainerCreating", "")
            await wait_event(self._stop_event, 2.0)
        return False

    async def _refresh_volumes(self) -> None:
        """Bring configMap/secret/projected/downwardAPI contents up to date (the kubelet's periodic sync)."""
        assert self.volumes is not None
        while True:
            await asyncio.sleep(self.deps.volume_refresh_seconds)
            try:
                changed = await self.volumes.refresh(self.pod)
                if changed:
                    log.info("pod %s: volumes updated: %s", self.key, ", ".join(changed))
            except Exception as e:
                log.debug("pod %s: volume refresh: %s", self.key, e)

    async def _run_containers(self) -> None:
        if not await self._prepare_volumes():
            return
        refresher = asyncio.create_task(self._refresh_volumes(), name=f"volumes-{self.key}") \
            if self.volumes is not None else None
        try:
            await self._run_all_containers()
        finally:
            if refresher is not None:
                refresher.cancel()

    async def _run_all_containers(self) -> None:
        if not self.rec.init_done:
            for r in self.init_runners:
                if r.rec.done and r.view.terminated and r.view.terminated.get("exitCode") == 0:
                    continue
                await r.run()
                term = r.view.terminated
                if self.stopping or not term or term.get("exitCode") != 0:
                    return  # failed under restartPolicy Never, or stopping
            self.rec.init_done = True
            self.changed()
        await asyncio.gather(*(r.run() for r in self.runners))

    async def _terminate(self) -> None:
        grace = grace_seconds(self.pod)
        await asyncio.gather(*(r.stop(grace) for r in self.init_runners + self.runners))

    async def _teardown_and_delete(self) -> None:
        try:
            if not self.host_network:
                await in_netlink_thread(self.deps.network.teardown, self.uid)
        except Exception as e:
            log.error("pod %s: network teardown failed: %s", self.key, e)
        if self.volumes is not None:
            self.volumes.cleanup(self.pod)
        if self.deps.mountpoints is not None:
            try:
                await asyncio.to_thread(self.deps.mountpoints.release, self.uid)
            except OSError as e:
                log.warning("pod %s: mount point cleanup failed: %s", self.key, e)
        self.deps.dirs.remove(self.uid)
        try:
            await self.deps.finish_delete(self.pod)
        except Exception as e:
            log.warning("pod %s: final delete failed: %s", self.key, e)


def _condition_states(status: Obj) -> dict[str, str]:
    """{condition type: status} of a pod status, e.g. {"Ready": "True", ...}."""
    return {str(c.get("type")): str(c.get("status")) for c in status.get("conditions") or []}
