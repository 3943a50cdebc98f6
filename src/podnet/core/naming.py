"""Names of everything podnet creates in the kernel, derived from the cluster and node/pod names.

Network namespace names may be long (they are files under /run/netns); link
names are at most 15 characters (IFNAMSIZ - 1), so they are built from a
short prefix and a hash. Every function here is pure: the same inputs always
give the same name, in every process of the cluster.
"""

from __future__ import annotations

import hashlib
import re

IFNAME_MAX = 15
NETNS_PREFIX = "pn-"

# Inside a node's network namespace the link to the node network is always `eth0`.
NODE_UPLINK_IF = "eth0"
# Inside a pod's network namespace the link to its node is always `eth0`.
POD_IF = "eth0"
# The link-local gateway every pod routes through (proxy-ARP answers for it on the node side).
POD_GATEWAY = "169.254.1.1"

_CLUSTER_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CLUSTER_NAME_MAX = 32


def short_hash(*parts: str, length: int = 8) -> str:
    """A stable hex digest of `parts` (joined with '/'), `length` characters long."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def validate_cluster_name(name: str) -> str | None:
    """None when `name` is a usable cluster name, else a message saying what is allowed."""
    if not name:
        return "cluster name must not be empty"
    if len(name) > CLUSTER_NAME_MAX:
        return f"cluster name {name!r} is too long: must be no more than {CLUSTER_NAME_MAX} characters"
    if not _CLUSTER_NAME_RE.match(name):
        return (f"cluster name {name!r} is invalid: must consist of lower case alphanumeric characters "
                "or '-', start with a letter and end with an alphanumeric character (e.g. 'demo' or 'lab-2')")
    return None


# ---- nodes -------------------------------------------------------------------
def node_name(cluster: str, index: int) -> str:
    """The Kubernetes Node name of the `index`-th node (1-based): `<cluster>-node-<index>`, like kind's."""
    return f"{cluster}-node-{index}"


def node_netns(cluster: str, node: str) -> str:
    """The network namespace of a node: `pn-<cluster>-<node>`, the node's cluster prefix not repeated."""
    short = node[len(cluster) + 1:] if node.startswith(cluster + "-") else node
    return f"{NETNS_PREFIX}{cluster}-{short}"


def node_host_if(cluster: str, node: str) -> str:
    """The host-namespace end of a node's veth (a port of the cluster bridge)."""
    return f"pnn{short_hash(cluster, node, length=11)}"


# ---- pods --------------------------------------------------------------------
def pod_netns(cluster: str, pod_uid: str) -> str:
    """The network namespace of a pod: `pn-<cluster>-pod-<uid>`."""
    return f"{NETNS_PREFIX}{cluster}-pod-{pod_uid}"


def pod_host_if(pod_uid: str) -> str:
    """The node-side end of a pod's veth (inside the node's namespace)."""
    return f"pnp{short_hash(pod_uid, length=11)}"


# ---- cluster-wide links --------------------------------------------------------
def bridge_name(cluster: str) -> str:
    """The cluster's bridge in the host namespace (the node network)."""
    return f"pnbr{short_hash(cluster, length=10)}"


def cluster_vni(cluster: str) -> int:
    """A VXLAN network identifier derived from the cluster name (1..16777215)."""
    return int(short_hash(cluster, "vni", length=6), 16) % 0xFFFFFE + 1


def route_metric(cluster: str) -> int:
    """The metric of the cluster's `unreachable` guard routes in the host namespace.

    Different per cluster, so two clusters with the same pod/service CIDR do not collide.
    """
    return 3000 + int(short_hash(cluster, "metric", length=6), 16) % 60000
