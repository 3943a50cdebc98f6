"""The adapter for the policy table: `PolicyNft` protocol, `RealPolicyNft` (the `nft` binary) and
`FakePolicyNft` (records transactions, for tests without root)."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Protocol

from podnet.policy.render import FAMILY, TABLE


class PolicyNftError(Exception):
    """`nft` refused a transaction or could not run; the message carries nft's own words."""


class PolicyNft(Protocol):
    def apply(self, text: str) -> None:
        """Apply one transaction atomically; raise PolicyNftError on failure."""

    def list_json(self) -> dict[str, Any]:
        """`nft -j list table ip podnet-policy` (`{"nftables": []}` when there is no table)."""


def _first_lines(text: str, n: int = 12) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    more = f"\n... ({len(lines) - n} more lines)" if len(lines) > n else ""
    return "\n".join(lines[:n]) + more


class RealPolicyNft:
    """Runs `nft` in the current network namespace, or in `netns` via `ip netns exec`."""

    def __init__(self, netns: str | None = None, timeout: float = 120.0):
        self.netns = netns
        self.timeout = timeout

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        cmd = ["nft", *args]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except FileNotFoundError as e:
            raise PolicyNftError(f"cannot run nft: {e}") from e
        except subprocess.TimeoutExpired as e:
            raise PolicyNftError(f"nft {' '.join(args)} did not finish within {self.timeout:.0f}s") from e
        if proc.returncode != 0:
            where = f" in netns {self.netns}" if self.netns else ""
            raise PolicyNftError(f"nft {' '.join(args)}{where} failed (exit {proc.returncode}): "
                                 f"{_first_lines(proc.stderr or proc.stdout)}")
        return proc.stdout

    def apply(self, text: str) -> None:
        self._run(["-f", "-"], stdin=text)

    def list_json(self) -> dict[str, Any]:
        try:
            out = self._run(["-j", "list", "table", FAMILY, TABLE])
        except PolicyNftError as e:
            if "No such file or directory" in str(e):
                return {"nftables": []}
            raise
        data: dict[str, Any] = json.loads(out)
        return data

    def list_text(self) -> str:
        """The table as nft lists it (with counter values), "" when there is none."""
        try:
            return self._run(["list", "table", FAMILY, TABLE])
        except PolicyNftError as e:
            if "No such file or directory" in str(e):
                return ""
            raise

    def delete_table(self) -> None:
        self.apply(f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")


class FakePolicyNft:
    """Keeps the transactions it was given; `fail_next` makes the next apply fail as nft would."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.fail_next = ""

    def apply(self, text: str) -> None:
        if self.fail_next:
            msg, self.fail_next = self.fail_next, ""
            raise PolicyNftError(msg)
        self.applied.append(text)

    def list_json(self) -> dict[str, Any]:
        return {"nftables": []}
