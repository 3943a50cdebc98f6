"""`podnet up --store etcd://...`: a whole cluster whose state lives in a real 3-member etcd started by the
test, serving the mission's NodePort from every node as with the default SQLite store — and going on
serving, reading and writing after one etcd member is killed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest
from cluster_support import EXAMPLES, http_get, running_cluster

from podnet.store.etcd_local import start_etcd_cluster

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
    pytest.mark.skipif(not Path("/usr/bin/etcd").exists(), reason="etcd is not installed (etcd-server)"),
]


def test_cluster_on_etcd_serves_the_mission_example_and_survives_a_member_loss() -> None:
    data = Path(tempfile.mkdtemp(prefix="pnetcd"))
    etcd = start_etcd_cluster(3, data)
    try:
        with running_cluster("etcd", "--nodes", "2", "--store", etcd.url) as c:
            cfg = json.loads(Path(c.state_dir, "config.json").read_text())
            assert cfg["store"].startswith("etcd://") and cfg["store"].endswith(f"/podnet/{c.name}")
            c.kubectl("apply", "-f", str(EXAMPLES / "myapp"))
            fronts = {p["metadata"]["name"] for p in c.wait_ready("app=myapp,type=front-end", 3)}
            seen = set()
            for ip in c.node_ips().values():
                for _ in range(15):
                    seen.add(json.loads(http_get(f"http://{ip}:30008/"))["frontend"]["pod"])
            assert seen == fronts
            # the objects are in etcd under the cluster's own prefix
            key = f"/podnet/{c.name}/services/default/myapp-service"
            body = json.dumps({"key": _b64(key)}).encode()
            req = urllib.request.Request(f"http://{etcd.endpoints[0]}/v3/kv/range", data=body, method="POST")
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert int(json.loads(resp.read()).get("count", 0)) == 1

            # one member of three killed (SIGKILL, by the PID the test started): the cluster keeps serving
            etcd.members[0].kill()
            ip = sorted(c.node_ips().values())[0]
            for _ in range(10):
                assert json.loads(http_get(f"http://{ip}:30008/"))["frontend"]["pod"] in fronts
            c.kubectl("scale", "deployment", "myapp-front-end", "--replicas=4", timeout=60)
            fronts = {p["metadata"]["name"] for p in c.wait_ready("app=myapp,type=front-end", 4, timeout=90)}
            assert len(fronts) == 4
            assert c.get_json("svc", "myapp-service")["spec"]["ports"][0]["nodePort"] == 30008
    finally:
        etcd.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
