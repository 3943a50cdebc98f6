"""The node agent: registers its Node, keeps routes to other nodes, runs the service proxy, serves the
kubelet endpoint and runs the pods bound to its node. It knows the cluster only through the API.

    podnet agent --name CLUSTER --node-name NODE --node-ip IP --server unix://.../api.sock \\
        --token-file STATE_DIR/token --state-dir STATE_DIR
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.agent import node as nodemod
from podnet.agent.events import EventRecorder
from podnet.agent.imagepull import ImageManager
from podnet.agent.kubelet_http import KubeletServer
from podnet.agent.kubelet_tls import KubeletTLSError, kubelet_server_context
from podnet.agent.launcher import Launcher, ShimLauncher, ShimServer
from podnet.agent.mountpoints import MountPointRegistry
from podnet.agent.network import CniPodNetwork, JournalWriter, PodNetwork, make_journal
from podnet.agent.nsexec import exec_in
from podnet.agent.pods import PodDeps
from podnet.agent.podstate import PodDirs
from podnet.agent.runtime import PodRuntime
from podnet.agent.volumes import MEMORY_VOLUME_ROOT, VolumeSources
from podnet.client.client import ApiClient, ApiError
from podnet.client.informer import Informer
from podnet.core import journal as jr
from podnet.core import malloc, naming
from podnet.core.config import DEFAULT_KUBELET_PORT, ClusterConfig
from podnet.core.gcfreeze import freeze_long_lived
from podnet.core.waiting import wait_event
from podnet.images.runtimes import RuntimeChoice
from podnet.model.kinds import CONFIGMAPS, ENDPOINTSLICES, NODES, PODS, SERVICES, Obj
from podnet.net.netlink_thread import in_netlink_thread
from podnet.net.ops import NetOps
from podnet.policy.runner import PolicyRunner, make_runner
from podnet.proxy.compact import compact_service, compact_slice
from podnet.proxy.health import ProxyStatusServer, node_eligible
from podnet.proxy.metrics import METRICS
from podnet.proxy.runner import ProxyInformers, run_proxy

log = logging.getLogger("podnet.agent")


@dataclass
class AgentOptions:
    cluster: str
    node_name: str
    node_ip: str
    server: str
    token: str
    state_dir: Path
    kubelet_port: int = DEFAULT_KUBELET_PORT
    heartbeat_seconds: float = 5.0
    pod_cidr_timeout: float = 120.0
    run_proxy: bool = True
    manage_routes: bool = True
    backoff_scale: float = 1.0
    config: ClusterConfig | None = None
    netops: NetOps | None = None
    launcher: Launcher | None = None
    network: PodNetwork | None = None
    real_images: bool = True  # False: only the built-in stand-ins, no image store (tests)


def load_config(opts: AgentOptions) -> ClusterConfig:
    if opts.config is not None:
        return opts.config
    path = opts.state_dir / "config.json"
    if path.exists():
        return ClusterConfig.from_json(path.read_text())
    return ClusterConfig(name=opts.cluster)


class Agent:
    def __init__(self, opts: AgentOptions):
        self.opts = opts
        self.config = load_config(opts)
        self.client = ApiClient(opts.server, opts.token)
        self.node_dir = opts.state_dir / "nodes" / opts.node_name
        self.journal: JournalWriter = make_journal(opts.state_dir)
        self.conditions = nodemod.NodeConditions()
        self.events = EventRecorder(self.client, opts.node_name)
        self.pod_cidr = ""
        self.network_ok = False
        # one informer per resource for the whole agent (the proxy and the pods' environment share
        # them), caching compact copies of Services and EndpointSlices
        self.nodes = Informer(self.client, NODES)
        self.services = Informer(self.client, SERVICES, transform=compact_service)
        self.slices = Informer(self.client, ENDPOINTSLICES, transform=compact_slice)
        self.pods = Informer(self.client, PODS, field_selector=f"spec.nodeName={opts.node_name}")
        self.runtime: PodRuntime | None = None
        self.kubelet: KubeletServer | None = None
        self.policy: PolicyRunner | None = None
        self.kubelet_port = opts.kubelet_port
        self._tasks: list[asyncio.Task[Any]] = []
        self._routes_dirty = asyncio.Event()
        self._status_now = asyncio.Event()
        self._ops: NetOps | None = opts.netops
        self.pod_mtu = 1500
        self._runtime: RuntimeChoice | None = None

    # ---- API helpers ----
    def ops(self) -> NetOps:
        if self._ops is None:
            from podnet.net.real import RealNetOps

            self._ops = RealNetOps()
        return self._ops

    async def _patch_status(self, rt_name: str, name: str, ns: str | None, status: Obj) -> None:
        rt = PODS if rt_name == "pods" else NODES
        try:
            await self.client.patch(rt, name, {"status": status}, ns, subresource="status")
        except ApiError as e:
            if e.code not in (405, 415):
                raise
            obj = await self.client.get(rt, name, ns)
            obj["status"] = status
            await self.client.update_status(rt, obj)

    async def push_pod_status(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self._patch_status("pods", meta["name"], meta.get("namespace"), status)
        except ApiError as e:
            if e.code != 404:
                raise

    async def finish_delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta.get("uid")}}
        from podnet.client.client import resource_path

        try:
            await self.client.request("DELETE", resource_path(PODS, meta.get("namespace"), meta["name"]),
                                      body=body)
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def get_secret(self, ns: str, name: str) -> Obj | None:
        """A Secret through the API (a plain GET, so it works whichever way the API serves Secrets)."""
        try:
            secret: Obj = await self.client.request("GET", f"/api/v1/namespaces/{ns}/secrets/{name}")
            return secret
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def request_token(self, pod: Obj, audience: str, seconds: int) -> tuple[str, float] | None:
        """A ServiceAccount token bound to pod (TokenRequest), as the kubelet gets it for projected
        volumes; None when this node may not ask for one (it then mounts no token)."""
        meta = pod.get("metadata") or {}
        ns = str(meta.get("namespace") or "default")
        sa = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        spec: Obj = {"expirationSeconds": max(600, seconds),
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"),
                                        "uid": meta.get("uid")}}
        if audience:
            spec["audiences"] = [audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        try:
            tr: Obj = await self.client.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                                                body=body)
        except ApiError as e:
            if e.code == 403:
                log.warning("pod %s/%s: not allowed to request a ServiceAccount token: %s", ns,
                            meta.get("name"), e)
                return None
            raise
        status = tr.get("status") or {}
        try:
            expiry = dt.datetime.strptime(str(status.get("expirationTimestamp")), "%Y-%m-%dT%H:%M:%SZ")
            when = expiry.replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            when = time.time() + seconds
        return str(status.get("token") or ""), when

    def image_manager(self) -> ImageManager:
        from podnet.agent.imagepull import ImageSettings
        from podnet.images.store import ImageStore

        cfg = self.config
        settings = ImageSettings(mode=cfg.images, insecure_registries=tuple(cfg.insecure_registries),
                                 pull_timeout=cfg.image_pull_timeout, host_netns=self.host_netns)
        return ImageManager(ImageStore(), settings, self.get_secret)

    def shim_server(self) -> ShimServer:
        def record(pid: int, starttime: int) -> None:
            self.journal.record("process", f"shim-server-{self.opts.node_name}", pid=pid, starttime=starttime)

        return ShimServer(self.node_dir / "shim.sock", self.node_dir / "shim-server.log", record)

    def host_netns(self) -> str:
        """The machine's own network namespace, where image pulls run (nodes have no route off the machine):
        the descriptor `podnet up` handed over, else that of the cluster's control plane or supervisor
        (both run in it), from the journal; "" = this agent's own (a node on a machine of its own)."""
        fd = os.environ.get("PODNET_HOST_NETNS_FD", "")
        if fd.isdigit() and os.path.exists(f"/proc/self/fd/{fd}"):
            return f"/proc/{os.getpid()}/fd/{fd}"
        mine = _ns_id("/proc/self/ns/net")
        for e in reversed(jr.Journal(self.opts.state_dir).entries(jr.PROCESS)):
            pid = e.attrs.get("pid")
            if e.name in ("controlplane", "supervisor") and isinstance(pid, int) and pid > 1:
                theirs = _ns_id(f"/proc/{pid}/ns/net")
                if theirs and theirs != mine:
                    return f"/proc/{pid}/ns/net"
        return ""

    def runtime_choice(self) -> RuntimeChoice:
        if self._runtime is None:
            from podnet.images.runtimes import choose

            self._runtime = choose()
            log.info("container runtime: %s", self._runtime.describe())
        return self._runtime

    async def get_configmap(self, ns: str, name: str) -> Obj | None:
        try:
            return await self.client.get(CONFIGMAPS, name, ns)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    # ---- node ----
    def _conditions(self) -> list[Obj]:
        ready = bool(self.pod_cidr) and (self.network_ok or not self.opts.manage_routes)
        msg = ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
               "message:podnet: waiting for the node's podCIDR") if not self.pod_cidr else \
            "container runtime network not ready: podnet: programming routes to other nodes"
        return self.conditions.build(ready=ready, not_ready_message=msg,
                                     network_ok=self.network_ok or not self.opts.manage_routes)

    async def register(self) -> None:
        o = self.opts
        status = nodemod.node_status(o.node_name, o.node_ip, self.kubelet_port, self._conditions(),
                                     self.config.max_pods)
        try:
            existing = await self.client.get(NODES, o.node_name)
        except ApiError as e:
            if e.code != 404:
                raise
            try:
                fresh = nodemod.new_node(o.node_name, o.node_ip, self.kubelet_port, self._conditions(),
                                         self.config.max_pods)
                created = await self.client.create(NODES, fresh)
                self.pod_cidr = nodemod.pod_cidr_of(created)
                await self._patch_status("nodes", o.node_name, None, status)  # status is ignored on create
                log.info("registered node %s (%s)", o.node_name, o.node_ip)
                return
            except ApiError as e2:
                if e2.code != 409:
                    raise
                existing = await self.client.get(NODES, o.node_name)
        self.pod_cidr = nodemod.pod_cidr_of(existing)
        labels = {"metadata": {"labels": nodemod.node_labels(o.node_name)}}
        await self.client.patch(NODES, o.node_name, labels)
        await self._patch_status("nodes", o.node_name, None, status)
        log.info("node %s already registered: status updated", o.node_name)

    async def heartbeat(self) -> None:
        o = self.opts
        while True:
            await wait_event(self._status_now, o.heartbeat_seconds)
            self._status_now.clear()
            try:
                await self._patch_status("nodes", o.node_name, None,
                                         {"conditions": self._conditions(),
                                          "addresses": [{"type": "InternalIP", "address": o.node_ip},
                                                        {"type": "Hostname", "address": o.node_name}],
                                          "daemonEndpoints": {"kubeletEndpoint":
                                                              {"Port": self.kubelet_port}}})
            except ApiError as e:
                if e.code == 404:
                    log.warning("node %s was deleted: registering again", o.node_name)
                    with contextlib.suppress(ApiError, OSError):
                        await self.register()
                else:
                    log.warning("heartbeat failed: %s", e)
            except OSError as e:
                log.warning("heartbeat failed: %s", e)
            except Exception as e:  # aiohttp errors: the API server may be restarting
                log.warning("heartbeat failed: %s", e)

    async def wait_pod_cidr(self) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.opts.pod_cidr_timeout
        while loop.time() < deadline:
            me = self.nodes.get(self.opts.node_name)
            if me is not None and nodemod.pod_cidr_of(me):
                return nodemod.pod_cidr_of(me)
            await asyncio.sleep(0.1)
        raise TimeoutError(f"node {self.opts.node_name} got no spec.podCIDR within "
                           f"{self.opts.pod_cidr_timeout:g}s: is the control plane's node IPAM running?")

    # ---- routes ----
    def _on_node(self, etype: str, obj: Obj, old: Obj | None) -> None:
        self._routes_dirty.set()

    def _api_via(self) -> tuple[str, str] | None:
        """On the machine that ran `podnet up --listen ADDR`: ADDR through the host (nodenet.api_via).
        Joined machines reach it on their own network (their config has no node network)."""
        from podnet.net.nodenet import api_via

        cfg = self.config
        return api_via(cfg.api_advertise[0] if cfg.listen else "", cfg.node_network, self.opts.node_ip)

    async def route_loop(self) -> None:
        from podnet.net.nodenet import NodeInfo, reconcile_node_routes

        vni = naming.cluster_vni(self.config.name)
        while True:
            await self._routes_dirty.wait()
            self._routes_dirty.clear()
            me = NodeInfo(self.opts.node_name, self.opts.node_ip, self.pod_cidr)
            others = [NodeInfo(str(n["metadata"]["name"]), nodemod.internal_ip(n), nodemod.pod_cidr_of(n))
                      for n in self.nodes.list()
                      if n["metadata"]["name"] != self.opts.node_name and nodemod.internal_ip(n)]
            try:
                await in_netlink_thread(reconcile_node_routes, self.ops(), netns=None,
                                        mode=self.config.network, my_node=me, others=others, vni=vni,
                                        service_cidr=self.config.service_cidr, api_via=self._api_via())
                if not self.network_ok:
                    self.network_ok = True
                    self._status_now.set()
                    log.info("routes to %d other node(s) in place", len(others))
            except Exception as e:
                log.error("programming routes to other nodes failed: %s", e)
                await asyncio.sleep(2.0)
                self._routes_dirty.set()
            await asyncio.sleep(0.1)

    # ---- proxy ----
    async def proxy_loop(self) -> None:
        # kube-proxy's endpoints: /healthz on :10256 (status only), /metrics on 127.0.0.1:10249
        status = ProxyStatusServer(METRICS,
                                   eligible=lambda: node_eligible(self.nodes.get(self.opts.node_name)))
        await status.start()
        try:
            while True:
                try:
                    await run_proxy(self.client, node_name=self.opts.node_name, node_ip=self.opts.node_ip,
                                    config=self.config,
                                    informers=ProxyInformers(self.services, self.slices, self.nodes))
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("service proxy failed: restarting it in 2s")
                    await asyncio.sleep(2.0)
        finally:
            await status.close()

    # ---- network policy ----
    async def policy_loop(self) -> None:
        assert self.policy is not None
        while True:
            try:
                await self.policy.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("network policy loop failed: restarting it in 2s")
                await asyncio.sleep(2.0)

    async def admit_pod_network(self, pod: Obj, ip: str) -> None:
        if self.policy is not None:
            await self.policy.admit(pod, ip)

    # ---- pods ----
    def _find_pod_mtu(self) -> int:
        """The MTU for pod links: the uplink's, less the VXLAN overhead in vxlan mode (blocking netlink)."""
        from podnet.net.nodenet import find_uplink, pod_mtu

        try:
            return pod_mtu(self.config.network, find_uplink(self.ops(), self.opts.node_ip, None)[1])
        except Exception as e:
            log.warning("uplink MTU unknown (%s): pods get MTU 1500", e)
            return 1500

    def pod_deps(self) -> PodDeps:
        from podnet.dns import envvars, podconfig

        cfg = self.config
        o = self.opts
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""

        def resolv(pod: Obj) -> str:
            try:
                return podconfig.resolv_conf(pod, cluster_domain=cfg.cluster_domain, dns_ip=cfg.dns_ip,
                                             host_resolv_conf=host_resolv)
            except ValueError as e:
                log.warning("pod %s: resolv.conf: %s", pod["metadata"].get("name"), e)
                return ""

        def hosts(pod: Obj, ip: str) -> str:
            try:
                return podconfig.hosts_file(pod, ip, cluster_domain=cfg.cluster_domain)
            except ValueError as e:
                log.warning("pod %s: hosts file: %s", pod["metadata"].get("name"), e)
                return ""

        def hostname(pod: Obj) -> str:
            if (pod.get("spec") or {}).get("hostNetwork"):
                return ""
            try:
                return podconfig.pod_hostname_and_domain(pod, cluster_domain=cfg.cluster_domain)[0]
            except ValueError:
                return str(pod["metadata"]["name"])[:63]

        def extra_env(pod: Obj) -> dict[str, str]:
            # where system pods (the DNS server) reach the API on the machine that runs it: the unix
            # socket this agent uses, never its credential (they authenticate with their ServiceAccount's
            # token, mounted like any pod's). A joined machine's agent talks TCP to the API's address,
            # which its pods cannot reach from their own addresses: they use the `kubernetes` Service
            # (KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount's ca.crt), as in-cluster clients do.
            if (pod.get("metadata") or {}).get("namespace") == "kube-system" and o.server.startswith("unix:"):
                return {"PODNET_API_SERVER": o.server}
            return {}

        network = o.network
        if network is None:
            network = CniPodNetwork(self.ops(), cluster=cfg.name, pod_cidr=self.pod_cidr,
                                    ipam_file=self.node_dir / "ipam.json", journal=self.journal,
                                    mtu=self.pod_mtu)
        return PodDeps(
            node_name=o.node_name, node_ip=o.node_ip, dirs=PodDirs(self.node_dir / "pods"), network=network,
            launcher=o.launcher or ShimLauncher(self.shim_server()), push_status=self.push_pod_status,
            finish_delete=self.finish_delete, get_configmap=self.get_configmap,
            services=self.services.list,
            service_env=lambda svcs, pod: envvars.pod_service_env_vars(pod, svcs),
            resolv_conf=resolv, hosts_file=hosts, hostname=hostname, extra_env=extra_env, exec_in=exec_in,
            journal=self.journal, backoff_scale=o.backoff_scale, record_event=self.events.record,
            images=self.image_manager() if o.real_images else None,
            runtime=self.runtime_choice, runtime_root=o.state_dir / "runc", cluster=cfg.name,
            admit_network=self.admit_pod_network if self.policy is not None else None,
            volume_sources=VolumeSources(self.get_configmap, self.get_secret, self.request_token,
                                         self.memory_volume_root()),
            get_secret=self.get_secret, mountpoints=MountPointRegistry(o.state_dir))

    def memory_volume_root(self) -> Path:
        """Where memory emptyDirs live (journaled: `podnet down` removes it after a crash)."""
        root = MEMORY_VOLUME_ROOT / self.config.name
        self.journal.record(jr.DIR, str(root))
        return root

    # ---- life ----
    async def start(self) -> None:
        o = self.opts
        self.node_dir.mkdir(parents=True, exist_ok=True)
        await self.client.wait_ready(timeout=60)
        await self.register()
        self.nodes.add_handler(self._on_node)
        self._tasks.append(self.nodes.start())
        self._tasks.append(self.services.start())
        self.pod_cidr = await self.wait_pod_cidr()
        log.info("node %s podCIDR %s", o.node_name, self.pod_cidr)
        if o.manage_routes:
            self._routes_dirty.set()
            self._tasks.append(asyncio.create_task(self.route_loop(), name="routes"))
        self._tasks.append(asyncio.create_task(self.heartbeat(), name="heartbeat"))
        if o.run_proxy:
            self._tasks.append(self.slices.start())
            self._tasks.append(asyncio.create_task(self.proxy_loop(), name="proxy"))
            self.policy = make_runner(self.client, o.node_name)
            self._tasks.append(asyncio.create_task(self.policy_loop(), name="policy"))
        await self.services.synced.wait()
        if o.network is None:
            self.pod_mtu = await in_netlink_thread(self._find_pod_mtu)
        self.runtime = PodRuntime(self.pod_deps())
        self.kubelet = KubeletServer(self.runtime)
        try:
            tls = await kubelet_server_context(self.client, node=o.node_name, ip=o.node_ip,
                                               ca_file=o.state_dir / "ca.crt", node_dir=self.node_dir)
        except (KubeletTLSError, ApiError) as e:  # exec and logs unavailable, but nothing left open
            log.error("node endpoint not started: %s", e)
        else:
            self.kubelet_port = await self.kubelet.start(o.node_ip, o.kubelet_port, ssl_context=tls)
        self.pods.add_handler(self.runtime.on_pod)
        self._tasks.append(self.pods.start())
        await self.pods.synced.wait()
        known = {str(p["metadata"].get("uid")) for p in self.pods.list()}
        await self.runtime.cleanup_orphans(known)
        with contextlib.suppress(ApiError, OSError):
            await self._patch_status("nodes", o.node_name, None, {
                "conditions": self._conditions(),
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}}})
        log.info("agent for node %s ready (kubelet endpoint %s:%d)", o.node_name, o.node_ip,
                 self.kubelet_port)

    async def stop(self) -> None:
        """Stop the agent; the pods' processes keep running for the next agent to adopt."""
        if self.runtime is not None:
            await self.runtime.close()
        for inf in (self.pods, self.nodes, self.services, self.slices):
            await inf.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.kubelet is not None:
            await self.kubelet.stop()
        await self.client.close()


def _ns_id(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _dump_tracemalloc(where: Path) -> None:
    """Write a tracemalloc snapshot (for finding memory growth: compare two with tracemalloc)."""
    path = where / f"tracemalloc-{os.getpid()}-{int(time.time())}.snap"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        tracemalloc.take_snapshot().dump(str(path))
        log.info("tracemalloc snapshot written to %s", path)
    except OSError as e:
        log.warning("tracemalloc snapshot: %s", e)


async def run_agent(opts: AgentOptions) -> None:
    """Run the agent until SIGTERM/SIGINT."""
    malloc.fix_thresholds()  # freed memory goes back to the system (core/malloc.py)
    # the caches of every Service and EndpointSlice are long-lived: full collections that walked
    # them paused the agent 1.2-1.7 s at 100,000 Services (BENCHMARKS.md, bench_agent_gc.py)
    freeze_long_lived()
    agent = Agent(opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    me = os.getpid()

    def on_signal(signum: int, frame: object) -> None:
        # Not loop.add_signal_handler: its wakeup fd is shared with children pyroute2 forks for
        # netns sockets, and the SIGTERM pyroute2 sends such a child would then stop the agent.
        if os.getpid() == me:
            loop.call_soon_threadsafe(stop.set)
        else:
            os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    if tracemalloc.is_tracing():  # started with PYTHONTRACEMALLOC=N: SIGUSR2 writes a snapshot
        def on_usr2(signum: int, frame: object) -> None:
            if os.getpid() == me:
                loop.call_soon_threadsafe(_dump_tracemalloc, agent.node_dir)
        signal.signal(signal.SIGUSR2, on_usr2)
    try:
        starting = asyncio.create_task(agent.start())
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()
            await waiter
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
    finally:
        await agent.stop()
