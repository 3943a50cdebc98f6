"""`LibNft`: the `Nft` protocol over libnftables (libnftables.so.1) kept open for the process's life.

`nft -f` costs a process start, the library's initialisation and a fresh read of the table's
definitions for every transaction; one long-lived `nft_ctx` pays those once (measured in
bench/bench_proxy.py, BENCHMARKS.md). The binding is a few ctypes declarations of libnftables'
stable C API (the library the `nft` binary itself is a thin front end of; Debian's `libnftables1`,
installed with `nftables`). The context's netlink socket belongs to the network namespace the
context was created in: `LibNft(netns=NAME)` creates it on a thread switched into NAME, so the
agent (already in its node's namespace) and a benchmark driving a scratch namespace both work.
ctypes releases the GIL around each call; a lock serialises users of the one context.

Memory: after a transaction libnftables keeps what it parsed as its cache (~1.2 KiB per set
element: ~170 MiB after a full sync of 10,000 Services) until a later command refreshes it, and
glibc keeps the freed heap. So after a large transaction a background thread (holding the lock,
so the next transaction waits for it) frees the context, returns the heap to the system
(`malloc_trim`) and opens a fresh context; small deltas then run against a small cache.

`open_nft()` picks this when the library loads and the `nft` binary (`RealNft`) otherwise.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any

from podnet.core import malloc
from podnet.net.nsthread import run_in_netns
from podnet.proxy.nft import NftError, RealNft, first_lines, table_missing
from podnet.proxy.render import FAMILY, TABLE

LIBRARY = "libnftables.so.1"
OUTPUT_STATELESS = 1 << 2  # enum nft_ctx_output_flags (nftables/libnftables.h)
OUTPUT_JSON = 1 << 4
BIG_TRANSACTION = 256 * 1024  # characters: after a transaction this large, renew the context


class LibUnavailable(Exception):
    """libnftables could not be loaded or gave no context."""


def _load(path: str) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise LibUnavailable(f"cannot load {path}: {e}") from e
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.restype = None
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
    lib.nft_ctx_output_get_flags.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_output_set_flags.restype = None
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


class LibNft:
    """One libnftables context, opened in `netns` (None: the process's current namespace)."""

    def __init__(self, netns: str | None = None, library: str = LIBRARY):
        self.netns = netns
        self._lib = _load(library)
        self._lock = threading.Lock()
        self._ctx: int | None = None
        self._base_flags = 0
        self.renewals = 0  # contexts opened after a large transaction (for tests and benchmarks)
        self._renewer: threading.Thread | None = None
        self._open()

    def _open(self) -> None:
        ctx = run_in_netns(self.netns, lambda: self._lib.nft_ctx_new(0))
        if not ctx:
            raise LibUnavailable("nft_ctx_new returned no context")
        self._ctx = ctx
        if self._lib.nft_ctx_buffer_output(ctx) or self._lib.nft_ctx_buffer_error(ctx):
            self._free()
            raise LibUnavailable("libnftables could not buffer its output")
        self._base_flags = int(self._lib.nft_ctx_output_get_flags(ctx))

    def _free(self) -> None:
        if self._ctx is not None:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None

    def _renew(self) -> None:
        """Runs on its own thread, holding the lock: drop the big cache, trim the heap, reopen."""
        try:
            self._free()
            malloc.trim()
            self._open()
            self.renewals += 1
        except Exception:
            self._ctx = None
        finally:
            self._lock.release()

    def wait_idle(self) -> None:
        """Wait for a context renewal under way (tests, benchmarks)."""
        with self._lock:
            pass

    def close(self) -> None:
        with self._lock:
            self._free()

    def __del__(self) -> None:  # a forgotten context: free it with the object
        try:
            self.close()
        except Exception:
            pass

    def _run(self, cmd: str, flags: int = 0) -> str:
        self._lock.acquire()
        renew = False
        try:
            ctx = self._ctx
            if ctx is None:
                raise NftError("libnftables context is closed")
            self._lib.nft_ctx_output_set_flags(ctx, self._base_flags | flags)
            rc = self._lib.nft_run_cmd_from_buffer(ctx, cmd.encode())
            out = (self._lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
            err = (self._lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
            renew = len(cmd) >= BIG_TRANSACTION or len(out) >= BIG_TRANSACTION
        finally:
            if renew:  # the renewal thread releases the lock when done
                self._renewer = threading.Thread(target=self._renew, name="libnft-renew", daemon=True)
                self._renewer.start()
            else:
                self._lock.release()
        if rc != 0:
            where = f" in netns {self.netns}" if self.netns else ""
            raise NftError(f"libnftables{where} refused the transaction: {first_lines(err or out)}")
        return out

    def apply(self, text: str) -> None:
        self._run(text)

    def list_ruleset_json(self) -> dict[str, Any]:
        try:
            out = self._run(f"list table {FAMILY} {TABLE}", OUTPUT_JSON)
        except NftError as e:
            if table_missing(e):
                return {"nftables": []}
            raise
        data: dict[str, Any] = json.loads(out)
        return data

    def list_table_text(self, stateless: bool = True) -> str:
        try:
            return self._run(f"list table {FAMILY} {TABLE}", OUTPUT_STATELESS if stateless else 0)
        except NftError as e:
            if table_missing(e):
                return ""
            raise

    def delete_table(self) -> None:
        self.apply(f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")


def open_nft(netns: str | None = None, timeout: float = 120.0, library: str = LIBRARY) -> LibNft | RealNft:
    """A kept-open libnftables context when the library loads, else the `nft` binary."""
    try:
        return LibNft(netns, library)
    except LibUnavailable:
        return RealNft(netns, timeout=timeout)
