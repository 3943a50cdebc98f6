"""E2E fixtures: `apiserver`, a real podnet API server subprocess (helpers in kube_support.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_support import KUBECTL, ApiServerProc, start_apiserver


@pytest.fixture(scope="module")
def apiserver() -> Iterator[ApiServerProc]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    tmp = Path(tempfile.mkdtemp(prefix=f"podnet-e2e-{os.getpid()}-"))
    server = start_apiserver(tmp)
    try:
        yield server
    finally:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=5)
        for stream in (server.proc.stdout, server.proc.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(tmp, ignore_errors=True)
