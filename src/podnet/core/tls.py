"""A per-cluster certificate authority and the API server's serving certificate (cryptography).

`ensure_ca_and_cert(dir, hosts)` creates, once, `ca.crt`/`ca.key` and a serving pair
`server.crt`/`server.key` for `hosts` (IP addresses and DNS names, plus localhost and
127.0.0.1); it reuses them while they cover the hosts and are not close to expiry.
Keys are ECDSA P-256 and written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


def _write(path: Path, data: bytes, private: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for h in [*hosts, *DEFAULT_HOSTS]:
        if not h or h in seen:
            continue
        seen.add(h)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_ca(ca_crt: Path, ca_key: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "podnet-ca")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(ca_key, _key_pem(key), private=True)
    _write(ca_crt, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert, key


def _load_ca(ca_crt: Path, ca_key: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return None
    return cert, key


def _server_ok(path: Path, ca: x509.Certificate, hosts: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.issuer != ca.subject or cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = set(san)
    return all(n in have for n in _san(hosts))


def ensure_ca_and_cert(dir: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) in dir, created or renewed as needed."""
    dir.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = dir / "ca.crt", dir / "ca.key"
    srv_crt, srv_key = dir / "server.crt", dir / "server.key"
    loaded = _load_ca(ca_crt, ca_key)
    ca_cert, ca_priv = loaded if loaded is not None else _make_ca(ca_crt, ca_key)
    if _server_ok(srv_crt, ca_cert, hosts) and srv_key.exists():
        return ca_crt, srv_crt, srv_key
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "podnet-apiserver")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_priv.public_key()),
                           critical=False)
            .sign(ca_priv, hashes.SHA256()))
    _write(srv_key, _key_pem(key), private=True)
    _write(srv_crt, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return ca_crt, srv_crt, srv_key


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


# ---- the node endpoint (<nodeIP>:10250): mutual TLS, as the kubelet's ---------------------------------
KUBELET_CLIENT_CN = "podnet-apiserver-kubelet-client"
KUBELET_CLIENT_ORG = "system:masters"
NODE_ORG = "system:nodes"
KUBELET_CLIENT_FILES = ("apiserver-kubelet-client.crt", "apiserver-kubelet-client.key")


def load_ca(dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The cluster CA in `dir` (ca.crt + ca.key), None when it is not there or not usable."""
    return _load_ca(dir / "ca.crt", dir / "ca.key")


def _leaf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], subject: x509.Name,
          public_key: ec.EllipticCurvePublicKey, usage: x509.ObjectIdentifier,
          san: list[x509.GeneralName] | None = None) -> x509.Certificate:
    ca_cert, ca_key = ca
    now = _now()
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(ca_key, hashes.SHA256())


def _valid_leaf(path: Path, ca: x509.Certificate) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.issuer == ca.subject and cert.not_valid_after_utc - _now() >= RENEW_BEFORE


def ensure_kubelet_client_cert(dir: Path) -> tuple[Path, Path]:
    """The API server's client certificate for node endpoints (CN podnet-apiserver-kubelet-client,
    O system:masters, clientAuth only), signed by the CA in `dir`; created or renewed as needed."""
    crt, key = (dir / f for f in KUBELET_CLIENT_FILES)
    ca = load_ca(dir)
    if ca is None:
        raise ValueError(f"no usable cluster CA in {dir}")
    if _valid_leaf(crt, ca[0]) and key.exists():
        return crt, key
    priv = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, KUBELET_CLIENT_ORG),
                         x509.NameAttribute(NameOID.COMMON_NAME, KUBELET_CLIENT_CN)])
    cert = _leaf(ca, subject, priv.public_key(), ExtendedKeyUsageOID.CLIENT_AUTH)
    _write(key, _key_pem(priv), private=True)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return crt, key


def kubelet_serving_csr(node: str, ip: str) -> tuple[bytes, bytes]:
    """(key PEM, CSR PEM) for a node's serving certificate: the agent keeps the key, sends the CSR."""
    priv = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODE_ORG),
                                    x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(node),
                                                       x509.IPAddress(ipaddress.ip_address(ip))]),
                          critical=False)
           .sign(priv, hashes.SHA256()))
    return _key_pem(priv), csr.public_bytes(serialization.Encoding.PEM)


def sign_kubelet_serving_csr(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], csr_pem: str,
                             node: str, allowed_ips: set[str]) -> str:
    """Sign a node's serving CSR as kubernetes.io/kubelet-serving does: the subject is set here
    (system:node:<node>, O system:nodes; serverAuth only), and the CSR may name only the node itself
    and addresses it reports. ValueError says what is wrong."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise ValueError("is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise ValueError("its signature is invalid")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("must use an ECDSA key")
    try:
        names = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        names = []
    san: list[x509.GeneralName] = []
    for n in names:
        ok_ip = isinstance(n, x509.IPAddress) and str(n.value) in allowed_ips
        if ok_ip or (isinstance(n, x509.DNSName) and n.value == node):
            san.append(n)
        else:
            raise ValueError(f"names {n.value}, which is neither node {node} nor an address it reports")
    if not any(isinstance(n, x509.IPAddress) for n in san):
        raise ValueError("names none of the node's addresses")
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODE_ORG),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    cert = _leaf(ca, subject, key, ExtendedKeyUsageOID.SERVER_AUTH, san)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def serving_cert_ok(crt: Path, ca_file: Path, ip: str) -> bool:
    """True when `crt` is signed by the CA in `ca_file`, names `ip` and is not close to expiry."""
    try:
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    if cert.issuer != ca.subject or cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return x509.IPAddress(ipaddress.ip_address(ip)) in set(san)


def kubelet_server_ssl_context(ca_file: Path, crt: Path, key: Path) -> ssl.SSLContext:
    """TLS for the node endpoint: serves `crt`, and requires a client certificate from the cluster CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


def kubelet_client_ssl_context(ca_file: Path, crt: Path, key: Path) -> ssl.SSLContext:
    """TLS for the API server calling node endpoints: presents its client certificate and checks the
    node's serving certificate against the cluster CA and the node's IP."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


def is_kubelet_client(peer: Any) -> bool:
    """True when a verified peer certificate (ssl getpeercert()) is the API server's kubelet client."""
    if not isinstance(peer, dict):
        return False
    attrs: dict[str, str] = {}
    for rdn in peer.get("subject") or ():
        for pair in rdn:
            if isinstance(pair, tuple) and len(pair) == 2:
                attrs[str(pair[0])] = str(pair[1])
    return attrs.get("commonName") == KUBELET_CLIENT_CN and \
        attrs.get("organizationName") == KUBELET_CLIENT_ORG


# A node asks for its serving certificate by writing a CSR into an annotation of its own Node; the API
# server signs it in the same write (podnet.api.auth.NodeRestriction) and answers with the certificate in
# the other annotation (the certificate is public; the key never leaves the node).
SERVING_CSR_ANNOTATION = "podnet.io/kubelet-serving-csr"
SERVING_CERT_ANNOTATION = "podnet.io/kubelet-serving-cert"
