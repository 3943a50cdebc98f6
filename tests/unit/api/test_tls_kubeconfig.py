"""The per-cluster CA / serving certificate and the rendered kubeconfig, used over real TLS."""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path

import aiohttp
import yaml
from cryptography import x509

from podnet.api.server import APIServer
from podnet.core.kubeconfig import render_kubeconfig
from podnet.core.tls import ensure_ca_and_cert, server_ssl_context
from podnet.store.memory import MemoryStore


def test_certificates_are_created_once_and_cover_the_hosts(tmp_path: Path) -> None:
    ca, crt, key = ensure_ca_and_cert(tmp_path, ["10.11.12.13", "node-a.example"])
    assert (ca.name, crt.name, key.name) == ("ca.crt", "server.crt", "server.key")
    assert os.stat(key).st_mode & 0o077 == 0 and os.stat(tmp_path / "ca.key").st_mode & 0o077 == 0
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "node-a.example" in san.get_values_for_type(x509.DNSName)
    ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    assert "10.11.12.13" in ips and "127.0.0.1" in ips
    before = crt.read_bytes(), ca.read_bytes()
    ensure_ca_and_cert(tmp_path, ["10.11.12.13"])
    assert (crt.read_bytes(), ca.read_bytes()) == before  # still valid: reused
    ensure_ca_and_cert(tmp_path, ["10.99.0.1"])
    assert crt.read_bytes() != before[0] and ca.read_bytes() == before[1]  # new host: new cert, same CA


def test_kubeconfig_is_shaped_like_kinds(tmp_path: Path) -> None:
    ca, _, _ = ensure_ca_and_cert(tmp_path, [])
    doc = yaml.safe_load(render_kubeconfig("dev", "https://127.0.0.1:6443", "tok", ca))
    assert doc["current-context"] == "podnet-dev" and doc["kind"] == "Config"
    context = {"cluster": "podnet-dev", "namespace": "default", "user": "podnet-dev"}
    assert doc["contexts"] == [{"context": context, "name": "podnet-dev"}]
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.read_bytes()
    assert doc["users"] == [{"name": "podnet-dev", "user": {"token": "tok"}}]
    plain = yaml.safe_load(render_kubeconfig("x", "http://127.0.0.1:1", "t"))
    assert plain["clusters"][0]["cluster"] == {"server": "http://127.0.0.1:1"}


async def test_server_over_tls_with_token_and_unix_socket(tmp_path: Path) -> None:
    ca, crt, key = ensure_ca_and_cert(tmp_path / "pki", ["127.0.0.1"])
    server = APIServer(MemoryStore(), tokens=["tok"])
    await server.bootstrap()
    sock = tmp_path / "api.sock"
    port = await server.start("127.0.0.1", 0, unix_path=str(sock), ssl_context=server_ssl_context(crt, key))
    try:
        assert port > 0
        ctx = ssl.create_default_context(cafile=str(ca))
        url = f"https://127.0.0.1:{port}/api/v1/namespaces"
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer tok"}) as s, \
                s.get(url, ssl=ctx) as r:
            assert r.status == 200 and (await r.json())["kind"] == "NamespaceList"
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as s:
            async with s.get("http://localhost/api/v1/namespaces") as r:
                assert r.status == 401
            async with s.get("http://localhost/readyz") as r:
                assert r.status == 200
    finally:
        await server.stop()
