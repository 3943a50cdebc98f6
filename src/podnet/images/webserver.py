"""Stand-ins for web server images (nginx, httpd, hello-app, whoami): HTTP pages naming the pod.

    python -m podnet.images.webserver --flavor nginx --port 80 [ignored image args...]
"""

from __future__ import annotations

import argparse
import html
import socket
import sys
from collections.abc import Sequence

from podnet.images.httpserve import Request, Response, serve_until_signal

NGINX_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>Served by pod <b>{host}</b> (podnet built-in nginx).</p>
</body>
</html>
"""

HTTPD_PAGE = "<html><body><h1>It works!</h1><p>Served by pod {host}</p></body></html>\n"


def _local_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ""


def make_handler(flavor: str) -> WebHandler:
    return WebHandler(flavor)


class WebHandler:
    def __init__(self, flavor: str):
        self.flavor = flavor

    async def __call__(self, req: Request) -> Response:
        host = socket.gethostname()
        if req.path == "/healthz":
            return Response(200, "ok\n")
        if self.flavor == "whoami":
            lines = [f"Hostname: {host}", f"IP: {_local_ip()}", f"RemoteAddr: {req.peer[0]}:{req.peer[1]}",
                     f"{req.method} {req.path} HTTP/1.1"]
            lines += [f"{k.title()}: {v}" for k, v in req.headers.items()]
            return Response(200, "\n".join(lines) + "\n")
        if self.flavor == "hello-app":
            return Response(200, f"Hello, world!\nVersion: 1.0.0\nHostname: {host}\n")
        if req.path not in ("/", "/index.html"):
            if self.flavor == "nginx":
                return Response(404, "<html><head><title>404 Not Found</title></head><body>"
                                "<center><h1>404 Not Found</h1></center><hr><center>nginx</center>"
                                "</body></html>\n", "text/html")
            return Response(404, "<html><body><h1>Not Found</h1></body></html>\n", "text/html")
        page = NGINX_PAGE if self.flavor == "nginx" else HTTPD_PAGE
        return Response(200, page.format(host=html.escape(host)), "text/html",
                        {"Server": "nginx" if self.flavor == "nginx" else "Apache"})


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="webserver")
    p.add_argument("--flavor", choices=("nginx", "httpd", "hello-app", "whoami"), default="nginx")
    p.add_argument("--port", type=int, default=80)
    ns, _ignored = p.parse_known_args(argv)

    return serve_until_signal(make_handler(ns.flavor), ns.port, None,
                              ready=f"{ns.flavor}: listening on :{ns.port}", prog=ns.flavor)


if __name__ == "__main__":
    sys.exit(main())
