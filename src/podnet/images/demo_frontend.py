"""The demo's front-end (image `podnet/demo-frontend`): answers on port 80 with who it is and which
back-end pod answered it through the `back-end` Service, found by DNS.

Standard library only, so a pod starts in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _whoami() -> dict[str, str]:
    return {
        "pod": os.environ.get("HOSTNAME") or socket.gethostname(),
        "node": os.environ.get("NODE_NAME", ""),
    }


class Handler(BaseHTTPRequestHandler):
    backend_url = ""

    def log_message(self, format: str, *args: object) -> None:  # quiet: one line per request is noise
        pass

    def _send(self, code: int, body: dict[str, object] | str) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, "ok")
            return
        answer: dict[str, object] = {"frontend": _whoami(), "client": self.client_address[0]}
        if self.backend_url:
            try:
                with urllib.request.urlopen(self.backend_url, timeout=2) as resp:
                    answer["backend"] = resp.read().decode(errors="replace").strip()
            except (urllib.error.URLError, OSError) as e:
                answer["backend_error"] = str(e)
        self._send(200, answer)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="demo-frontend", description=__doc__)
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "80")))
    p.add_argument("--backend-url", default=os.environ.get("BACKEND_URL", ""))
    p.add_argument("--shutdown-delay", type=float, default=float(os.environ.get("SHUTDOWN_DELAY", "2")),
                   help="seconds to keep serving after SIGTERM, while the Service stops sending "
                   "new connections here (default 2)")
    args = p.parse_args(argv)
    Handler.backend_url = args.backend_url
    server = ThreadingHTTPServer(("0.0.0.0", args.port), Handler)
    server.daemon_threads = True

    def drain_then_stop(signum: int, frame: object) -> None:
        # As a well-behaved Kubernetes app does: the endpoint leaves every node's rules within moments
        # of the pod's deletion; keep answering until then instead of refusing connections.
        threading.Timer(args.shutdown_delay, server.shutdown).start()

    signal.signal(signal.SIGTERM, drain_then_stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
