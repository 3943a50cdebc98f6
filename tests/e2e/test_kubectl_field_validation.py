"""The misplaced `selector:` where users hit it: kubectl's Warning line, Strict's 400, `podnet apply`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def podnet(*args: str, cwd: Path, state_root: Path,
           home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODNET_STATE_ROOT": str(state_root), "PODNET_CLUSTER": "e2e-none"}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "podnet.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env)


STRICT_TEXT = ('Service in version "v1" cannot be handled as a Service: strict decoding error: '
               'unknown field "spec.ports[0].selector"')


@pytest.mark.parametrize("flags", [[], ["--validate=strict"]], ids=["default", "strict"])
def test_kubectl_apply_asks_for_strict_and_is_refused(apiserver: ApiServerProc, tmp_path: Path,
                                                      flags: list[str]) -> None:
    # kubectl v1.32 sends fieldValidation=Strict by default (--validate=strict), as against Kubernetes
    name = f"strict-{len(flags)}"
    path = misplaced_copy(tmp_path, name)
    res = apiserver.kubectl("apply", *flags, "-f", str(path), check=False)
    assert res.returncode == 1
    expected = f'Error from server (BadRequest): error when creating "{path}": {STRICT_TEXT}'
    assert res.stderr.strip() == expected
    got = apiserver.kubectl("get", "svc", name, check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr


def test_kubectl_apply_validate_warn_prints_the_warning_and_drops_the_field(apiserver: ApiServerProc) -> None:
    res = apiserver.kubectl("apply", "--validate=warn", "-f", str(MISPLACED))
    assert res.stdout.strip() == "service/myapp-service created"
    assert WARNING_LINE in res.stderr.splitlines()
    svc = json.loads(apiserver.kubectl("get", "svc", "myapp-service", "-o", "json").stdout)
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0]["nodePort"] == 30080
    assert "selector" not in svc["spec"] and "selector" not in svc["spec"]["ports"][0]
    # applying again: kubectl's patch carries the field again; the server warns again
    res = apiserver.kubectl("apply", "--validate=warn", "-f", str(MISPLACED))
    assert res.stdout.strip() == "service/myapp-service configured"
    assert WARNING_LINE in res.stderr.splitlines()
    # the same patch with the default (Strict) is refused, naming the patch
    res = apiserver.kubectl("apply", "-f", str(MISPLACED), check=False)
    assert res.returncode == 1
    assert "The request is invalid: patch: Invalid value: " in res.stderr
    assert res.stderr.strip().endswith('strict decoding error: unknown field "spec.ports[0].selector"')


def test_kubectl_apply_validate_false_drops_the_field_silently(apiserver: ApiServerProc,
                                                               tmp_path: Path) -> None:
    path = misplaced_copy(tmp_path, "ignored")
    res = apiserver.kubectl("apply", "--validate=false", "-f", str(path))
    assert res.stdout.strip() == "service/ignored created" and "Warning" not in res.stderr
    svc = json.loads(apiserver.kubectl("get", "svc", "ignored", "-o", "json").stdout)
    assert "selector" not in svc["spec"]["ports"][0]


def test_a_raw_strict_create_gets_the_kubernetes_400(apiserver: ApiServerProc, tmp_path: Path) -> None:
    body = yaml.safe_load(misplaced_copy(tmp_path, "raw-strict").read_text())
    raw = tmp_path / "raw-strict.json"
    raw.write_text(json.dumps(body))
    res = apiserver.kubectl("create", "--raw", "/api/v1/namespaces/default/services?fieldValidation=Strict",
                            "-f", str(raw), check=False)
    assert res.returncode != 0 and STRICT_TEXT in res.stderr


def test_server_side_apply_refuses_the_undeclared_field(apiserver: ApiServerProc, tmp_path: Path) -> None:
    path = misplaced_copy(tmp_path, "ssa-svc")
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


def test_podnet_apply_hands_good_manifests_and_flags_to_kubectl(apiserver: ApiServerProc,
                                                                tmp_path: Path) -> None:
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


TYPO = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  tpye: NodePort\n"
        "  ports:\n  - port: 80\n")


def test_podnet_apply_locates_a_misspelt_field_and_refuses_by_default(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO.format(name="typo"))
    res = podnet("apply", "-f", "typo.yaml", cwd=tmp_path, state_root=tmp_path)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[0] == ('typo.yaml:6:3: unknown field "spec.tpye" in Service "typo": '
                        "a Service has no such field there")
    assert lines[1:3] == ["    6 |   tpye: NodePort", "      |   ^"]
    assert lines[-1] == "error: nothing applied: 1 problem(s) in the manifests above"


def test_podnet_apply_validate_warn_warns_then_applies(apiserver: ApiServerProc, tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO.format(name="typo-warn"))
    res = podnet("apply", "-f", str(path), "--validate=warn", "--kubeconfig", str(apiserver.kubeconfig),
                 "--cache-dir", str(apiserver.cache_dir), cwd=tmp_path, state_root=tmp_path,
                 home=apiserver.cache_dir.parent)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "service/typo-warn created"
    lines = res.stderr.splitlines()
    assert lines[0].startswith(f'warning: {path}:6:3: unknown field "spec.tpye" in Service "typo-warn"')
    assert 'Warning: unknown field "spec.tpye"' in lines  # and the server's own warning, via kubectl
    svc = json.loads(apiserver.kubectl("get", "svc", "typo-warn", "-o", "json").stdout)
    assert svc["spec"]["type"] == "ClusterIP" and "tpye" not in svc["spec"]
