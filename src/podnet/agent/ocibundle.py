"""Writing the OCI bundle (config.json) for one start of a container from a real image.

The bundle lives in the container's run directory (`<pod dir>/containers/<name>/<attempt>/bundle`):
config.json, the writable layer (`upper`, `work`) and the mount point of the root filesystem,
which the shim mounts (overlay over the image's shared unpacked root) in its own mount namespace.
Volumes plug in as `Mount`s (`extra_mounts`), after the pod's /etc files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from podnet.agent.expansion import expand
from podnet.agent.launcher import OciLaunch
from podnet.images.ocispec import (
    ConfigError,
    Mount,
    RunSpec,
    capabilities,
    merge_argv,
    merge_env,
    runtime_config,
    security_context,
    user_for,
)
from podnet.images.runtimes import RuntimeChoice
from podnet.images.store import ImageStore, StoredImage
from podnet.model.kinds import Obj
from podnet.model.quantity import parse_quantity


@dataclass
class BundleInputs:
    pod: Obj
    container: Obj
    env: dict[str, str]  # the container's environment as the kubelet builds it
    run_dir: Path
    netns_path: str
    hostname: str
    resolv_conf: str  # host paths of the pod's files ("" = none)
    hosts: str
    cluster: str
    container_id: str
    runtime: RuntimeChoice
    runtime_root: Path
    extra_mounts: list[Mount]


def _last_cap() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def memory_oom_file(cgroups_path: str) -> str:
    """Where the kernel counts OOM kills for this cgroup: cgroup v1 memory controller, else cgroup2."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    for line in mounts:
        p = line.split()
        if len(p) > 3 and p[2] == "cgroup" and "memory" in p[3].split(","):
            return f"{p[1]}{cgroups_path}/memory.oom_control"
    for line in mounts:
        p = line.split()
        if len(p) > 2 and p[2] == "cgroup2":
            return f"{p[1]}{cgroups_path}/memory.events"
    return ""


def write_bundle(store: ImageStore, img: StoredImage, b: BundleInputs) -> tuple[OciLaunch, list[str]]:
    """Write config.json; returns the launch description and the argv it runs (for the journal)."""
    if not b.runtime.name:
        raise ConfigError("CreateContainerError", b.runtime.describe())
    cfg = store.config_of(img)
    lower = store.unpacked(img)
    c = b.container
    command = [expand(str(a), b.env) for a in c.get("command") or []]
    args = [expand(str(a), b.env) for a in c.get("args") or []]
    argv = merge_argv(cfg, command, args)
    if not argv:
        raise ConfigError("CreateContainerError", "failed to generate container spec: no command specified")
    explicit = {str(e.get("name")) for e in c.get("env") or []}
    env = merge_env(cfg, b.env, explicit)
    uid, gid, groups = user_for(b.pod, c, cfg, lower)
    sc = security_context(b.pod, c)
    caps = capabilities(sc, _last_cap())
    limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
    memory = int(parse_quantity(limit)) if limit is not None else 0
    bundle = b.run_dir / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    etc = bundle / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "hostname").write_text(b.hostname + "\n")
    mounts = [Mount("/etc/hostname", str(etc / "hostname"))]
    if b.resolv_conf:
        mounts.append(Mount("/etc/resolv.conf", b.resolv_conf))
    if b.hosts:
        mounts.append(Mount("/etc/hosts", b.hosts))
    mounts += b.extra_mounts
    cgroups_path = f"/podnet-{b.cluster}/{b.container_id}"
    spec = RunSpec(argv=argv, env=env, cwd=str(c.get("workingDir") or cfg.working_dir or "/"), uid=uid,
                   gid=gid, additional_gids=groups, hostname=b.hostname, netns_path=b.netns_path,
                   cgroups_path=cgroups_path, readonly_root=bool(sc.get("readOnlyRootFilesystem")),
                   privileged=bool(sc.get("privileged")),
                   no_new_privileges=sc.get("allowPrivilegeEscalation") is False and not sc.get("privileged"),
                   caps=caps, memory_limit=memory, mounts=mounts, terminal=bool(c.get("tty")))
    (bundle / "config.json").write_text(json.dumps(runtime_config(spec), indent=1))
    return OciLaunch(bundle=bundle, lower=lower, runtime=b.runtime.path, runtime_root=b.runtime_root,
                     container_id=b.container_id, oom_file=memory_oom_file(cgroups_path)), argv
