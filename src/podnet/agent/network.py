"""The pod network as the pod runtime sees it: give a pod an IP and a wired namespace, take them back.

`CniPodNetwork` wires podnet.net (IPAM, cni) for real; `PodNetwork` is the seam unit tests
replace. Network calls are blocking netlink work: the runtime calls them in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from podnet.core import naming
from podnet.core.journal import Journal as ClusterJournal
from podnet.net import cni
from podnet.net.ipam import Ipam
from podnet.net.ops import NetOps

log = logging.getLogger(__name__)
T = TypeVar("T")

# pyroute2 sockets are neither thread-safe nor usable on a thread running an event loop:
# every netlink call of the agent runs on this one thread, one at a time.
_NETLINK = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netlink")


async def in_netlink_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_NETLINK, functools.partial(fn, *args, **kwargs))


class PodNetwork(Protocol):
    def setup(self, pod_uid: str) -> str:
        """Create (or find) the pod's namespace and veth; return its IP. Idempotent per pod uid."""

    def teardown(self, pod_uid: str) -> None:
        """Remove the pod's veth and namespace and release its IP. Idempotent."""

    def netns_name(self, pod_uid: str) -> str: ...

    def netns_path(self, pod_uid: str) -> str: ...


class Journal(Protocol):
    def record(self, kind: str, name: str, **attrs: object) -> None: ...
    def forget(self, kind: str, name: str) -> None: ...


class NullJournal:
    def record(self, kind: str, name: str, **attrs: object) -> None:
        pass

    def forget(self, kind: str, name: str) -> None:
        pass


def make_journal(state_dir: Path) -> Journal:
    j: Journal = ClusterJournal(state_dir)
    return j


class CniPodNetwork:
    def __init__(self, ops: NetOps, *, cluster: str, pod_cidr: str, ipam_file: Path, journal: Journal,
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
