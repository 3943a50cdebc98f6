"""Machines joining a cluster over TLS (`podnet join`), and leaving it (`podnet leave`).

The control plane publishes `kube-public/cluster-info` (as kubeadm does): the cluster CA and the
cluster's public settings, readable without a token. `podnet join`:

1. fetches cluster-info without trusting the server yet, and accepts its CA only if the SHA-256 of
   the CA's public key matches `--ca-cert-hash sha256:...` (or uses `--ca-file`);
2. from then on talks TLS verified against that CA; checks the join token (`<token>:<node>`, see
   podnet.api.auth) and writes a state directory: config.json, ca.crt, join.json, journal;
3. runs the node agent in this network namespace, its PID in the state directory's journal, watched by
   a supervisor that restarts it with back-off when it dies: in the foreground `podnet join` becomes
   that supervisor (exec of `podnet supervise --state-dir DIR --foreground`: the agent's log on the
   terminal, Ctrl-C stops both), with `--background` it starts a detached `podnet supervise --state-dir`;
   the agent registers the Node and the control plane's node IPAM gives it a podCIDR.

`podnet leave` stops the supervisor first, then what join started, and removes what the agent made
here (pod namespaces, the VXLAN link, podnet's routes and nft table), all recorded in the state
directory's journal.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from podnet.api.auth import CLUSTER_INFO_NAME, CLUSTER_INFO_NS, TOKEN_RE, node_credential
from podnet.cluster.procs import Started, is_same_process, start_process, stop_processes
from podnet.cluster.supervise import SUPERVISOR, stop_supervisor, supervised, supervisor_alive
from podnet.core import journal as jr
from podnet.core.config import (
    DEFAULT_KUBELET_PORT,
    ClusterConfig,
    make_private_dir,
    state_root,
    write_private,
)
from podnet.model.kinds import Obj

CLUSTER_INFO_PATH = f"/api/v1/namespaces/{CLUSTER_INFO_NS}/configmaps/{CLUSTER_INFO_NAME}"
JOIN_FILE = "join.json"
PUBLIC_SETTINGS = ("name", "network", "pod_cidr", "node_cidr_mask", "service_cidr", "cluster_domain",
                   "node_port_range")
_NODE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class JoinError(Exception):
    """Joining (or leaving) failed; the message says why and what to do."""


# ---- the CA and cluster-info (control-plane side) --------------------------------------------------
def ca_cert_hash(ca_pem: bytes) -> str:
    """kubeadm's `--discovery-token-ca-cert-hash`: sha256 of the CA's DER SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def public_settings(cfg: ClusterConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in PUBLIC_SETTINGS}


def cluster_info_configmap(cfg: ClusterConfig, ca_pem: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CLUSTER_INFO_NAME, "namespace": CLUSTER_INFO_NS},
            "data": {"ca.crt": ca_pem, "podnet.json": json.dumps(public_settings(cfg), sort_keys=True)}}


async def publish_cluster_info(client: Any, cfg: ClusterConfig) -> None:
    """Create or refresh `kube-public/cluster-info` through the API (client: podnet ApiClient)."""
    from podnet.client.client import ApiError
    from podnet.model.kinds import CONFIGMAPS

    cm = cluster_info_configmap(cfg, cfg.ca_file.read_text())
    try:
        await client.create(CONFIGMAPS, cm, CLUSTER_INFO_NS)
    except ApiError as e:
        if e.code != 409:
            raise
        current = await client.get(CONFIGMAPS, CLUSTER_INFO_NAME, CLUSTER_INFO_NS)
        if current.get("data") != cm["data"]:
            current["data"] = cm["data"]
            await client.update(CONFIGMAPS, current)


def parse_listen(text: str, default_port: int = 6443) -> tuple[str, int]:
    """`ADDR[:PORT]` -> (addr, port); ValueError naming --listen and what is allowed."""
    addr, sep, port_s = text.strip().rpartition(":")
    if not sep:
        addr, port_s = text.strip(), str(default_port)
    try:
        ip = ipaddress.IPv4Address(addr)
    except ValueError:
        raise ValueError(f'invalid --listen "{text}": must be an IPv4 address of this machine, optionally '
                         f"with :PORT (e.g. 192.168.1.10:6443)") from None
    if ip.is_unspecified or ip.is_loopback:
        raise ValueError(f'invalid --listen "{text}": must be an address other machines can reach, '
                         "not 0.0.0.0 or a loopback address")
    if not port_s.isdigit() or not 1 <= int(port_s) <= 65535:
        raise ValueError(f'invalid --listen "{text}": the port must be a number between 1 and 65535')
    return str(ip), int(port_s)


def join_command(cfg: ClusterConfig, token: str) -> str:
    if not cfg.listen:
        raise JoinError(f'cluster "{cfg.name}" does not listen for other machines: create it with '
                        "`podnet up --listen ADDR[:PORT]`")
    digest = ca_cert_hash(cfg.ca_file.read_bytes())
    return f"podnet join --server https://{cfg.listen} --token {token} --ca-cert-hash {digest}"


# ---- join (machine side) ---------------------------------------------------------------------------
@dataclass
class JoinOptions:
    server: str
    token: str
    ca_cert_hash: str = ""
    ca_file: str = ""
    node_name: str = ""
    node_ip: str = ""
    state_dir: str = ""
    network: str = ""
    kubelet_port: int = DEFAULT_KUBELET_PORT
    background: bool = False
    wait_timeout: float = 60.0


@dataclass
class JoinPlan:
    server: str
    node_name: str
    node_ip: str
    credential: str
    state_dir: Path
    config: ClusterConfig
    ca_pem: bytes
    kubelet_port: int = DEFAULT_KUBELET_PORT

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "ca.crt"

    @property
    def token_file(self) -> Path:
        """The node credential (0600), handed to the agent with --token-file, never on its command line."""
        return self.state_dir / "token"

    def agent_argv(self) -> list[str]:
        return [sys.executable, "-m", "podnet.cli.main", "agent", "--name", self.config.name,
                "--node-name", self.node_name, "--node-ip", self.node_ip, "--server", self.server,
                "--token-file", str(self.token_file), "--state-dir", str(self.state_dir),
                "--kubelet-port", str(self.kubelet_port)]

    def agent_env(self) -> dict[str, str]:
        # The agent's API client trusts the default CA store; point it at the cluster CA only. It needs
        # no join token (its credential is in token_file).
        env = dict(os.environ, SSL_CERT_FILE=str(self.ca_path), PODNET_HOST_MOUNT_NS="/proc/self/ns/mnt")
        env.pop("PODNET_JOIN_TOKEN", None)
        return env


def _ssl(ca_pem: bytes | None) -> ssl.SSLContext:
    if ca_pem is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cadata=ca_pem.decode())


def _get(server: str, path: str, ctx: ssl.SSLContext, token: str = "",
         timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(server.rstrip("/") + path, headers={"Accept": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # the server the user named
            return int(resp.status), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            body = json.loads(e.read() or b"{}")
        except ValueError:
            body = {}
        return int(e.code), body if isinstance(body, dict) else {}
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise JoinError(f"the server {server} did not prove it holds the cluster CA's certificate: "
                            f"{reason.verify_message or reason}") from None
        raise JoinError(f"cannot reach the API server {server}: {reason}") from None


def _check_server_url(server: str) -> str:
    u = urllib.parse.urlsplit(server)
    if u.scheme != "https" or not u.hostname or u.path not in ("", "/"):
        raise JoinError(f'invalid --server "{server}": must be https://HOST:PORT (the address `podnet up '
                        '--listen` printed)')
    return f"https://{u.netloc}"


def fetch_ca(server: str, ca_cert_hash_arg: str, ca_file: str) -> bytes:
    """The cluster CA (PEM), verified against --ca-file or --ca-cert-hash."""
    if ca_file:
        try:
            pem = Path(ca_file).read_bytes()
            x509.load_pem_x509_certificate(pem)
        except OSError as e:
            raise JoinError(f"cannot read --ca-file {ca_file}: {e.strerror}") from None
        except ValueError:
            raise JoinError(f"--ca-file {ca_file} is not a PEM certificate") from None
        return pem
    if not ca_cert_hash_arg:
        raise JoinError("say how to trust the server: --ca-cert-hash sha256:<hex> (printed by `podnet up "
                        "--listen`) or --ca-file <the cluster's ca.crt>")
    want = ca_cert_hash_arg.strip().lower()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", want):
        raise JoinError(f'invalid --ca-cert-hash "{ca_cert_hash_arg}": must be sha256: followed by 64 hex '
                        "digits")
    code, body = _get(server, CLUSTER_INFO_PATH, _ssl(None))
    if code != 200:
        raise JoinError(f"the server {server} does not publish {CLUSTER_INFO_NS}/{CLUSTER_INFO_NAME} "
                        f"({code} {body.get('message', '')}): is it a podnet control plane?")
    pem = str((body.get("data") or {}).get("ca.crt", "")).encode()
    try:
        have = ca_cert_hash(pem)
    except ValueError:
        raise JoinError(f"the server {server} published no valid CA certificate in cluster-info") from None
    if have != want:
        raise JoinError(f"the cluster CA's public key hash is {have}, not the --ca-cert-hash {want}: "
                        "refusing to trust this server")
    return pem


def _default_node_ip(server: str) -> str:
    u = urllib.parse.urlsplit(server)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((u.hostname or "", u.port or 443))  # UDP connect sends nothing: it picks a route
            return str(s.getsockname()[0])
    except OSError as e:
        raise JoinError(f"no route to the API server {server} from this machine ({e.strerror}): "
                        "give --node-ip") from None


def _check_local_ip(ip: str) -> None:
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise JoinError(f'invalid --node-ip "{ip}": must be an IPv4 address of this machine') from None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
    except OSError:
        raise JoinError(f"--node-ip {ip} is not an address of this machine (its network namespace): "
                        "choose one its links hold") from None


def _check_forwarding() -> None:
    try:
        value = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    except OSError:
        return
    if value != "1":
        raise JoinError("IP forwarding is off on this machine (net.ipv4.ip_forward = 0), so its pods could "
                        "not reach other nodes: enable it with `sysctl -w net.ipv4.ip_forward=1`")


def plan_join(opts: JoinOptions) -> JoinPlan:
    """Check everything and talk to the server (read-only); nothing is written yet."""
    server = _check_server_url(opts.server)
    if not TOKEN_RE.match(opts.token.strip()):
        raise JoinError(f'invalid --token "{opts.token}": must look like abcdef.0123456789abcdef '
                        "(see `podnet token create`)")
    node = (opts.node_name or socket.gethostname()).lower()
    if len(node) > 253 or not _NODE_NAME_RE.match(node):
        raise JoinError(f'invalid node name "{node}" (--node-name): must be a lowercase RFC 1123 subdomain '
                        "(letters, digits, '-' and '.')")
    if opts.network and opts.network not in ("host-gw", "vxlan"):
        raise JoinError(f'invalid --network "{opts.network}": must be host-gw or vxlan')
    if not 1 <= opts.kubelet_port <= 65535:
        raise JoinError(f"invalid --kubelet-port {opts.kubelet_port}: must be 1-65535")
    if opts.ca_cert_hash and not re.fullmatch(r"sha256:[0-9a-f]{64}", opts.ca_cert_hash.strip().lower()):
        raise JoinError(f'invalid --ca-cert-hash "{opts.ca_cert_hash}": must be sha256: followed by 64 hex '
                        "digits")
    if not opts.ca_cert_hash and not opts.ca_file:
        raise JoinError("say how to trust the server: --ca-cert-hash sha256:<hex> (printed by `podnet up "
                        "--listen`) or --ca-file <the cluster's ca.crt>")
    node_ip = opts.node_ip or _default_node_ip(server)
    _check_local_ip(node_ip)
    _check_forwarding()
    ca_pem = fetch_ca(server, opts.ca_cert_hash, opts.ca_file)
    verified = _ssl(ca_pem)
    code, body = _get(server, CLUSTER_INFO_PATH, verified)
    if code != 200:
        raise JoinError(f"cannot read cluster-info from {server}: {code} {body.get('message', '')}")
    try:
        settings = json.loads((body.get("data") or {}).get("podnet.json", "{}"))
    except ValueError:
        settings = {}
    if not settings.get("name"):
        raise JoinError(f"the cluster-info at {server} names no cluster: is it a podnet control plane?")
    cfg = ClusterConfig(**{k: settings[k] for k in PUBLIC_SETTINGS if k in settings})
    cfg.nodes, cfg.lb_pool, cfg.token = 0, "none", ""
    if opts.network:
        cfg.network = opts.network
    credential = node_credential(opts.token.strip(), node)
    code, body = _get(server, f"/api/v1/nodes/{node}", verified, token=credential)
    if code == 401:
        raise JoinError("the API server rejected the join token (401 Unauthorized): it is unknown, revoked "
                        "or expired; create a new one with `podnet token create` on the control plane")
    if code not in (200, 404):
        raise JoinError(f"the API server refused node {node}: {code} {body.get('message', '')}")
    state_dir = Path(opts.state_dir) if opts.state_dir else state_root() / "joined" / cfg.name
    return JoinPlan(server=server, node_name=node, node_ip=node_ip, credential=credential,
                    state_dir=state_dir, config=cfg, ca_pem=ca_pem, kubelet_port=opts.kubelet_port)


def running_agent(state_dir: Path) -> jr.JournalEntry | None:
    for e in jr.Journal(state_dir).entries(jr.PROCESS):
        if e.name.startswith("agent-"):
            pid, st = e.attrs.get("pid"), e.attrs.get("starttime")
            if isinstance(pid, int) and is_same_process(pid, st if isinstance(st, int) else None):
                return e
    return None


def write_state(plan: JoinPlan) -> jr.Journal:
    d = plan.state_dir
    if running_agent(d) is not None:
        raise JoinError(f"this machine already runs an agent from {d}: run `podnet leave --state-dir {d}` "
                        "first")
    make_private_dir(d)
    plan.ca_path.write_bytes(plan.ca_pem)
    write_private(d / "config.json", plan.config.to_json())
    write_private(plan.token_file, plan.credential + "\n")
    info = {"server": plan.server, "cluster": plan.config.name, "node": plan.node_name,
            "nodeIP": plan.node_ip, "joined": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (d / JOIN_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
    journal = jr.Journal(d)
    # what the agent makes in this namespace without journaling it itself
    from podnet.net.nodenet import VXLAN_IF
    from podnet.policy import render as policy_render
    from podnet.proxy.render import FAMILY, TABLE

    journal.record(jr.NFT, f"{FAMILY} {TABLE}", netns=None)
    journal.record(jr.NFT, f"{policy_render.FAMILY} {policy_render.TABLE}", netns=None)
    journal.record(jr.LINK, VXLAN_IF, netns=None)
    journal.record("podroutes", plan.config.pod_cidr, netns=None)
    _link_joined(d, f"{plan.config.name}@{plan.node_name}")
    return journal


def joined_root() -> Path:
    """`$PODNET_STATE_ROOT/joined`: the default state directories of joined nodes, and links to the
    others (`--state-dir` elsewhere), so that `podnet list` finds every node this machine runs."""
    return state_root() / "joined"


def _link_joined(state_dir: Path, name: str) -> None:
    root = joined_root()
    if state_dir.resolve().parent == root.resolve():
        return
    make_private_dir(root)
    link = root / name
    if link.is_symlink():
        link.unlink()
    if not link.exists():
        link.symlink_to(state_dir.resolve())


def _unlink_joined(state_dir: Path) -> None:
    root = joined_root()
    for link in root.glob("*") if root.is_dir() else []:
        if link.is_symlink() and Path(os.readlink(link)) == state_dir:
            link.unlink()


def _node_ready(plan: JoinPlan) -> tuple[bool, str]:
    code, body = _get(plan.server, f"/api/v1/nodes/{plan.node_name}", _ssl(plan.ca_pem),
                      token=plan.credential, timeout=5)
    if code != 200:
        return False, f"{code} {body.get('message', '')}"
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True", f"Ready={c.get('status')} ({c.get('message', '')})"
    return False, "no Ready condition yet"


def start_background(plan: JoinPlan, timeout: float,
                     progress: Callable[[str], None] | None = None) -> Started:
    """Start the agent detached (PID in the journal) and wait until the Node is Ready."""
    journal = write_state(plan)
    log = plan.state_dir / "logs" / "agent.log"
    env = plan.agent_env()
    proc = start_process(journal, f"agent-{plan.node_name}", plan.agent_argv(), log, env=env)
    # the supervisor restarts the agent with its own environment (the agent's), as recorded
    start_process(journal, SUPERVISOR, [sys.executable, "-m", "podnet.cli.main", "supervise", "--state-dir",
                                        str(plan.state_dir)], plan.state_dir / "logs" / "supervisor.log",
                  env=env)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not is_same_process(proc.pid, proc.starttime):
            raise JoinError(f"the agent exited; its log ({log}):\n{_tail(log)}")
        try:
            ok, last = _node_ready(plan)
        except JoinError as e:
            ok, last = False, str(e)
        if progress is not None:
            progress(last)
        if ok:
            return proc
        time.sleep(0.3)
    raise JoinError(f"node {plan.node_name} not Ready within {timeout:.0f}s (last: {last}); the agent "
                    f"keeps running (log {log}); `podnet leave --state-dir {plan.state_dir}` removes it")


def exec_foreground(plan: JoinPlan) -> None:
    """A foreground `podnet join`: become (same PID) `podnet supervise --state-dir DIR --foreground`, the
    agent's supervisor in the foreground (podnet.cluster.supervise.run_joined_supervisor), with the
    agent's environment and without the join token on the command line or in the environment."""
    journal = write_state(plan)
    journal.record(jr.PROCESS, f"agent-{plan.node_name}", argv=plan.agent_argv(),
                   log=str(plan.state_dir / "logs" / "agent.log"))
    argv = [sys.executable, "-m", "podnet.cli.main", "supervise", "--state-dir", str(plan.state_dir),
            "--foreground"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, plan.agent_env())


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join("    " + t for t in path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "    (no log)"


# ---- leave ------------------------------------------------------------------------------------------
@dataclass
class LeaveReport:
    processes: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    node: str = ""


def leave(state_dir: Path, ops: Any) -> LeaveReport:
    """Stop the agent and its pods, remove what the journal in `state_dir` records, then `state_dir`."""
    from podnet.net.ops import PROTO_PODNET_NODE, NetOpsError, NotFoundError

    if not (state_dir / JOIN_FILE).exists():
        raise JoinError(f"{state_dir} holds no joined node ({JOIN_FILE} is missing): nothing to leave")
    state_dir = state_dir.resolve()  # also when named through its link in joined_root()
    rep = LeaveReport()
    try:
        rep.node = str(json.loads((state_dir / JOIN_FILE).read_text()).get("node", ""))
    except (OSError, ValueError):
        pass
    stop_supervisor(jr.Journal(state_dir))  # first: it would restart the agent stopped below
    entries = jr.Journal(state_dir).entries()  # read after: the supervisor may have restarted it
    procs, agents = [], []
    for e in entries:
        pid, st = e.attrs.get("pid"), e.attrs.get("starttime")
        if e.kind == jr.PROCESS and isinstance(pid, int) and pid > 1:
            procs.append((pid, st if isinstance(st, int) else None))
            if e.name.startswith("agent-"):
                agents.append(pid)
    rep.processes = stop_processes(procs, grace=5.0, wait_for=agents)
    for e in reversed([e for e in entries if e.kind == jr.NETNS]):
        try:
            if ops.netns_exists(e.name):
                ops.netns_del(e.name)
                rep.removed.append(f"namespace {e.name}")
        except (NetOpsError, OSError) as ex:
            rep.problems.append(f"namespace {e.name}: {ex}")
    for e in entries:
        if e.kind == "podroutes":
            net = ipaddress.IPv4Network(e.name)
            for r in ops.route_list():
                if r.proto != PROTO_PODNET_NODE or r.type not in ("", "unicast") or not r.dev:
                    continue
                try:
                    inside = ipaddress.IPv4Network(r.dst).subnet_of(net) or r.dst == "169.254.1.1/32"
                except (ValueError, TypeError):
                    continue
                if inside:
                    try:
                        ops.route_del(r.dst, metric=r.metric)
                        rep.removed.append(f"route {r.dst}")
                    except NotFoundError:
                        pass
                    except (NetOpsError, OSError) as ex:
                        rep.problems.append(f"route {r.dst}: {ex}")
        elif e.kind == jr.LINK and not e.attrs.get("netns"):
            try:
                if ops.link_get(e.name) is not None:
                    ops.link_del(e.name)
                    rep.removed.append(f"link {e.name}")
            except NotFoundError:
                pass
            except (NetOpsError, OSError) as ex:
                rep.problems.append(f"link {e.name}: {ex}")
        elif e.kind == jr.NFT and not e.attrs.get("netns"):
            family, _, table = e.name.partition(" ")
            r = subprocess.run(["nft", "delete", "table", family, table], capture_output=True, text=True,
                               timeout=10)
            if r.returncode == 0:
                rep.removed.append(f"nft table {e.name}")
            elif "No such file" not in r.stderr:
                rep.problems.append(f"nft table {e.name}: {r.stderr.strip()}")
    if not rep.problems:
        shutil.rmtree(state_dir, ignore_errors=True)
        _unlink_joined(state_dir)
    return rep



# ---- status -----------------------------------------------------------------------------------------
@dataclass
class JoinedStatus:
    """A joined machine's node as `podnet list` shows it (same words as for a cluster)."""

    cluster: str
    node: str
    server: str
    status: str  # running | restarting | stopped
    agent_pid: int
    supervised: bool
    state_dir: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.cluster, "joined_as": self.node, "status": self.status, "api": self.server,
                "agent_pid": self.agent_pid, "supervised": self.supervised, "state_dir": self.state_dir}


def joined_status(state_dir: Path) -> JoinedStatus:
    """running: the agent is alive; restarting: it is not, and the supervisor is bringing it back;
    stopped: neither is alive (after a reboot: `podnet join` again, or `podnet leave`)."""
    try:
        info = json.loads((state_dir / JOIN_FILE).read_text())
    except (OSError, ValueError):
        info = {}
    journal = jr.Journal(state_dir)
    agent = running_agent(state_dir)
    sup = supervisor_alive(journal)
    recorded = [e for e in journal.entries(jr.PROCESS) if supervised(e.name)]
    status = "running" if agent is not None else ("restarting" if sup and recorded else "stopped")
    pid = agent.attrs.get("pid") if agent is not None else 0
    return JoinedStatus(cluster=str(info.get("cluster") or state_dir.name), node=str(info.get("node", "")),
                        server=str(info.get("server", "")), status=status,
                        agent_pid=pid if isinstance(pid, int) else 0, supervised=sup,
                        state_dir=str(state_dir))


def list_joined() -> list[JoinedStatus]:
    """The nodes this machine runs for clusters it joined (`$PODNET_STATE_ROOT/joined/*`)."""
    return [joined_status(p.resolve()) for p in sorted(joined_root().glob("*")) if (p / JOIN_FILE).exists()]
