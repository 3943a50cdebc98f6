"""The audit log, when asked for (issue 19 item 12): one audit.k8s.io/v1 Event line per request."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from api_support import SVC_PATH, service

from podnet.api.server import APIServer
from podnet.store.memory import MemoryStore


async def test_requests_are_written_to_the_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.log"
    server = APIServer(MemoryStore(), tokens=["audit-secret"], audit_log=path)
    await server.bootstrap()
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    try:
        headers = {"Authorization": "Bearer audit-secret", "User-Agent": "kubectl/v1.32.0"}
        assert (await client.post(SVC_PATH, json=service("web"), headers=headers)).status == 201
        assert (await client.get(SVC_PATH + "/nope", headers=headers)).status == 404
    finally:
        await client.close()
    assert os.stat(path).st_mode & 0o077 == 0
    text = path.read_text()
    assert "audit-secret" not in text
    events = [json.loads(line) for line in text.splitlines()]
    assert [(e["verb"], e["objectRef"].get("name", ""), e["responseStatus"]["code"]) for e in events] == [
        ("create", "", 201), ("get", "nope", 404)]
    first = events[0]
    assert (first["kind"], first["apiVersion"], first["level"], first["stage"]) == (
        "Event", "audit.k8s.io/v1", "Metadata", "ResponseComplete")
    assert first["user"]["username"] == "kubernetes-admin" and first["userAgent"] == "kubectl/v1.32.0"
    assert first["objectRef"] == {"resource": "services", "namespace": "default", "apiVersion": "v1"}
    assert first["requestURI"] == SVC_PATH


async def test_no_audit_log_unless_asked(tmp_path: Path) -> None:
    server = APIServer(MemoryStore())
    assert server.audit is None
