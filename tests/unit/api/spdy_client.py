"""A SPDY/3.1 client on a plain TCP connection, as client-go's SPDY round tripper and spdystream speak it:
an HTTP/1.1 request with `Connection: Upgrade`, `Upgrade: SPDY/3.1` and `X-Stream-Protocol-Version`, then,
after `101 Switching Protocols`, SPDY frames built byte by byte with the client's own zlib contexts."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from multidict import CIMultiDict

from podnet.api import spdy

SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY = 1, 2, 3, 6, 7


@dataclass
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SpdyClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    data: dict[int, bytes] = field(default_factory=dict)
    fin: set[int] = field(default_factory=set)
    replied: set[int] = field(default_factory=set)
    reset: set[int] = field(default_factory=set)
    goaway: bool = False
    closed: bool = False
    _next_id: int = 1
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
        self._task = asyncio.create_task(self._read_frames())

    def open_stream(self, headers: dict[str, str]) -> int:
        sid, self._next_id = self._next_id, self._next_id + 2
        block = struct.pack(">I", len(headers))
        for k, v in headers.items():
            block += struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v)) + v.encode()
        packed = self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIBB", sid, 0, 0, 0) + packed
        self.writer.write(struct.pack(">HHI", 0x8003, SYN_STREAM, len(payload)) + payload)
        return sid

    def send(self, sid: int, data: bytes, fin: bool = False) -> None:
        self.writer.write(struct.pack(">II", sid, ((1 if fin else 0) << 24) | len(data)) + data)

    async def _read_frames(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(8)
                first, second = struct.unpack(">II", head)
                payload = await self.reader.readexactly(second & 0xFFFFFF)
                flags = second >> 24
                if first & 0x80000000:
                    ftype = first & 0xFFFF
                    sid = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
                    if ftype == SYN_REPLY:
                        self.inflate.decompress(payload[4:])
                        self.replied.add(sid)
                    elif ftype == RST_STREAM:
                        self.reset.add(sid)
                    elif ftype == GOAWAY:
                        self.goaway = True
                else:
                    sid = first & 0x7FFFFFFF
                    self.data[sid] = self.data.get(sid, b"") + payload
                if flags & 1:
                    self.fin.add(sid)
                self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed = True
            self._changed.set()

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                if self.closed:
                    raise AssertionError("the server closed the connection first")
                self._changed.clear()
                await self._changed.wait()

    async def wait_closed(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not self.closed:
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.writer.close()


async def upgrade(port: int, path: str, query: list[tuple[str, str]], protocols: str | None,
                  headers: dict[str, str] | None = None) -> tuple[Answer, SpdyClient | None]:
    """Send the upgrade request; the server's answer and, after a 101, the SPDY client on the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"POST {path}?{urlencode(query)} HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 0",
             "Connection: Upgrade", "Upgrade: SPDY/3.1"]
    if protocols is not None:
        lines.append(f"X-Stream-Protocol-Version: {protocols}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    hdrs: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        if line:
            k, _, v = line.partition(":")
            hdrs.add(k.strip(), v.strip())
    status = int(status_line.split()[1])
    if status == 101:
        return Answer(status, hdrs, b""), SpdyClient(reader, writer)
    body = await reader.readexactly(int(hdrs.get("Content-Length", "0")))
    writer.close()
    return Answer(status, hdrs, body), None
