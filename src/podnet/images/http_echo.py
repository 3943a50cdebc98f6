"""hashicorp/http-echo: answers every request with -text.

    python -m podnet.images.http_echo -text="hello" [-listen=:5678] [-status-code=200]
Go flag syntax: -flag=value, -flag value, --flag=value.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from podnet.images.httpserve import Request, Response, serve_until_signal


class UsageError(ValueError):
    pass


def parse_go_flags(argv: Sequence[str], known: set[str], bools: frozenset[str] = frozenset()
                   ) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    args = list(argv)
    while i < len(args):
        a = args[i]
        if not a.startswith("-") or a in ("-", "--"):
            raise UsageError(f"unexpected argument {a!r}")
        name, eq, val = a.lstrip("-").partition("=")
        if name not in known:
            raise UsageError(f"flag provided but not defined: -{name}")
        if not eq:
            if name in bools:
                val = "true"
            else:
                if i + 1 >= len(args):
                    raise UsageError(f"flag needs an argument: -{name}")
                i += 1
                val = args[i]
        out[name] = val
        i += 1
    return out


def parse_listen(listen: str) -> tuple[str | None, int]:
    host, _, port_s = listen.rpartition(":")
    try:
        port = int(port_s)
    except ValueError:
        raise UsageError(f"invalid -listen {listen!r}: want [host]:port") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"invalid -listen {listen!r}: port must be 0-65535")
    return (host.strip("[]") or None), port


def make_handler(text: str, status: int) -> EchoHandler:
    return EchoHandler(text, status)


class EchoHandler:
    def __init__(self, text: str, status: int):
        self.text = text
        self.status = status

    async def __call__(self, req: Request) -> Response:
        if req.path == "/health":
            return Response(200, '{"status":"ok"}\n', "application/json")
        return Response(self.status, self.text + "\n", headers={"X-App-Name": "http-echo"})


def main(argv: Sequence[str] | None = None) -> int:
    try:
        known = {"text", "listen", "status-code", "version"}
        flags = parse_go_flags(sys.argv[1:] if argv is None else argv, known, frozenset({"version"}))
        if "version" in flags:
            print("http-echo v1.0.0 (podnet built-in)")
            return 0
        text = flags.get("text", "")
        if not text:
            raise UsageError("Missing -text option!")
        host, port = parse_listen(flags.get("listen", ":5678"))
        status = int(flags.get("status-code", "200"))
    except (UsageError, ValueError) as e:
        print(f"http-echo: {e}", file=sys.stderr)
        return 127

    ready = f"[INFO] server is listening on {flags.get('listen', ':5678')}"
    return serve_until_signal(make_handler(text, status), port, host, ready=ready, prog="http-echo")


if __name__ == "__main__":
    sys.exit(main())
