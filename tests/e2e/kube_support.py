"""E2E helpers: a real podnet API server (subprocess, random port, token) and real clients.

`apiserver` starts `python -m podnet.cluster.standalone_api memory:// 127.0.0.1 0 <tls dir>` once per test
module, with a generated kubeconfig and a fresh kubectl --cache-dir; `kubectl(...)` runs the
installed kubectl against it with a timeout.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from podnet.core.kubeconfig import render_kubeconfig

KUBECTL = shutil.which("kubectl")


@dataclass
class ApiServerProc:
    url: str  # https://127.0.0.1:<port>: kubectl sends bearer tokens only over TLS
    token: str
    kubeconfig: Path
    cache_dir: Path
    proc: subprocess.Popen[str]

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 30.0,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        cmd = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir),
               "--request-timeout", "20s", *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "HOME": str(self.cache_dir.parent)})
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n"
                                 f"stdout: {res.stdout}\nstderr: {res.stderr}")
        return res


def start_apiserver(tmp: Path) -> ApiServerProc:
    token = secrets.token_hex(16)
    tls = tmp / "pki"
    proc = subprocess.Popen([sys.executable, "-m", "podnet.cluster.standalone_api", "memory://", "127.0.0.1",
                             "0", str(tls)], env={**os.environ, "PODNET_API_TOKEN": token},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line or proc.poll() is not None:
            break
    if "listening on " not in line:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"API server did not start: {line!r} {err}")
    url = line.strip().rsplit(" ", 1)[-1]
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(render_kubeconfig(f"e2e-{os.getpid()}", url, token, tls / "ca.crt"))
    cache = tmp / "kube-cache"
    cache.mkdir()
    return ApiServerProc(url, token, kubeconfig, cache, proc)
