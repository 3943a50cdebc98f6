"""The misplaced `selector:` where users hit it: kubectl's Warning line, Strict's 400, `podnet apply`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from kube_support import ApiServerProc

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MISPLACED = REPO / "examples" / "broken" / "misplaced-selector.yaml"
WARNING_LINE = 'Warning: unknown field "spec.ports[0].selector"'


def misplaced_copy(tmp: Path, name: str) -> Path:
    """The broken example under another name (tests in this module share one API server)."""
    text = MISPLACED.read_text().replace("name: myapp-service", f"name: {name}")
    text = "\n".join(line for line in text.splitlines() if "nodePort:" not in line) + "\n"
    out = tmp / f"{name}.yaml"
    out.write_text(text)
    return out


def podnet(*args: str, cwd: Path, state_root: Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODNET_STATE_ROOT": str(state_root), "PODNET_CLUSTER": "e2e-none"}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "podnet.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env)


def test_kubectl_apply_prints_the_warning_and_the_selector_is_not_stored(apiserver: ApiServerProc) -> None:
    res = apiserver.kubectl("apply", "-f", str(MISPLACED))
    assert "service/myapp-service created" in res.stdout
    assert WARNING_LINE in res.stderr.splitlines()
    svc = json.loads(apiserver.kubectl("get", "svc", "myapp-service", "-o", "json").stdout)
    assert svc["spec"]["type"] == "NodePort"
    assert "selector" not in svc["spec"] and "selector" not in svc["spec"]["ports"][0]
    # applying again: kubectl's patch carries the field again, the server warns again
    res = apiserver.kubectl("apply", "-f", str(MISPLACED))
    assert "service/myapp-service" in res.stdout
    assert WARNING_LINE in res.stderr.splitlines()


def test_strict_field_validation_refuses_with_kubernetes_text(apiserver: ApiServerProc) -> None:
    with tempfile.TemporaryDirectory(prefix=f"podnet-fv-{os.getpid()}-") as d:
        body = yaml.safe_load(misplaced_copy(Path(d), "strict-svc").read_text())
        raw = Path(d) / "strict-svc.json"
        raw.write_text(json.dumps(body))
        res = apiserver.kubectl("create", "--raw", "/api/v1/namespaces/default/services?fieldValidation=Strict",
                                "-f", str(raw), check=False)
    assert res.returncode != 0
    assert ('Service in version "v1" cannot be handled as a Service: strict decoding error: '
            'unknown field "spec.ports[0].selector"') in res.stderr
    got = apiserver.kubectl("get", "svc", "strict-svc", check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr


def test_server_side_apply_refuses_the_undeclared_field(apiserver: ApiServerProc) -> None:
    with tempfile.TemporaryDirectory(prefix=f"podnet-fv-{os.getpid()}-") as d:
        path = misplaced_copy(Path(d), "ssa-svc")
        res = apiserver.kubectl("apply", "--server-side", "-f", str(path), check=False)
    assert res.returncode != 0
    assert ("failed to create typed patch object (default/ssa-svc; /v1, Kind=Service): "
            ".spec.ports[0].selector: field not declared in schema") in res.stderr


def test_podnet_apply_reports_the_located_error_without_a_cluster(tmp_path: Path) -> None:
    res = podnet("apply", "-f", "examples/broken/misplaced-selector.yaml", cwd=REPO, state_root=tmp_path)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[0] == ('examples/broken/misplaced-selector.yaml:14:7: "selector" is indented under "ports" '
                        '(line 10); it belongs under "spec"')
    assert lines[1] == "   14 |       selector:"
    assert lines[2] == "      |       ^"
    assert lines[3].startswith('hint: move "selector" so it starts in column 3')
    assert lines[-1] == "error: nothing applied: 1 problem(s) in the manifests above"
    assert "not found" not in res.stderr and res.stdout == ""


def test_podnet_apply_reports_validation_errors_in_kubectl_form(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 0\n"
                   "    targetPort: 80\n")
    res = podnet("apply", "-f", str(bad), cwd=tmp_path, state_root=tmp_path)
    assert res.returncode == 1
    assert res.stderr.splitlines()[0] == (f'{bad}: The Service "web" is invalid: spec.ports[0].port: '
                                          "Invalid value: 0: must be between 1 and 65535, inclusive")


def test_podnet_apply_hands_good_manifests_and_flags_to_kubectl(apiserver: ApiServerProc, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: podnet-apply-ok\nspec:\n  selector:\n"
                    "    app: ok\n  ports:\n  - port: 80\n")
    res = podnet("apply", "-f", str(good), "--kubeconfig", str(apiserver.kubeconfig),
                 "--cache-dir", str(apiserver.cache_dir), "-o", "name", cwd=tmp_path, state_root=tmp_path,
                 home=apiserver.cache_dir.parent)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "service/podnet-apply-ok"
    svc = json.loads(apiserver.kubectl("get", "svc", "podnet-apply-ok", "-o", "json").stdout)
    assert svc["spec"]["selector"] == {"app": "ok"}
