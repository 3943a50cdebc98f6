"""The pod network as the pod runtime sees it: give a pod an IP and a wired namespace, take them back.

`CniPodNetwork` wires podnet.net (IPAM, cni) for real; `PodNetwork` is the seam unit tests
replace. Network calls are blocking netlink work: the runtime calls them on the one netlink thread
(podnet.net.netlink_thread).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

from podnet.core import naming
from podnet.core.journal import Journal
from podnet.net import cni
from podnet.net.ipam import Ipam
from podnet.net.ops import NetOps

log = logging.getLogger(__name__)


class PodNetwork(Protocol):
    def setup(self, pod_uid: str) -> str:
        """Create (or find) the pod's namespace and veth; return its IP. Idempotent per pod uid."""

    def teardown(self, pod_uid: str) -> None:
        """Remove the pod's veth and namespace and release its IP. Idempotent."""

    def netns_name(self, pod_uid: str) -> str: ...

    def netns_path(self, pod_uid: str) -> str: ...


class JournalWriter(Protocol):
    """What the pod network writes to the cluster journal (podnet.core.journal.Journal): the namespaces
    it made, so `podnet down` can remove them after a crash."""

    def record(self, kind: str, name: str, **attrs: object) -> None: ...
    def forget(self, kind: str, name: str) -> None: ...


class NullJournal:
    def record(self, kind: str, name: str, **attrs: object) -> None:
        pass

    def forget(self, kind: str, name: str) -> None:
        pass


def make_journal(state_dir: Path) -> JournalWriter:
    j: JournalWriter = Journal(state_dir)
    return j


class CniPodNetwork:
    def __init__(self, ops: NetOps, *, cluster: str, pod_cidr: str, ipam_file: Path, journal: JournalWriter,
                 node_netns: str | None = None, mtu: int = 1500):
        self.ops = ops
        self.cluster = cluster
        self.node_netns = node_netns
        self.ipam = Ipam(ipam_file, pod_cidr)
        self.journal = journal
        self.mtu = mtu

    def netns_name(self, pod_uid: str) -> str:
        return naming.pod_netns(self.cluster, pod_uid)

    def netns_path(self, pod_uid: str) -> str:
        return os.path.join("/run/netns", self.netns_name(pod_uid))

    def setup(self, pod_uid: str) -> str:
        ip = self.ipam.allocate(pod_uid)
        ns = self.netns_name(pod_uid)
        self.journal.record("netns", ns, pod_uid=pod_uid, cluster=self.cluster)
        cni.add_pod_network(self.ops, node_netns=self.node_netns, pod_netns=ns, pod_ip=ip,
                            host_if=cni.host_if_name(pod_uid), mtu=self.mtu)
        return ip

    def teardown(self, pod_uid: str) -> None:
        ns = self.netns_name(pod_uid)
        cni.del_pod_network(self.ops, node_netns=self.node_netns, pod_netns=ns,
                            host_if=cni.host_if_name(pod_uid))
        self.journal.forget("netns", ns)
        self.ipam.release(pod_uid)
