"""SPDY/3.1 session (api/spdy.py) driven by a client that encodes frames as client-go's spdystream does."""

from __future__ import annotations

import struct
import zlib

import pytest

from podnet.api import spdy


class Client:
    """The client side of the wire: its own compression contexts, frames built byte by byte."""

    def __init__(self) -> None:
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)

    def syn_stream(self, sid: int, headers: dict[str, str], fin: bool = False) -> bytes:
        block = struct.pack(">I", len(headers))
        for k, v in headers.items():
            block += struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v)) + v.encode()
        packed = self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIBB", sid, 0, 0, 0) + packed
        return struct.pack(">HHI", 0x8003, 1, ((1 if fin else 0) << 24) | len(payload)) + payload

    @staticmethod
    def data(sid: int, data: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", sid, ((1 if fin else 0) << 24) | len(data)) + data


async def _session() -> tuple[spdy.Session, list[bytes], list[spdy.Stream]]:
    sent: list[bytes] = []
    streams: list[spdy.Stream] = []

    async def send(raw: bytes) -> None:
        sent.append(raw)

    return spdy.Session(send, streams.append), sent, streams


async def test_a_new_stream_gets_a_syn_reply_and_its_headers() -> None:
    session, sent, streams = await _session()
    c = Client()
    await session.feed(c.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"}))
    assert [s.header("streamType") for s in streams] == ["error"]
    assert streams[0].header("port") == "80" and streams[0].header("requestid") == "0"
    frames = spdy.split_frames(bytearray(b"".join(sent)))
    assert [(f.control, f.ftype, f.stream_id) for f in frames] == [(True, spdy.SYN_REPLY, 1)]
    # the reply's header block decompresses in the client's context to an empty block
    assert c.inflate.decompress(frames[0].payload[4:]) == struct.pack(">I", 0)


async def test_data_split_anywhere_arrives_in_order_then_fin_ends_the_read() -> None:
    session, _, streams = await _session()
    c = Client()
    wire = (c.syn_stream(3, {"streamType": "data", "port": "80"}) + c.data(3, b"hello ")
            + c.data(3, b"world", True))
    for i in range(0, len(wire), 5):  # any split across frames
        await session.feed(wire[i:i + 5])
    s = streams[0]
    assert [await s.read(), await s.read(), await s.read(), await s.read()] == [b"hello ", b"world", b"", b""]


async def test_server_writes_are_data_frames_and_close_sends_fin_once() -> None:
    session, sent, streams = await _session()
    await session.feed(Client().syn_stream(5, {"streamType": "data"}))
    sent.clear()
    await streams[0].write(b"x" * (spdy.DATA_CHUNK + 10))
    await streams[0].close()
    await streams[0].close()
    frames = spdy.split_frames(bytearray(b"".join(sent)))
    assert [(f.control, f.stream_id, len(f.payload), f.flags) for f in frames] == [
        (False, 5, spdy.DATA_CHUNK, 0), (False, 5, 10, 0), (False, 5, 0, spdy.FLAG_FIN)]


async def test_ping_is_echoed_and_unknown_stream_data_is_reset() -> None:
    session, sent, _ = await _session()
    await session.feed(struct.pack(">HHII", 0x8003, spdy.PING, 4, 7))
    await session.feed(Client.data(9, b"?"))
    frames = spdy.split_frames(bytearray(b"".join(sent)))
    assert (frames[0].ftype, frames[0].payload) == (spdy.PING, struct.pack(">I", 7))
    assert frames[1].ftype == spdy.RST_STREAM
    assert struct.unpack(">II", frames[1].payload) == (9, spdy.RST_INVALID_STREAM)


async def test_reset_by_the_client_ends_reads_and_goaway_closes_everything() -> None:
    session, _, streams = await _session()
    c = Client()
    await session.feed(c.syn_stream(1, {"streamType": "data"}) + c.syn_stream(3, {"streamType": "error"}))
    await session.feed(struct.pack(">HHIII", 0x8003, spdy.RST_STREAM, 8, 1, spdy.RST_CANCEL))
    assert await streams[0].read() == b""
    await session.feed(struct.pack(">HHIII", 0x8003, spdy.GOAWAY, 8, 3, 0))
    assert session.closed and await streams[1].read() == b""
    with pytest.raises(ConnectionResetError):
        await streams[1].write(b"late")


async def test_not_spdy3_is_a_protocol_error() -> None:
    session, _, _ = await _session()
    with pytest.raises(spdy.ProtocolError, match="unsupported SPDY version 2"):
        await session.feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1")
    session, _, _ = await _session()
    with pytest.raises(spdy.ProtocolError, match="frame of 9437184 bytes is too large"):
        await session.feed(struct.pack(">II", 1, 9 << 20))
