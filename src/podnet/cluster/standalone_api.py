"""An API server alone, without nodes or controllers: `python -m podnet.cluster.standalone_api`.

Used by the tests that drive the real kubectl and the official client against the API only.
The bearer token comes from the environment (`PODNET_API_TOKEN`), never from the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from podnet.allocators.service_hooks import ServiceHooks
from podnet.api.server import APIServer
from podnet.core.config import ClusterConfig
from podnet.core.tls import ensure_ca_and_cert, server_ssl_context
from podnet.store import open_store

TOKEN_ENV = "PODNET_API_TOKEN"
USAGE = f"usage: {TOKEN_ENV}=... python -m podnet.cluster.standalone_api STORE_URL HOST PORT [TLS_DIR]"


async def serve(store_url: str, host: str, port: int, token: str, tls_dir: Path | None) -> None:
    """Serve until SIGTERM/SIGINT; print one line with the URL once listening (port 0: a free port)."""
    store = open_store(store_url)
    cfg = ClusterConfig()
    service_hooks = ServiceHooks(cfg.service_cidr, cfg.node_port_bounds(),
                                 "" if cfg.lb_pool == "none" else cfg.lb_pool)
    await service_hooks.load(store)
    ctx = None
    if tls_dir is not None:
        _, crt, key = ensure_ca_and_cert(tls_dir, [host])
        ctx = server_ssl_context(crt, key)
    server = APIServer(store, hooks={"services": service_hooks}, tokens=[token] if token else [])
    await server.bootstrap()
    bound = await server.start(host, port, ssl_context=ctx)
    scheme = "https" if ctx is not None else "http"
    print(f"podnet API server listening on {scheme}://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        with contextlib.suppress(Exception):
            await store.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        port = int(args[2])
    except ValueError:
        print(f"PORT must be a number, got {args[2]!r}", file=sys.stderr)
        return 2
    token = os.environ.get(TOKEN_ENV, "")
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(serve(args[0], args[1], port, token, Path(args[3]) if len(args) == 4 else None))
    except (ValueError, OSError) as e:
        print(f"podnet API server: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
