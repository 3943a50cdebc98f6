"""A control plane that stays down longer than the node grace period, then comes back: Kubernetes' node
controller judges node health by when *it* last saw a heartbeat change (a restarted controller gives every
node a fresh grace period), and kubelet re-syncs pod status it finds changed in the API. So Services keep
answering and every pod is Ready again shortly after the restart.

Traffic goes only from the host to node IPs on the cluster's own bridge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from cluster_support import Cluster, running_cluster, wait_for
from test_faults_e2e import RESTART_CONTROLPLANE, RequestLoop, _kill, _node_port, steady_app

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

GRACE = 8


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("out", "--nodes", "2", "--node-grace", str(GRACE)) as c:
        c.stop_supervisor()  # the outage lasts as long as the test wants: nothing restarts the daemons
        steady_app(c, 2)
        yield c


def test_control_plane_down_longer_than_the_grace_period(cluster: Cluster) -> None:
    c = cluster
    ips = sorted(c.node_ips().values())
    with RequestLoop(ips, _node_port(c), max_seconds=60) as load:
        _kill(c.journal_pid("controlplane"))
        time.sleep(GRACE + 4)
        res = subprocess.run([sys.executable, "-c", RESTART_CONTROLPLANE, c.name], env=c.env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        wait_for("every node Ready", lambda: all(c.node_ready(n) == "True" for n in c.node_ips()), timeout=15)
        wait_for("both pods Ready", lambda: len(c.ready_pods("app=steady")) == 2, timeout=15)
    assert not load.failures, f"{len(load.failures)} requests failed: {load.failures[:3]}"
