"""Pod IP addresses from a node's podCIDR, persisted so a restarted agent never hands out a live IP twice.

The state is one small JSON file, rewritten atomically (temporary file +
rename) under an exclusive lock (`<state_file>.lock`, flock), so several
processes may allocate at once. Allocation is idempotent per owner (a pod's
uid) and goes round-robin after the last address handed out, so a released
IP is not reused at once (stale conntrack entries, clients that cached it).

Reserved: the network address (the VXLAN VTEP address in vxlan mode), `.1`
(kept for the node), and the broadcast address.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class IpamError(Exception):
    """An allocation failed; the message says why."""


class IpamFullError(IpamError):
    pass


class Ipam:
    def __init__(self, state_file: Path, cidr: str):
        try:
            self.network = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as e:
            raise IpamError(f"invalid podCIDR {cidr!r}: {e}") from None
        if self.network.prefixlen > 30:
            raise IpamError(f"podCIDR {cidr} is too small: must be /30 or larger")
        self.cidr = str(self.network)
        self.state_file = Path(state_file)
        self._lock_file = self.state_file.with_name(self.state_file.name + ".lock")
        first = int(self.network.network_address) + 2  # network address and .1 reserved
        last = int(self.network.broadcast_address) - 1
        self._first, self._last = first, last

    @property
    def capacity(self) -> int:
        return self._last - self._first + 1

    # ---- persistence ------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self._read()
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                self._write(state)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"cidr": self.cidr, "last": "", "allocations": {}}
        except ValueError as e:
            raise IpamError(f"IPAM state file {self.state_file} is corrupt: {e}") from None
        if data.get("cidr") != self.cidr:
            live = data.get("allocations", {})
            if live:
                raise IpamError(f"IPAM state file {self.state_file} is for podCIDR {data.get('cidr')}, not "
                                f"{self.cidr}, and still holds {len(live)} allocation(s)")
            return {"cidr": self.cidr, "last": "", "allocations": {}}
        data.setdefault("allocations", {})
        data.setdefault("last", "")
        return data

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)

    # ---- API --------------------------------------------------------------------
    def allocate(self, owner: str) -> str:
        """The IP of `owner` (a pod uid): its existing one, or the next free one."""
        if not owner:
            raise IpamError("an IP allocation needs an owner (the pod uid)")
        with self._locked() as state:
            allocs: dict[str, str] = state["allocations"]
            if owner in allocs:
                return allocs[owner]
            used = {int(ipaddress.IPv4Address(ip)) for ip in allocs.values()}
            start = self._first
            if state["last"]:
                last = int(ipaddress.IPv4Address(state["last"]))
                if self._first <= last <= self._last:
                    start = last + 1 if last < self._last else self._first
            n = self.capacity
            for i in range(n):
                cand = self._first + (start - self._first + i) % n
                if cand not in used:
                    ip = str(ipaddress.IPv4Address(cand))
                    allocs[owner] = ip
                    state["last"] = ip
                    return ip
            raise IpamFullError(f"no free pod IP in {self.cidr}: all {n} addresses are in use")

    def release(self, owner: str) -> str | None:
        """Free `owner`'s IP; returns it, or None if it had none (releasing twice is fine)."""
        with self._locked() as state:
            ip: str | None = state["allocations"].pop(owner, None)
            return ip

    def allocations(self) -> dict[str, str]:
        """owner → IP, as persisted now."""
        with self._locked() as state:
            return dict(state["allocations"])

    def owner_of(self, ip: str) -> str | None:
        for owner, addr in self.allocations().items():
            if addr == ip:
                return owner
        return None
