"""The OCI runtime config (config.json) of a container podnet runs from a real image. Pure: no I/O
except reading the image's /etc/passwd and /etc/group to resolve a user name.

What goes in, as the kubelet and containerd decide it:
  - argv: `command` replaces the image's ENTRYPOINT, `args` replaces its CMD (`merge_argv`);
  - env: the image's Env, then the container's environment on top (`merge_env`);
  - cwd: `workingDir`, else the image's WorkingDir, else /;
  - user: securityContext.runAsUser/runAsGroup (container over pod), else the image's User;
    runAsNonRoot checked with the kubelet's messages;
  - namespaces: the pod's network namespace joined by path; own mount, PID, IPC and UTS;
  - capabilities: containerd's default set, with securityContext.capabilities add/drop; all of
    them for privileged containers (which also see /proc and /sys unmasked);
  - mounts: /proc, /dev, /sys (read-only), the pod's /etc/resolv.conf, /etc/hosts and /etc/hostname,
    then every `Mount` the caller adds (volumes);
  - readOnlyRootFilesystem, allowPrivilegeEscalation: false (no_new_privs), a memory limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.images.store import ImageConfig

Obj = dict[str, Any]

# containerd's default capability set for CRI containers (pkg/cri/opts: DefaultCapabilities)
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
ALL_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
            "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")
MASKED_PATHS = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
READONLY_PATHS = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


class ConfigError(Exception):
    """The container cannot be created as specified (CreateContainerConfigError / CreateContainerError)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Mount:
    """A bind mount into the container: volumes plug in here (destination, host source, read-only)."""
    destination: str
    source: str
    readonly: bool = False


@dataclass
class RunSpec:
    argv: list[str]
    env: list[str]
    cwd: str
    uid: int
    gid: int
    additional_gids: list[int]
    hostname: str
    netns_path: str
    cgroups_path: str
    readonly_root: bool = False
    privileged: bool = False
    no_new_privileges: bool = False
    caps: list[str] | None = None
    memory_limit: int = 0
    mounts: list[Mount] | None = None
    terminal: bool = False  # `tty: true`: runc makes a pty and hands its master to --console-socket


def merge_argv(image: ImageConfig, command: list[str] | None, args: list[str] | None) -> list[str]:
    """Kubernetes' rule: command replaces ENTRYPOINT (and drops CMD), args replaces CMD."""
    if command:
        return list(command) + list(args or [])
    if args:
        return list(image.entrypoint) + list(args)
    return list(image.entrypoint) + list(image.cmd)


def merge_env(image: ImageConfig, pod_env: dict[str, str], explicit: set[str]) -> list[str]:
    """The image's Env, overridden by the container's environment. PATH and HOSTNAME that podnet adds
    by default do not override the image's own (only an explicit `env` entry does)."""
    env: dict[str, str] = {}
    for item in image.env:
        k, _, v = item.partition("=")
        env[k] = v
    for k, v in pod_env.items():
        if k == "PATH" and "PATH" in env and k not in explicit:
            continue
        env[k] = v
    if "PATH" not in env:
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return [f"{k}={v}" for k, v in env.items()]


def _lookup(path: Path, name: str) -> list[str] | None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if fields and fields[0] == name:
            return fields
    return None


def resolve_user(user: str, rootfs: Path) -> tuple[int | None, int | None, str]:
    """(uid, gid, name) from an image User ("1000", "1000:1000", "nginx", "nginx:www"); uid None when a
    name cannot be resolved in the image's /etc/passwd."""
    if not user:
        return 0, 0, ""
    u, _, g = user.partition(":")
    uid: int | None
    gid: int | None = None
    if u.isdigit():
        uid = int(u)
        pw = None
    else:
        pw = _lookup(rootfs / "etc" / "passwd", u)
        uid = int(pw[2]) if pw and len(pw) > 3 and pw[2].isdigit() else None
    if pw and len(pw) > 3 and pw[3].isdigit():
        gid = int(pw[3])
    if g:
        if g.isdigit():
            gid = int(g)
        else:
            gr = _lookup(rootfs / "etc" / "group", g)
            gid = int(gr[2]) if gr and len(gr) > 2 and gr[2].isdigit() else None
            if gid is None:
                return None, None, user
    return uid, (gid if gid is not None else (0 if uid == 0 else uid)), u


def security_context(pod: Obj, container: Obj) -> Obj:
    """The container's effective securityContext fields (container over pod)."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    out: Obj = {}
    for k in ("runAsUser", "runAsGroup", "runAsNonRoot"):
        if csc.get(k) is not None:
            out[k] = csc[k]
        elif psc.get(k) is not None:
            out[k] = psc[k]
    for k in ("readOnlyRootFilesystem", "privileged", "capabilities", "allowPrivilegeEscalation"):
        if csc.get(k) is not None:
            out[k] = csc[k]
    out["supplementalGroups"] = list(psc.get("supplementalGroups") or [])
    if psc.get("fsGroup") is not None:
        out["supplementalGroups"].append(psc["fsGroup"])
    return out


def pod_label(pod: Obj) -> str:
    m = pod.get("metadata") or {}
    return f'{m.get("name", "")}_{m.get("namespace", "default")}({m.get("uid", "")})'


def user_for(pod: Obj, container: Obj, image: ImageConfig, rootfs: Path) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids), refusing what the kubelet refuses with its messages."""
    sc = security_context(pod, container)
    name = str(container.get("name", ""))
    uid_img, gid_img, uname = resolve_user(image.user, rootfs)
    if sc.get("runAsUser") is not None:
        uid = int(sc["runAsUser"])
        gid = int(sc["runAsGroup"]) if sc.get("runAsGroup") is not None else (gid_img if uid_img == uid and
                                                                                 gid_img is not None else 0)
        if sc.get("runAsNonRoot") and uid == 0:
            raise ConfigError("CreateContainerConfigError",
                              f"container's runAsUser breaks non-root policy (pod: \"{pod_label(pod)}\", "
                              f"container: {name})")
    else:
        if uid_img is None:
            if sc.get("runAsNonRoot"):
                raise ConfigError("CreateContainerConfigError",
                                  "container has runAsNonRoot and image has non-numeric user "
                                  f"({image.user}), "
                                  f"cannot verify user is non-root (pod: \"{pod_label(pod)}\", "
                                  f"container: {name})")
            raise ConfigError("CreateContainerError",
                              f'unable to find user {uname}: no matching entries in passwd file')
        uid = uid_img
        gid = int(sc["runAsGroup"]) if sc.get("runAsGroup") is not None else int(gid_img or 0)
        if sc.get("runAsNonRoot") and uid == 0:
            raise ConfigError("CreateContainerConfigError",
                              f"container has runAsNonRoot and image will run as root "
                              f"(pod: \"{pod_label(pod)}\", container: {name})")
    return uid, gid, [int(g) for g in sc.get("supplementalGroups") or []]


def capabilities(sc: Obj, last_cap: int = 40) -> list[str]:
    """containerd's default set with add/drop applied ("ALL" allowed in both; names with or without CAP_)."""
    known = list(ALL_CAPS[:last_cap + 1])
    if sc.get("privileged"):
        return known
    caps = sc.get("capabilities") or {}

    def norm(c: str) -> str:
        c = c.upper()
        return c if c.startswith("CAP_") else "CAP_" + c

    add = [norm(str(c)) for c in caps.get("add") or []]
    drop = [norm(str(c)) for c in caps.get("drop") or []]
    have = list(known) if "CAP_ALL" in add else [c for c in DEFAULT_CAPS if c in known]
    for c in add:
        if c != "CAP_ALL" and c not in have:
            if c not in ALL_CAPS:
                raise ConfigError("CreateContainerError", f"unknown capability {c!r}")
            if c in known:
                have.append(c)
    if "CAP_ALL" in drop:
        have = [c for c in add if c != "CAP_ALL" and c in known]
    have = [c for c in have if c not in drop]
    return have


def runtime_config(spec: RunSpec) -> Obj:
    """config.json for runc (OCI runtime spec 1.0.2)."""
    caps = spec.caps if spec.caps is not None else list(DEFAULT_CAPS)
    effective = caps if spec.uid == 0 else []
    process: Obj = {
        "terminal": spec.terminal,
        "user": {"uid": spec.uid, "gid": spec.gid, **({"additionalGids": spec.additional_gids}
                                                         if spec.additional_gids else {})},
        "args": spec.argv,
        "env": spec.env,
        "cwd": spec.cwd or "/",
        "capabilities": {"bounding": caps, "effective": effective, "permitted": effective,
                         "inheritable": [], "ambient": []},
        "noNewPrivileges": spec.no_new_privileges,
    }
    mounts: list[Obj] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev"] + ([] if spec.privileged else ["ro"])},
    ]
    for m in spec.mounts or []:
        mounts.append({"destination": m.destination, "type": "bind", "source": m.source,
                       "options": ["rbind", "rprivate", "ro" if m.readonly else "rw"]})
    linux: Obj = {
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                       {"type": "network", **({"path": spec.netns_path} if spec.netns_path else {})}],
        "cgroupsPath": spec.cgroups_path,
        "resources": {"devices": [{"allow": spec.privileged, "access": "rwm"}]},
    }
    if spec.memory_limit > 0:
        linux["resources"]["memory"] = {"limit": spec.memory_limit}
    if not spec.privileged:
        linux["maskedPaths"] = MASKED_PATHS
        linux["readonlyPaths"] = READONLY_PATHS
    return {"ociVersion": "1.0.2", "process": process,
            "root": {"path": "rootfs", "readonly": spec.readonly_root},
            "hostname": spec.hostname, "mounts": mounts, "linux": linux}
