import subprocess
from pathlib import Path

import pytest

from podnet.agent.node import NodeConditions, node_status
from podnet.agent.status import ContainerView, build_status, pod_phase
from podnet.cli.cmd_exec import check_outside_target, print_curl_result
from podnet.cli.main import CLIError
from podnet.model.qos import qos_class

RUN = {"running": {"startedAt": "x"}}


def term(code: int) -> dict[str, object]:
    return {"terminated": {"exitCode": code}}


def cv(state: dict[str, object], last: dict[str, object] | None = None) -> ContainerView:
    return ContainerView("c", "busybox", state=state, last_state=last or {})


@pytest.mark.parametrize("policy,states,phase", [
    ("Always", [{"waiting": {"reason": "ContainerCreating"}}], "Pending"),
    ("Always", [RUN], "Running"),
    ("Always", [RUN, {"waiting": {"reason": "ErrImagePull"}}], "Pending"),
    ("Always", [term(0)], "Running"),  # about to restart
    ("Never", [term(0), term(0)], "Succeeded"),
    ("Never", [term(0), term(1)], "Failed"),
    ("OnFailure", [term(1)], "Running"),
    ("OnFailure", [term(0)], "Succeeded"),
])
def test_pod_phase(policy: str, states: list[dict[str, object]], phase: str) -> None:
    assert pod_phase(policy, [cv(s) for s in states]) == phase


def test_waiting_after_a_crash_counts_as_stopped() -> None:
    crashed = cv({"waiting": {"reason": "CrashLoopBackOff"}}, term(1))
    assert pod_phase("Always", [crashed]) == "Running"
    assert pod_phase("Always", [crashed], init_pending=True) == "Pending"
    assert pod_phase("Never", [cv(RUN)], init_failed=True) == "Failed"


def test_qos_class() -> None:
    def pod(*res: dict[str, object]) -> dict[str, object]:
        return {"spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(res)]}}

    full = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class(pod({})) == "BestEffort"
    assert qos_class(pod(full)) == "Guaranteed"
    # requests default to limits
    assert qos_class(pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Guaranteed"
    assert qos_class(pod(full, {})) == "Burstable"
    assert qos_class(pod({"requests": {"cpu": "100m"}})) == "Burstable"
    # init containers count too, as in Kubernetes (the API server and the agent agree on this)
    with_init = pod(full)
    with_init["spec"]["initContainers"] = [{"name": "init", "resources": {"requests": {"cpu": "1"}}}]  # type: ignore[index]
    assert qos_class(with_init) == "Burstable"
    assert qos_class({"spec": {"containers": "not a list"}}) == "BestEffort"


def test_conditions_keep_transition_time_until_they_change() -> None:
    pod: dict[str, object] = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    ready = ContainerView("c", "busybox", state=RUN, ready=True, started=True)
    s1 = build_status(pod, host_ip="h", pod_ip="10.244.1.2", containers=[ready], sandbox_ready=True,
                      start_time="t0", now=1000.0)
    pod["status"] = s1
    s2 = build_status(pod, host_ip="h", pod_ip="10.244.1.2", containers=[ready], sandbox_ready=True,
                      start_time="t0", now=2000.0)
    by = {c["type"]: c for c in s2["conditions"]}
    assert by["Ready"]["status"] == "True" and by["Ready"]["lastTransitionTime"] == "1970-01-01T00:16:40Z"
    pod["status"] = s2
    ready.ready = False
    s3 = build_status(pod, host_ip="h", pod_ip="10.244.1.2", containers=[ready], sandbox_ready=True,
                      start_time="t0", now=3000.0)
    by = {c["type"]: c for c in s3["conditions"]}
    assert by["Ready"] == {"type": "Ready", "status": "False", "lastProbeTime": None,
                           "lastTransitionTime": "1970-01-01T00:50:00Z", "reason": "ContainersNotReady",
                           "message": "containers with unready status: [c]"}
    assert by["PodScheduled"]["lastTransitionTime"] == "1970-01-01T00:16:40Z"


def test_node_status_shape() -> None:
    conds = NodeConditions().build(ready=False, not_ready_message="waiting for podCIDR", network_ok=False)
    st = node_status("n1", "172.30.0.2", 10250, conds)
    assert st["addresses"] == [{"type": "InternalIP", "address": "172.30.0.2"},
                               {"type": "Hostname", "address": "n1"}]
    assert st["capacity"]["pods"] == "110" and st["capacity"]["memory"].endswith("Ki")
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert st["nodeInfo"]["kubeletVersion"] == "v1.32.0-podnet"
    assert st["nodeInfo"]["containerRuntimeVersion"] == "podnet://0.1"
    by = {c["type"]: c for c in conds}
    assert set(by) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}
    assert (by["Ready"]["status"], by["Ready"]["reason"], by["Ready"]["message"]) == (
        "False", "KubeletNotReady", "waiting for podCIDR")
    assert (by["NetworkUnavailable"]["status"], by["MemoryPressure"]["status"]) == ("True", "False")


NET = {"node_network": "172.30.0.0/24", "pod_cidr": "10.244.0.0/16", "service_cidr": "10.96.0.0/12"}


def test_outside_curl_allows_only_the_node_network() -> None:
    check_outside_target("http://172.30.0.2:30080/", **NET)
    check_outside_target("http://172.30.0.200/", **NET)  # a LoadBalancer IP on the node network
    with pytest.raises(CLIError, match=r"10\.244\.1\.5 is in the pod CIDR 10\.244\.0\.0/16"):
        check_outside_target("http://10.244.1.5:8080/", **NET)
    with pytest.raises(CLIError, match=r"10\.96\.0\.10 is in the service CIDR 10\.96\.0\.0/12"):
        check_outside_target("http://10.96.0.10/", **NET)
    with pytest.raises(CLIError, match=r"8\.8\.8\.8 is not on the cluster's node network 172\.30\.0\.0/24"):
        check_outside_target("http://8.8.8.8/", **NET)
    with pytest.raises(CLIError, match="must name an IP on the node network"):
        check_outside_target("http://web.default.svc.cluster.local/", **NET)
    with pytest.raises(CLIError, match="must start with http:// or https://"):
        check_outside_target("ftp://172.30.0.2/", **NET)


def test_curl_output(capsys: pytest.CaptureFixture[str]) -> None:
    ok = subprocess.CompletedProcess([], 0, "hello\n200", "")
    assert print_curl_result(ok) == 0
    assert capsys.readouterr().out == "HTTP 200\nhello\n"
    missing = subprocess.CompletedProcess([], 0, "nope\n404", "")
    assert print_curl_result(missing) == 1
    failed = subprocess.CompletedProcess([], 7, "", "curl: (7) Failed to connect\n")
    assert print_curl_result(failed) == 7
    assert capsys.readouterr().err == "curl: (7) Failed to connect\n"


def test_agent_token_comes_from_a_private_file_or_the_environment(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from podnet.cli.cmd_agent import read_token
    from podnet.cli.main import CLIError

    f = tmp_path / "token"
    f.write_text("s3cret-token\n")
    f.chmod(0o600)
    assert read_token(str(f)) == "s3cret-token"
    f.chmod(0o644)
    with pytest.raises(CLIError) as e:
        read_token(str(f))
    assert str(e.value) == (f"--token-file {f} is readable by others (mode 0644): "
                            f"make it 0600 (chmod 600 {f})")
    monkeypatch.setenv("PODNET_API_TOKEN", "from-env")
    assert read_token("") == "from-env"
    with pytest.raises(CLIError, match="cannot read --token-file"):
        read_token(str(tmp_path / "missing"))
