"""The real kubectl watching from an old resourceVersion with a label selector (issue 14): each event
is judged against the object as it was, so a Service deleted after that version arrives as DELETED."""

from __future__ import annotations

import json

import pytest
from kube_support import ApiServerProc

pytestmark = pytest.mark.e2e

SVC = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    tier: {tier}
spec:
  ports:
  - port: 80
"""


def test_label_selected_watch_from_an_old_rv_sees_the_deleted(apiserver: ApiServerProc) -> None:
    for name, tier in (("input-hist-a", "hist"), ("input-hist-b", "hist")):
        apiserver.kubectl("apply", "-f", "-", input=SVC.format(name=name, tier=tier))
    listed = json.loads(apiserver.kubectl(
        "get", "--raw", "/api/v1/namespaces/default/services?labelSelector=tier%3Dhist").stdout)
    assert len(listed["items"]) == 2
    old_rv = listed["metadata"]["resourceVersion"]
    apiserver.kubectl("delete", "svc", "input-hist-a")
    apiserver.kubectl("label", "svc", "input-hist-b", "tier=other", "--overwrite")
    res = apiserver.kubectl("get", "--raw", "/api/v1/namespaces/default/services?watch=1&labelSelector="
                            f"tier%3Dhist&resourceVersion={old_rv}&timeoutSeconds=2")
    raw = res.stdout
    events = [json.loads(line) for line in raw.splitlines() if line.strip()]
    got = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert got == [("DELETED", "input-hist-a"), ("DELETED", "input-hist-b")], raw
