"""A cluster's settings: names, address plan, ports. Plain data, no I/O.

Saved as `config.json` in the cluster's state directory; every process of the
cluster (control plane, agents, CLI) reads it from there.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from podnet.core import naming

DEFAULT_STATE_ROOT = Path(os.environ.get("PODNET_STATE_ROOT", "/var/lib/podnet"))


def state_root() -> Path:
    return Path(os.environ.get("PODNET_STATE_ROOT", str(DEFAULT_STATE_ROOT)))


def make_private_dir(path: Path) -> None:
    """Create `path` (and parents) and make it 0700: only root may enter a state directory."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically; the file is 0600 from the moment it exists."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


# Defaults, in one place: ClusterConfig, `podnet up`'s options and its --help text all use these.
DEFAULT_NAME = "podnet"
DEFAULT_NODES = 3
DEFAULT_NETWORK = "host-gw"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_NODE_CIDR_MASK = 24
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORT_RANGE = "30000-32767"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_KUBELET_PORT = 10250
"""The port of a node's kubelet-style endpoint (logs, exec), as the kubelet's."""
DEFAULT_NODE_GRACE_SECONDS = 20.0
"""How long a node may miss heartbeats before the node lifecycle controller marks it NotReady."""


@dataclass
class ClusterConfig:
    name: str = DEFAULT_NAME
    nodes: int = DEFAULT_NODES
    network: str = DEFAULT_NETWORK  # or "vxlan"
    pod_cidr: str = DEFAULT_POD_CIDR
    node_cidr_mask: int = DEFAULT_NODE_CIDR_MASK  # each node's podCIDR prefix length
    service_cidr: str = DEFAULT_SERVICE_CIDR
    node_network: str = ""  # the bridge's /24, chosen at `up` time when empty
    node_port_range: str = DEFAULT_NODE_PORT_RANGE
    lb_pool: str = ""  # e.g. "172.31.5.200-172.31.5.250"; "" = chosen on the node network; "none" = no pool
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    api_port: int = 0  # chosen at `up` time when 0
    api_listen: str = "127.0.0.1"
    listen: str = ""  # "ADDR:PORT" (`podnet up --listen`): the API also serves other machines there
    token: str = ""
    store: str = "sqlite"
    node_grace_seconds: float = DEFAULT_NODE_GRACE_SECONDS  # `podnet up --node-grace`
    audit_log: str = ""  # `podnet up --audit-log PATH`: the API server's audit log ("" = none)
    dns: bool = True  # run the cluster DNS Deployment (the kube-dns Service exists either way)
    dns_replicas: int = 1
    dns_upstream: str = "none"  # where the DNS pods forward names outside the cluster domain
    max_pods: int = 110  # each node's allocatable pods (the kubelet's maxPods), `podnet up --max-pods`
    images: str = "auto"  # `podnet up --images`: auto | real | builtin
    insecure_registries: list[str] = field(default_factory=list)  # plain HTTP / unverified TLS allowed
    image_pull_timeout: float = 120.0

    # --- derived values -------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return state_root() / "clusters" / self.name

    @property
    def host_ip(self) -> str:
        """The host's address on the node network (its first address; "" before one is chosen)."""
        return str(ipaddress.IPv4Network(self.node_network)[1]) if self.node_network else ""

    @property
    def bridge(self) -> str:
        """The host bridge of the node network."""
        return naming.bridge_name(self.name)

    @property
    def vni(self) -> int:
        """The VXLAN network identifier of the cluster's overlay (`--network vxlan`)."""
        return naming.cluster_vni(self.name)

    @property
    def route_metric(self) -> int:
        """The metric of the routes podnet adds in the host for this cluster."""
        return naming.route_metric(self.name)

    @property
    def dns_ip(self) -> str:
        net = ipaddress.ip_network(self.service_cidr)
        return str(net.network_address + 10)

    @property
    def kubernetes_service_ip(self) -> str:
        net = ipaddress.ip_network(self.service_cidr)
        return str(net.network_address + 1)

    @property
    def api_advertise(self) -> tuple[str, int]:
        """kube-apiserver's --advertise-address and secure port: the address every node reaches the API at,
        which the `kubernetes` Service's endpoints carry. The `--listen` address when the API serves other
        machines (`podnet join`), else the host's address on the node network ("" before one is chosen)."""
        if self.listen:
            addr, _, port = self.listen.rpartition(":")
            return addr, int(port)
        return self.host_ip, self.api_port

    def node_port_bounds(self) -> tuple[int, int]:
        lo, _, hi = self.node_port_range.partition("-")
        return int(lo), int(hi)

    @property
    def api_url(self) -> str:
        """The API over TCP: always TLS (kubectl sends bearer tokens only over https)."""
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        """The cluster's own CA (created by the control plane on first start)."""
        return self.state_dir / "ca.crt"

    @property
    def token_file(self) -> Path:
        """The admin token alone (0600), for the cluster's own processes (`--token-file`)."""
        return self.state_dir / "token"

    def node_token_file(self, node: str) -> Path:
        """The credential of `podnet up`'s agent for `node` (`<token>:<node>`, 0600): the agent acts as
        `system:node:<node>`, not as the admin."""
        return self.state_dir / "nodes" / node / "token"

    @property
    def api_socket(self) -> Path:
        """Unix socket of the API server: reachable from every network namespace on this machine."""
        return self.state_dir / "api.sock"

    # --- persistence ----------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClusterConfig:
        data = json.loads(text)
        legacy = data.get("extra")  # config.json written before the fields were typed
        if isinstance(legacy, dict):
            for old, new in _LEGACY_KEYS.items():
                if old in legacy and new not in data:
                    data[new] = legacy[old]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self) -> None:
        """config.json (0600) in the state directory (0700); with a token, also `token` (0600)."""
        make_private_dir(self.state_dir)
        write_private(self.state_dir / "config.json", self.to_json())
        if self.token:
            write_private(self.token_file, self.token + "\n")

    @classmethod
    def load(cls, name: str) -> ClusterConfig:
        path = state_root() / "clusters" / name / "config.json"
        return cls.from_json(path.read_text())


_LEGACY_KEYS = {"listen": "listen", "node_monitor_grace_seconds": "node_grace_seconds", "dns": "dns",
                "dns_replicas": "dns_replicas", "dns_upstream": "dns_upstream"}
