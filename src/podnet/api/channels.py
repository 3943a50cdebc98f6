"""What every remote-command transport shares: the `channel.k8s.io` channel numbers the node agent speaks
(agent/exec_ws.py), the stream flags of a request, and the status sent when the agent gives none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
AGENT_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
"""The subprotocols the node agent speaks, newest first (v5 adds the CLOSE signal for stdin)."""

LOST_STATUS = {"metadata": {}, "status": "Failure", "reason": "InternalError",
               "message": "the node agent closed the exec stream without an exit status"}
TRUE = ("1", "true", "True")


@dataclass(frozen=True)
class StreamFlags:
    """Which standard streams a request asked for, with the kubelet's rule that a TTY has no stderr."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, query: Any) -> StreamFlags:
        flags = {f: str(query.get(f, "")) in TRUE for f in ("stdin", "stdout", "stderr", "tty")}
        if flags["tty"]:
            flags["stderr"] = False  # as the kubelet does: a TTY merges stderr into stdout
        return cls(**flags)

    @property
    def any(self) -> bool:
        return self.stdin or self.stdout or self.stderr
