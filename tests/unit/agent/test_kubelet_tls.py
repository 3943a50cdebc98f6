"""The node endpoint's mutual TLS (podnet.agent.kubelet_http + podnet.core.tls): only the API server's
client certificate from the cluster CA is answered."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from podnet.agent.kubelet_http import KubeletServer
from podnet.core.config import write_private
from podnet.core.tls import (
    ensure_ca_and_cert,
    ensure_kubelet_client_cert,
    kubelet_client_ssl_context,
    kubelet_server_ssl_context,
    kubelet_serving_csr,
    load_ca,
    serving_cert_ok,
    sign_kubelet_serving_csr,
)


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    ca_file, _, _ = ensure_ca_and_cert(tmp_path, [])
    ca = load_ca(tmp_path)
    assert ca is not None
    key_pem, csr = kubelet_serving_csr("n1", "127.0.0.1")
    node = tmp_path / "nodes" / "n1"
    node.mkdir(parents=True)
    write_private(node / "kubelet.key", key_pem.decode())
    write_private(node / "kubelet.crt", sign_kubelet_serving_csr(ca, csr.decode(), "n1", {"127.0.0.1"}))
    assert serving_cert_ok(node / "kubelet.crt", ca_file, "127.0.0.1")
    assert not serving_cert_ok(node / "kubelet.crt", ca_file, "127.0.0.2")
    server = KubeletServer(SimpleNamespace(workers={}))  # type: ignore[arg-type]
    port = await server.start("127.0.0.1", 0, ssl_context=kubelet_server_ssl_context(
        ca_file, node / "kubelet.crt", node / "kubelet.key"))
    try:
        yield f"https://127.0.0.1:{port}", tmp_path
    finally:
        await server.stop()


def _client_cert(d: Path, cn: str) -> tuple[Path, Path]:
    ca = load_ca(d)
    assert ca is not None
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca[0].subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca[1], hashes.SHA256()))
    crt_path, key_path = d / f"{cn}.crt", d / f"{cn}.key"
    crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode())
    return crt_path, key_path


async def _get(url: str, ctx: ssl.SSLContext) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url, ssl=ctx) as r:
        return r.status, await r.text()


async def test_only_the_api_servers_client_certificate_is_answered(endpoint: tuple[str, Path]) -> None:
    base, d = endpoint
    ca = d / "ca.crt"
    api = kubelet_client_ssl_context(ca, *ensure_kubelet_client_cert(d))
    assert await _get(f"{base}/pods", api) == (200, '{"kind": "PodList", "apiVersion": "v1", "metadata": {}, '
                                                    '"items": []}')
    no_cert = ssl.create_default_context(cafile=str(ca))
    with pytest.raises(aiohttp.ClientError):  # the handshake fails: no client certificate
        await _get(f"{base}/pods", no_cert)
    # a certificate of the same CA that is not the API server's: a node's own serving certificate
    # (serverAuth only): no client certificate, refused in the handshake
    n1 = d / "nodes" / "n1"
    node = kubelet_client_ssl_context(ca, n1 / "kubelet.crt", n1 / "kubelet.key")
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{base}/pods", node)
    # a client certificate of the cluster CA for someone else: answered 403
    other_crt, other_key = _client_cert(d, "someone")
    code, text = await _get(f"{base}/pods", kubelet_client_ssl_context(ca, other_crt, other_key))
    assert (code, text) == (403, "Forbidden (user=someone, verb=get, resource=nodes, subresource=proxy): "
                                 "only the API server may call this endpoint")
    # a client certificate from another CA
    other = d / "other"
    ensure_ca_and_cert(other, [])
    foreign = kubelet_client_ssl_context(ca, *ensure_kubelet_client_cert(other))
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{base}/pods", foreign)


def test_the_api_servers_client_certificate(tmp_path: Path) -> None:
    ensure_ca_and_cert(tmp_path, [])
    crt, key = ensure_kubelet_client_cert(tmp_path)
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=podnet-apiserver-kubelet-client,O=system:masters"
    assert oct(key.stat().st_mode & 0o777) == oct(0o600)
    before = crt.read_bytes()
    assert ensure_kubelet_client_cert(tmp_path) == (crt, key) and crt.read_bytes() == before  # reused
