"""The kubeconfig `up` writes points at the API over https with the cluster CA (kubectl sends no bearer
token over plain http)."""

from __future__ import annotations

import base64
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from podnet.cluster.up import write_kubeconfig
from podnet.core.config import ClusterConfig
from podnet.core.tls import ensure_ca_and_cert, server_ssl_context


class _Ready(http.server.BaseHTTPRequestHandler):
    timeout = 0.3  # a TLS hello is not an HTTP request line: give up on it quickly, as aiohttp does

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def server(ctx: ssl.SSLContext | None) -> Iterator[int]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Ready)
    if ctx is not None:
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tls_api_gets_https_and_the_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODNET_STATE_ROOT", str(tmp_path))
    cfg = ClusterConfig(name="tls", token="tok")
    ca, crt, key = ensure_ca_and_cert(cfg.state_dir, ["127.0.0.1"])
    with server(server_ssl_context(crt, key)) as port:
        cfg.api_port = port
        path = write_kubeconfig(cfg)
    doc = yaml.safe_load(path.read_text())
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://127.0.0.1:{port}"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
