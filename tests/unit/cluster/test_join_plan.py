"""`podnet join` without a kernel: argument checks, the CA hash, trust on first use against a real TLS
API server (aiohttp, loopback) serving cluster-info, and the join token check."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from podnet.api.auth import JoinTokens, node_authorizer
from podnet.api.server import APIServer
from podnet.cluster.join import (
    JoinError,
    JoinOptions,
    ca_cert_hash,
    cluster_info_configmap,
    join_command,
    parse_listen,
    plan_join,
    write_state,
)
from podnet.core.config import ClusterConfig
from podnet.core.tls import ensure_ca_and_cert, server_ssl_context
from podnet.model.kinds import CONFIGMAPS
from podnet.store.memory import MemoryStore


def test_parse_listen_names_the_flag_and_what_is_allowed() -> None:
    assert parse_listen("192.168.7.1") == ("192.168.7.1", 6443)
    assert parse_listen("192.168.7.1:7000") == ("192.168.7.1", 7000)
    for bad, why in (("myhost:80", "must be an IPv4 address"), ("0.0.0.0", "not 0.0.0.0 or a loopback"),
                     ("127.0.0.1:6443", "not 0.0.0.0 or a loopback"),
                     ("10.1.1.1:99999", "between 1 and 65535")):
        with pytest.raises(ValueError) as e:
            parse_listen(bad)
        assert str(e.value).startswith(f'invalid --listen "{bad}"') and why in str(e.value)


def test_ca_cert_hash_is_sha256_of_the_public_key_info(tmp_path: Path) -> None:
    ca, _, _ = ensure_ca_and_cert(tmp_path, ["10.0.0.1"])
    pem = ca.read_bytes()
    spki = x509.load_pem_x509_certificate(pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ca_cert_hash(pem) == "sha256:" + hashlib.sha256(spki).hexdigest()


def test_join_command_needs_a_listen_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODNET_STATE_ROOT", str(tmp_path))
    cfg = ClusterConfig(name="lab")
    ensure_ca_and_cert(cfg.state_dir, [])
    with pytest.raises(JoinError, match="does not listen for other machines"):
        join_command(cfg, "abcdef.0123456789abcdef")
    cfg.listen = "10.9.9.9:6443"
    cmd = join_command(cfg, "abcdef.0123456789abcdef")
    assert cmd == ("podnet join --server https://10.9.9.9:6443 --token abcdef.0123456789abcdef "
                   f"--ca-cert-hash {ca_cert_hash(cfg.ca_file.read_bytes())}")


class TLSServer:
    """A podnet API server on https://127.0.0.1:<port> in a thread, with cluster-info published."""

    def __init__(self, state: Path):
        self.state = state
        self.cfg = ClusterConfig(name="lab", network="vxlan")
        self.ca, crt, key = ensure_ca_and_cert(state, ["127.0.0.1"])
        self.ctx = server_ssl_context(crt, key)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.server = APIServer(MemoryStore(), tokens=["admin"])
        self.server.authorizer = node_authorizer(self.state, self.server.registry)
        await self.server.bootstrap()
        cm = cluster_info_configmap(self.cfg, self.ca.read_text())
        await self.server.registry.create(CONFIGMAPS, "kube-public", cm)
        self.port = await self.server.start("127.0.0.1", 0, ssl_context=self.ctx)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TLSServer]:
    srv = TLSServer(tmp_path / "cp")
    srv.thread.start()
    assert srv.ready.wait(10)
    try:
        yield srv
    finally:
        srv.stop()


def _opts(srv: TLSServer, token: str, tmp: Path, **kw: str) -> JoinOptions:
    return JoinOptions(server=f"https://127.0.0.1:{srv.port}", token=token, node_name="m1",
                       node_ip="127.0.0.1", state_dir=str(tmp / "m1"), **kw)  # type: ignore[arg-type]


def test_plan_trusts_the_ca_by_hash_and_reads_the_cluster_settings(tls_server: TLSServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("podnet.cluster.join._check_forwarding", lambda: None)
    token = JoinTokens(tls_server.state).create()
    digest = ca_cert_hash(tls_server.ca.read_bytes())
    plan = plan_join(_opts(tls_server, token, tmp_path, ca_cert_hash=digest))
    assert plan.config.name == "lab" and plan.config.network == "vxlan" and plan.config.lb_pool == "none"
    assert plan.ca_pem == tls_server.ca.read_bytes()
    assert plan.credential == f"{token}:m1"
    argv = plan.agent_argv()
    assert "--token" not in argv and not any(token in a for a in argv)  # no secret on a command line
    assert argv[argv.index("--token-file") + 1] == str(tmp_path / "m1" / "token")
    assert plan.agent_env()["SSL_CERT_FILE"] == str(tmp_path / "m1" / "ca.crt")
    assert json.loads(plan.config.to_json())["token"] == ""  # no secret in the node's config.json
    write_state(plan)
    d = tmp_path / "m1"
    assert oct(d.stat().st_mode & 0o777) == oct(0o700)
    assert (d / "token").read_text().strip() == f"{token}:m1"
    assert {f: oct((d / f).stat().st_mode & 0o777) for f in ("token", "config.json")} == \
        {"token": oct(0o600), "config.json": oct(0o600)}


def test_plan_refuses_a_wrong_hash_a_bad_token_and_a_revoked_token(tls_server: TLSServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("podnet.cluster.join._check_forwarding", lambda: None)
    tokens = JoinTokens(tls_server.state)
    token = tokens.create()
    good = ca_cert_hash(tls_server.ca.read_bytes())
    wrong = "sha256:" + "ab" * 32
    with pytest.raises(JoinError) as e:
        plan_join(_opts(tls_server, token, tmp_path, ca_cert_hash=wrong))
    assert str(e.value) == (f"the cluster CA's public key hash is {good}, not the --ca-cert-hash {wrong}: "
                            "refusing to trust this server")
    with pytest.raises(JoinError, match=r'invalid --token "nope": must look like abcdef\.0123456789abcdef'):
        plan_join(_opts(tls_server, "nope", tmp_path, ca_cert_hash=good))
    tokens.revoke(token)
    with pytest.raises(JoinError, match=r"rejected the join token \(401 Unauthorized\)"):
        plan_join(_opts(tls_server, token, tmp_path, ca_cert_hash=good))


def test_plan_with_a_ca_file_of_another_cluster_fails_verification(tls_server: TLSServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("podnet.cluster.join._check_forwarding", lambda: None)
    other, _, _ = ensure_ca_and_cert(tmp_path / "other", [])
    token = JoinTokens(tls_server.state).create()
    with pytest.raises(JoinError, match="did not prove it holds the cluster CA's certificate"):
        plan_join(_opts(tls_server, token, tmp_path, ca_file=str(other)))
    plan = plan_join(_opts(tls_server, token, tmp_path, ca_file=str(tls_server.ca)))
    assert plan.config.name == "lab"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("server", "http://10.0.0.1:6443", 'invalid --server "http://10.0.0.1:6443": must be https://HOST:PORT'),
    ("node_name", "Bad_Name", 'invalid node name "bad_name" (--node-name)'),
    ("network", "flannel", 'invalid --network "flannel": must be host-gw or vxlan'),
    ("node_ip", "10.255.255.254", "--node-ip 10.255.255.254 is not an address of this machine"),
    ("ca_cert_hash", "sha256:00", 'invalid --ca-cert-hash "sha256:00": must be sha256: followed by 64 hex'),
    ("ca_cert_hash", "", "say how to trust the server: --ca-cert-hash sha256:<hex>"),
])
def test_plan_checks_arguments_before_talking_to_anyone(field: str, value: str, message: str) -> None:
    opts = JoinOptions(server="https://127.0.0.1:1", token="abcdef.0123456789abcdef", node_name="m1",
                       node_ip="127.0.0.1", ca_cert_hash="sha256:" + "0" * 64)
    setattr(opts, field, value)
    with pytest.raises(JoinError) as e:
        plan_join(opts)
    assert message in str(e.value)
