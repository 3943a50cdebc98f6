"""The nftables adapter: `Nft` protocol, `RealNft` (the `nft` binary), `NftError`.

`FakeNft` (podnet.proxy.fake, over the rule interpreter of nft_interp.py) implements the same
protocol in memory.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Protocol

from podnet.proxy.render import FAMILY, TABLE


class NftError(Exception):
    """`nft` refused a transaction or could not run; the message carries nft's own words."""


class Nft(Protocol):
    def apply(self, text: str) -> None:
        """Apply one transaction (nft -f syntax) atomically; raise NftError on failure."""

    def list_ruleset_json(self) -> dict[str, Any]:
        """`nft -j list table ip podnet` (an empty `{"nftables": []}` when the table does not exist)."""


def first_lines(text: str, n: int = 12) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    more = f"\n... ({len(lines) - n} more lines)" if len(lines) > n else ""
    return "\n".join(lines[:n]) + more


def table_missing(e: NftError) -> bool:
    msg = str(e)
    return "No such file or directory" in msg and "network namespace" not in msg


class RealNft:
    """Runs `nft` in the current network namespace, or in `netns` via `ip netns exec`."""

    def __init__(self, netns: str | None = None, nft_binary: str = "nft", timeout: float = 120.0):
        self.netns = netns
        self.nft_binary = nft_binary
        self.timeout = timeout

    def _cmd(self, *args: str) -> list[str]:
        base = [self.nft_binary, *args]
        return ["ip", "netns", "exec", self.netns, *base] if self.netns else base

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        try:
            proc = subprocess.run(self._cmd(*args), input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError as e:
            raise NftError(f"cannot run {self.nft_binary!r}: {e}") from e
        except subprocess.TimeoutExpired as e:
            raise NftError(f"nft {' '.join(args)} did not finish within {self.timeout:.0f}s") from e
        if proc.returncode != 0 and "Cannot open network namespace" in proc.stderr:
            raise NftError(f"network namespace {self.netns} does not exist (Cannot open network namespace)")
        if proc.returncode != 0:
            where = f" in netns {self.netns}" if self.netns else ""
            raise NftError(f"nft {' '.join(args)}{where} failed (exit {proc.returncode}): "
                           f"{first_lines(proc.stderr or proc.stdout)}")
        return proc.stdout

    def apply(self, text: str) -> None:
        self._run(["-f", "-"], stdin=text)

    def list_ruleset_json(self) -> dict[str, Any]:
        try:
            out = self._run(["-j", "list", "table", FAMILY, TABLE])
        except NftError as e:
            if table_missing(e):
                return {"nftables": []}
            raise
        data: dict[str, Any] = json.loads(out)
        return data

    def list_table_text(self, stateless: bool = True) -> str:
        """The table as nft prints it (`-s`: without counter values), "" when it does not exist."""
        try:
            return self._run([*(["-s"] if stateless else []), "list", "table", FAMILY, TABLE])
        except NftError as e:
            if table_missing(e):
                return ""
            raise

    def delete_table(self) -> None:
        """Remove podnet's table (ignores a missing table)."""
        self.apply(f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")
