"""Container logs in CRI format (`<RFC3339Nano> <stream> <P|F> <text>`), read back for `kubectl logs`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    stream: str
    text: bytes  # one full line, without the newline


def parse_lines(data: bytes) -> list[LogLine]:
    """Parse CRI log lines, joining partial (P) lines with the full (F) line that ends them."""
    out: list[LogLine] = []
    pending: dict[str, bytes] = {}
    for raw in data.split(b"\n"):
        if not raw:
            continue
        parts = raw.split(b" ", 3)
        if len(parts) < 4:
            continue
        ts, stream, tag, text = parts[0].decode(), parts[1].decode(), parts[2], parts[3]
        if tag == b"P":
            pending[stream] = pending.get(stream, b"") + text
            continue
        out.append(LogLine(ts, stream, pending.pop(stream, b"") + text))
    return out


def format_lines(lines: list[LogLine], *, timestamps: bool) -> bytes:
    if timestamps:
        return b"".join(ln.timestamp.encode() + b" " + ln.text + b"\n" for ln in lines)
    return b"".join(ln.text + b"\n" for ln in lines)


def read_log(path: Path, *, tail: int | None = None, timestamps: bool = False,
             limit_bytes: int | None = None) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    lines = parse_lines(data)
    if tail is not None and tail >= 0:
        lines = lines[-tail:] if tail else []
    out = format_lines(lines, timestamps=timestamps)
    if limit_bytes is not None and limit_bytes >= 0:
        out = out[:limit_bytes]
    return out


async def follow_log(path: Path, *, tail: int | None, timestamps: bool,
                     finished: Callable[[], bool], poll: float = 0.2) -> AsyncIterator[bytes]:
    """Yield what the log holds (tail applied), then new lines until `finished()` says the container ended."""
    offset = 0
    first = True
    carry = b""
    while True:
        done = finished()
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            chunk = carry + chunk
            cut = chunk.rfind(b"\n") + 1
            chunk, carry = chunk[:cut], chunk[cut:]
            lines = parse_lines(chunk)
            if first and tail is not None and tail >= 0:
                lines = lines[-tail:] if tail else []
            if lines:
                yield format_lines(lines, timestamps=timestamps)
        first = False
        if done:
            return
        await asyncio.sleep(poll)
