import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import FakeApi, FakeLauncher, FakeNetwork

from podnet.agent.pods import PodDeps, PodWorker
from podnet.agent.podstate import PodDirs


@pytest.fixture
def parts(tmp_path: Path) -> tuple[FakeApi, FakeLauncher, FakeNetwork, PodDeps]:
    api, launcher, net = FakeApi(), FakeLauncher(), FakeNetwork()
    deps = PodDeps(node_name="n1", node_ip="172.30.0.2", dirs=PodDirs(tmp_path / "pods"), network=net,
                   launcher=launcher, push_status=api.push_status, finish_delete=api.finish_delete,
                   get_configmap=api.get_configmap, backoff_scale=0.01, record_event=api.record_event,
                   resolv_conf=lambda pod: "nameserver 10.96.0.10\n", hosts_file=lambda pod, ip: f"{ip}\tx\n")
    return api, launcher, net, deps


def mkpod(name: str = "web", restart: str = "Always", **container: Any) -> dict[str, Any]:
    c = {"name": "app", "image": "busybox", "command": ["sleep", "100"], **container}
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"nodeName": "n1", "restartPolicy": restart, "containers": [c]}}


def cs(status: dict[str, Any]) -> dict[str, Any]:
    return status["containerStatuses"][0]


def cond(status: dict[str, Any], ctype: str) -> str:
    return next(c["status"] for c in status["conditions"] if c["type"] == ctype)


async def stop(w: PodWorker) -> None:
    w.request_stop()
    assert w.task is not None
    await asyncio.wait_for(w.task, 5)


async def test_running_pod_status(parts) -> None:
    api, launcher, _net, deps = parts
    w = PodWorker(mkpod(), deps)
    w.start()
    st = await api.wait("Ready", lambda s: cond(s, "Ready") == "True")
    assert st["phase"] == "Running" and st["podIP"] == "10.244.1.2" and st["hostIP"] == "172.30.0.2"
    assert st["podIPs"] == [{"ip": "10.244.1.2"}] and st["qosClass"] == "BestEffort"
    c = cs(st)
    assert c["ready"] and c["started"] and c["restartCount"] == 0 and "running" in c["state"]
    assert c["containerID"].startswith("podnet://uid-web-app-")
    assert c["imageID"].startswith("docker.io/library/busybox@")
    spec = launcher.started[0].spec
    assert spec.argv == ["sleep", "100"] and spec.hostname == "web"
    assert spec.netns_path == "/run/netns/pn-test-pod-uid-web"
    assert Path(spec.resolv_conf).read_text() == "nameserver 10.96.0.10\n"
    await stop(w)


async def test_crash_restarts_then_crash_loop_back_off(parts) -> None:
    api, launcher, _net, deps = parts
    w = PodWorker(mkpod(), deps)
    w.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    launcher.started[0].exit(1)
    st = await api.wait("restart 1", lambda s: cs(s)["restartCount"] == 1 and "running" in cs(s)["state"])
    assert cs(st)["lastState"]["terminated"]["exitCode"] == 1
    assert cs(st)["lastState"]["terminated"]["reason"] == "Error"
    assert len(launcher.started) == 2  # the first restart is immediate
    launcher.started[1].exit(2)
    st = await api.wait("back-off", lambda s: "waiting" in cs(s)["state"])
    waiting = cs(st)["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    assert waiting["message"] == "back-off 10s restarting failed container=app pod=web_default(uid-web)"
    assert cs(st)["restartCount"] == 1 and cs(st)["lastState"]["terminated"]["exitCode"] == 2
    assert st["phase"] == "Running" and cond(st, "Ready") == "False"
    st = await api.wait("restart 2", lambda s: cs(s)["restartCount"] == 2 and "running" in cs(s)["state"])
    await stop(w)
    reasons = [e[1] for e in api.events]
    assert reasons[:3] == ["Pulled", "Created", "Started"] and reasons.count("Started") == 3
    assert ("Warning", "BackOff", "Back-off restarting failed container app in pod web_default(uid-web)",
            "spec.containers{app}") in api.events
    assert reasons[-1] == "Killing"


async def test_never_policy_succeeded_and_failed(parts) -> None:
    api, launcher, _net, deps = parts
    ok = PodWorker(mkpod("ok", "Never"), deps)
    ok.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    launcher.started[0].exit(0)
    st = await api.wait("Succeeded", lambda s: s["phase"] == "Succeeded")
    assert cs(st)["state"]["terminated"]["reason"] == "Completed" and cs(st)["restartCount"] == 0
    assert len(launcher.started) == 1
    await stop(ok)
    bad = PodWorker(mkpod("bad", "OnFailure"), deps)
    bad.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    launcher.started[1].exit(3)
    st = await api.wait("restarted", lambda s: cs(s)["restartCount"] == 1)
    launcher.started[2].exit(0)
    st = await api.wait("Succeeded", lambda s: s["phase"] == "Succeeded")
    await stop(bad)


async def test_image_not_built_in_is_err_image_pull(parts) -> None:
    api, launcher, _net, deps = parts
    w = PodWorker(mkpod(image="quay.io/x/y:1", command=None), deps)
    w.start()
    st = await api.wait("ErrImagePull",
                        lambda s: cs(s)["state"].get("waiting", {}).get("reason") == "ErrImagePull")
    assert st["phase"] == "Pending" and not launcher.started
    assert "registry.k8s.io/e2e-test-images/agnhost" in cs(st)["state"]["waiting"]["message"]
    await stop(w)


async def test_graceful_stop_then_teardown_and_delete(parts) -> None:
    api, launcher, net, deps = parts
    launcher.term_exit = None  # the process ignores SIGTERM
    pod = mkpod()
    pod["spec"]["terminationGracePeriodSeconds"] = 0.2
    w = PodWorker(pod, deps)
    w.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    deleting = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z",
                                    "deletionGracePeriodSeconds": 0.2}}
    w.update(deleting)
    assert w.task is not None
    await asyncio.wait_for(w.task, 5)
    assert launcher.started[0].signals == [signal.SIGTERM, signal.SIGKILL]
    assert len(launcher.started) == 1  # no restart while stopping
    assert net.torn_down == ["uid-web"] and api.deleted == ["web"]
    assert not (deps.dirs.pod_dir("uid-web")).exists()


async def test_readiness_probe_failure_keeps_pod_not_ready(parts) -> None:
    api, _launcher, _net, deps = parts

    async def exec_in(pid: int, cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
        return (0, "") if cmd == ["true"] else (1, "nope")

    deps.exec_in = exec_in
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 0.05, "failureThreshold": 1}
    w = PodWorker(mkpod(readinessProbe=probe), deps)
    w.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    await asyncio.sleep(0.2)
    assert cond(api.last, "Ready") == "False" and cs(api.last)["ready"] is False
    assert api.last["conditions"][2]["message"] == "containers with unready status: [app]"
    await stop(w)
    good = PodWorker(mkpod("good", readinessProbe={**probe, "exec": {"command": ["true"]}}), deps)
    good.start()
    await api.wait("Ready", lambda s: cond(s, "Ready") == "True")
    await stop(good)


async def test_liveness_failure_restarts_container(parts) -> None:
    api, _launcher, _net, deps = parts

    async def exec_in(pid: int, cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
        return 1, "unhealthy"

    deps.exec_in = exec_in
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 0.05, "failureThreshold": 2}
    w = PodWorker(mkpod(livenessProbe=probe, terminationGracePeriodSeconds=1), deps)
    w.start()
    st = await api.wait("restart", lambda s: cs(s)["restartCount"] >= 1)
    term = cs(st)["lastState"]["terminated"]
    assert term["exitCode"] == 143 and term["message"] == "Liveness probe failed: unhealthy"
    await stop(w)


async def test_sandbox_failure_is_reported_not_raised(parts) -> None:
    api, launcher, net, deps = parts
    net.fail = "no free IP left in podCIDR 10.244.1.0/24"
    w = PodWorker(mkpod(), deps)
    w.start()
    st = await api.wait("message", lambda s: "message" in s)
    assert st["phase"] == "Pending" and "no free IP left" in st["message"]
    assert not launcher.started
    assert ("Warning", "FailedCreatePodSandBox",
            "Failed to create pod sandbox: no free IP left in podCIDR 10.244.1.0/24", "") in api.events
    await stop(w)


async def test_init_containers_run_first_in_order(parts) -> None:
    api, launcher, _net, deps = parts
    pod = mkpod()
    pod["spec"]["initContainers"] = [{"name": "i1", "image": "busybox", "command": ["true"]},
                                     {"name": "i2", "image": "busybox", "command": ["true"]}]
    w = PodWorker(pod, deps)
    w.start()
    st = await api.wait("init running", lambda s: "running" in s["initContainerStatuses"][0]["state"])
    assert st["phase"] == "Pending" and cond(st, "Initialized") == "False"
    assert cs(st)["state"]["waiting"]["reason"] == "PodInitializing"
    launcher.started[0].exit(0)
    await api.wait("i2 running", lambda s: "running" in s["initContainerStatuses"][1]["state"])
    launcher.started[1].exit(0)
    st = await api.wait("Ready", lambda s: cond(s, "Ready") == "True")
    assert cond(st, "Initialized") == "True"
    assert [p.spec.argv for p in launcher.started] == [["true"], ["true"], ["sleep", "100"]]
    await stop(w)


async def test_adoption_reuses_running_process(parts) -> None:
    api, launcher, _net, deps = parts
    w = PodWorker(mkpod(), deps)
    w.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    assert w.task is not None
    w.task.cancel()  # the agent goes away; the process keeps running
    await asyncio.gather(w.task, return_exceptions=True)
    rec = deps.dirs.load("uid-web")
    assert rec is not None and rec.pod_ip == "10.244.1.2"
    again = PodWorker(mkpod(), deps, rec)
    again.start()
    st = await api.wait("running again", lambda s: "running" in cs(s)["state"] and cs(s)["ready"])
    assert len(launcher.started) == 1 and cs(st)["restartCount"] == 0 and st["podIP"] == "10.244.1.2"
    launcher.started[0].exit(137, sig=9)
    await api.wait("restart after adoption", lambda s: cs(s)["restartCount"] == 1)
    await stop(again)


async def test_host_network_pod_uses_the_node_ip_and_no_netns(parts) -> None:
    api, launcher, net, deps = parts
    pod = mkpod("hn")
    pod["spec"]["hostNetwork"] = True
    w = PodWorker(pod, deps)
    w.start()
    st = await api.wait("running", lambda s: "running" in cs(s)["state"])
    assert st["podIP"] == "172.30.0.2" and launcher.started[0].spec.netns_path == ""
    assert net.ips == {}
    await stop(w)
    assert net.torn_down == []


async def test_pre_stop_hook_runs_before_sigterm(parts) -> None:
    api, launcher, _net, deps = parts
    calls: list[list[str]] = []

    async def exec_in(pid: int, cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
        calls.append(cmd)
        assert launcher.started[0].signals == []  # nothing was signalled yet
        return 0, ""

    deps.exec_in = exec_in
    pre = {"preStop": {"exec": {"command": ["sh", "-c", "drain"]}}}
    w = PodWorker(mkpod(lifecycle=pre), deps)
    w.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    await stop(w)
    assert calls == [["sh", "-c", "drain"]] and launcher.started[0].signals == [signal.SIGTERM]


async def test_startup_probe_gates_readiness(parts) -> None:
    api, _launcher, _net, deps = parts
    results = {"startup": [1, 1, 0], "ready": [0]}

    async def exec_in(pid: int, cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
        seq = results[cmd[0]]
        return (seq.pop(0) if len(seq) > 1 else seq[0]), "not yet"

    deps.exec_in = exec_in
    startup = {"exec": {"command": ["startup"]}, "periodSeconds": 0.05, "failureThreshold": 10}
    ready = {"exec": {"command": ["ready"]}, "periodSeconds": 0.05}
    w = PodWorker(mkpod(startupProbe=startup, readinessProbe=ready), deps)
    w.start()
    st = await api.wait("running", lambda s: "running" in cs(s)["state"])
    assert cs(st)["started"] is False and cs(st)["ready"] is False
    st = await api.wait("started and ready", lambda s: cs(s)["started"] and cs(s)["ready"])
    assert cond(st, "Ready") == "True" and results["startup"] == [0]
    await stop(w)


async def test_status_changed_by_someone_else_is_pushed_again(parts) -> None:
    """The node lifecycle controller marks pods not Ready when it stops hearing from the node; once the
    agent sees that in the API, it pushes its own (Ready) status again."""
    api, _launcher, _net, deps = parts
    w = PodWorker(mkpod(), deps)
    w.start()
    st = await api.wait("Ready", lambda s: cond(s, "Ready") == "True")
    pushes = len(api.statuses)
    seen = mkpod()
    seen["status"] = {**st, "conditions": [{**c, "status": "False"} if c["type"] == "Ready" else c
                                           for c in st["conditions"]]}
    w.update(seen)
    await api.wait("a second Ready push", lambda s: len(api.statuses) > pushes and cond(s, "Ready") == "True")
    w.update({**mkpod(), "status": api.last})  # the API now agrees: nothing more to push
    await asyncio.sleep(0.1)
    assert len(api.statuses) == pushes + 1
    await stop(w)


async def test_network_policy_is_programmed_before_any_container_starts(parts) -> None:
    api, launcher, _net, deps = parts
    order: list[str] = []

    async def admit(pod: dict[str, Any], ip: str) -> None:
        order.append(f"admit {ip} {pod['metadata']['name']} containers={len(launcher.started)}")

    deps.admit_network = admit
    w = PodWorker(mkpod(), deps)
    w.start()
    await api.wait("running", lambda s: "running" in cs(s)["state"])
    assert order == ["admit 10.244.1.2 web containers=0"]
    await stop(w)


async def test_a_pod_whose_policy_cannot_be_programmed_does_not_start(parts) -> None:
    api, launcher, _net, deps = parts

    async def admit(pod: dict[str, Any], ip: str) -> None:
        raise TimeoutError("the policy rules were not synced")

    deps.admit_network = admit
    w = PodWorker(mkpod(), deps)
    w.start()
    st = await api.wait("waiting", lambda s: "message" in cs(s)["state"].get("waiting", {}))
    assert cs(st)["state"]["waiting"]["reason"] == "ContainerCreating"
    assert "failed to program NetworkPolicy for the pod" in cs(st)["state"]["waiting"]["message"]
    assert launcher.started == []
    assert any(e[1] == "FailedCreatePodSandBox" for e in api.events)
    await stop(w)
