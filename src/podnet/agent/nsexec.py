"""Running a command inside a container's namespaces (net, mount, UTS) with the container's environment."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path


def container_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def _ns(pid: int | str, kind: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return ""


def _ids(pid: int) -> tuple[int, int] | None:
    """(uid, gid) the process runs as (a command exec'd into its container runs as the same user)."""
    uid = gid = -1
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return (uid, gid) if uid >= 0 and gid >= 0 else None


def nsenter_argv(pid: int, cmd: list[str]) -> list[str]:
    """nsenter into the container's namespaces. A container from a real image (own PID namespace,
    own root) is also entered in its PID and IPC namespaces, root directory and working directory."""
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    own_pid_ns = _ns(pid, "pid") not in ("", _ns("self", "pid"))
    if own_pid_ns:
        user = _ids(pid)
        as_user = [f"--setuid={user[0]}", f"--setgid={user[1]}"] if user and user != (0, 0) else []
        return [nsenter, f"--target={pid}", "--net", "--mount", "--uts", "--ipc", "--pid", "--root", "--wd",
                *as_user, "--", *cmd]
    return [nsenter, f"--target={pid}", "--net", "--mount", "--uts", "--", *cmd]


async def exec_in(pid: int, cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `cmd` in the namespaces of process `pid`; (exit code, combined output). Timeout -> (124, msg)."""
    full_env = container_environ(pid) | env
    try:
        proc = await asyncio.create_subprocess_exec(
            *nsenter_argv(pid, cmd), env=full_env or None, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return 126, str(e)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, f"command timed out after {timeout:g}s"
    return int(proc.returncode or 0), out.decode(errors="replace")
