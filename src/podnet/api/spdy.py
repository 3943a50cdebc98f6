"""SPDY/3.1 framing and a server-side session, as kubectl's port-forward speaks it.

kubectl (client-go's spdystream) opens streams with SYN_STREAM, expects a SYN_REPLY for each, sends
DATA frames and ends its side of a stream with an empty DATA frame carrying FLAG_FIN. Header blocks are
zlib-compressed with SPDY/3's fixed dictionary, one compression context per direction for the whole
connection (each block ends with a sync flush). spdystream keeps no flow-control windows, so neither
does this session. The byte stream underneath is either a plain upgraded HTTP/1.1 connection (api/upgrade.py:
`Upgrade: SPDY/3.1`, exec and port-forward) or, since kubectl v1.31, the binary messages of a WebSocket
(`SPDY/3.1+portforward.k8s.io`); this module only sees bytes.

Frame layout (all big-endian):
  control: 1 | version(15)=3 | type(16) | flags(8) | length(24) | payload
  data:    0 | stream-id(31)            | flags(8) | length(24) | payload
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_BUFFERED_FRAME = 8 << 20  # refuse a peer announcing a frame larger than this (kubectl sends <= 32 KiB)
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_CANCEL = 1, 2, 5
DATA_CHUNK = 32 * 1024

# SPDY/3's header compression dictionary (draft-mbelshe-httpbis-spdy-00, section 2.6.10.1): 1,423 bytes.
DICTIONARY = bytes.fromhex(
    "000000076f7074696f6e73000000046865616400000004706f7374000000037075740000000664656c65746500000005"
    "7472616365000000066163636570740000000e6163636570742d636861727365740000000f6163636570742d656e636f"
    "64696e670000000f6163636570742d6c616e67756167650000000d6163636570742d72616e6765730000000361676500"
    "000005616c6c6f770000000d617574686f72697a6174696f6e0000000d63616368652d636f6e74726f6c0000000a636f"
    "6e6e656374696f6e0000000c636f6e74656e742d6261736500000010636f6e74656e742d656e636f64696e6700000010"
    "636f6e74656e742d6c616e67756167650000000e636f6e74656e742d6c656e67746800000010636f6e74656e742d6c6f"
    "636174696f6e0000000b636f6e74656e742d6d64350000000d636f6e74656e742d72616e67650000000c636f6e74656e"
    "742d74797065000000046461746500000004657461670000000665787065637400000007657870697265730000000466"
    "726f6d00000004686f73740000000869662d6d617463680000001169662d6d6f6469666965642d73696e63650000000d"
    "69662d6e6f6e652d6d617463680000000869662d72616e67650000001369662d756e6d6f6469666965642d73696e6365"
    "0000000d6c6173742d6d6f646966696564000000086c6f636174696f6e0000000c6d61782d666f727761726473000000"
    "06707261676d610000001270726f78792d61757468656e7469636174650000001370726f78792d617574686f72697a61"
    "74696f6e0000000572616e676500000007726566657265720000000b72657472792d6166746572000000067365727665"
    "7200000002746500000007747261696c6572000000117472616e736665722d656e636f64696e67000000077570677261"
    "64650000000a757365722d6167656e74000000047661727900000003766961000000077761726e696e67000000107777"
    "772d61757468656e746963617465000000066d6574686f64000000036765740000000673746174757300000006323030"
    "204f4b0000000776657273696f6e00000008485454502f312e310000000375726c000000067075626c69630000000a73"
    "65742d636f6f6b69650000000a6b6565702d616c697665000000066f726967696e313030313031323031323032323035"
    "323036333030333032333033333034333035333036333037343032343035343036343037343038343039343130343131"
    "343132343133343134343135343136343137353032353034353035323033204e6f6e2d417574686f7269746174697665"
    "20496e666f726d6174696f6e323034204e6f20436f6e74656e74333031204d6f766564205065726d616e656e746c7934"
    "303020426164205265717565737434303120556e617574686f72697a656434303320466f7262696464656e343034204e"
    "6f7420466f756e6435303020496e7465726e616c20536572766572204572726f72353031204e6f7420496d706c656d65"
    "6e746564353033205365727669636520556e617661696c61626c654a616e20466562204d617220417072204d6179204a"
    "756e204a756c204175672053657074204f6374204e6f76204465632030303a30303a3030204d6f6e2c205475652c2057"
    "65642c205468752c204672692c205361742c2053756e2c20474d546368756e6b65642c746578742f68746d6c2c696d61"
    "67652f706e672c696d6167652f6a70672c696d6167652f6769662c6170706c69636174696f6e2f786d6c2c6170706c69"
    "636174696f6e2f7868746d6c2b786d6c2c746578742f706c61696e2c746578742f6a6176617363726970742c7075626c"
    "6963707269766174656d61782d6167653d677a69702c6465666c6174652c73646368636861727365743d7574662d3863"
    "6861727365743d69736f2d383835392d312c7574662d2c2a2c656e713d302e"
)


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3: the session ends."""


def encode_headers(headers: dict[str, list[str]]) -> bytes:
    """The uncompressed name/value block: count, then length-prefixed lower-case names and values
    (several values joined by NUL)."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        n = name.lower().encode()
        v = "\x00".join(values).encode()
        out += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, list[str]]:
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos, out = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            (v,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + v].decode()
            pos += 4 + v
            out[name] = value.split("\x00")
    except (struct.error, UnicodeDecodeError) as e:
        raise ProtocolError(f"malformed header block: {e}") from None
    return out


def control_frame(ftype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


@dataclass
class Frame:
    control: bool
    ftype: int  # control frame type; 0 for data
    flags: int
    stream_id: int  # data frames and stream-bound control frames
    payload: bytes


def split_frames(buf: bytearray) -> list[Frame]:
    """Take every complete frame off the front of `buf` (the rest stays for more bytes)."""
    frames: list[Frame] = []
    while len(buf) >= 8:
        first, second = struct.unpack_from(">II", buf, 0)
        length = second & 0xFFFFFF
        if length > MAX_BUFFERED_FRAME:
            raise ProtocolError(f"frame of {length} bytes is too large")
        if len(buf) < 8 + length:
            break
        payload = bytes(buf[8:8 + length])
        del buf[:8 + length]
        flags = second >> 24
        if first & 0x80000000:
            version, ftype = (first >> 16) & 0x7FFF, first & 0xFFFF
            if version != VERSION:
                raise ProtocolError(f"unsupported SPDY version {version}")
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
            frames.append(Frame(True, ftype, flags, sid, payload))
        else:
            frames.append(Frame(False, 0, flags, first & 0x7FFFFFFF, payload))
    return frames


@dataclass
class Stream:
    """One stream the client opened: its headers, the data it sent (b"" once it sent FIN)."""

    session: Session
    id: int
    headers: dict[str, list[str]]
    _incoming: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=64))
    remote_closed: bool = False
    local_closed: bool = False

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]

    async def read(self) -> bytes:
        """The next chunk the client sent; b"" when it closed its side (or reset the stream)."""
        if self.remote_closed and self._incoming.empty():
            return b""
        return await self._incoming.get()

    async def write(self, data: bytes) -> None:
        for i in range(0, len(data), DATA_CHUNK):
            await self.session.send(data_frame(self.id, data[i:i + DATA_CHUNK]))

    async def close(self) -> None:
        """End this side of the stream (an empty DATA frame with FLAG_FIN)."""
        if not self.local_closed:
            self.local_closed = True
            await self.session.send(data_frame(self.id, b"", fin=True))

    def _ended_by_peer(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            with contextlib.suppress(asyncio.QueueFull):
                self._incoming.put_nowait(b"")


class Session:
    """The server side of a SPDY/3.1 connection: `feed` it the bytes the client sends; `on_stream` is
    called (synchronously) with each new stream after its SYN_REPLY went out."""

    def __init__(self, send_bytes: Callable[[bytes], Awaitable[None]],
                 on_stream: Callable[[Stream], None]):
        self._send_bytes = send_bytes
        self._on_stream = on_stream
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._lock = asyncio.Lock()
        self.streams: dict[int, Stream] = {}
        self.last_stream_id = 0  # the newest stream the client opened (GOAWAY's last-good-stream-id)
        self.closed = False

    async def send(self, raw: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("the SPDY session is closed")
        async with self._lock:
            await self._send_bytes(raw)

    def _compress(self, headers: dict[str, list[str]]) -> bytes:
        return self._deflate.compress(encode_headers(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _decompress(self, block: bytes) -> dict[str, list[str]]:
        try:
            return decode_headers(self._inflate.decompress(block))
        except zlib.error as e:
            raise ProtocolError(f"header block does not decompress: {e}") from None

    async def feed(self, data: bytes) -> None:
        """Handle the bytes the client sent (any split across frames)."""
        self._buf += data
        for frame in split_frames(self._buf):
            if frame.control:
                await self._control(frame)
            else:
                await self._data(frame)

    async def _control(self, f: Frame) -> None:
        if f.ftype == SYN_STREAM:
            if len(f.payload) < 10:
                raise ProtocolError("short SYN_STREAM")
            headers = self._decompress(f.payload[10:])
            if f.stream_id in self.streams or f.stream_id % 2 == 0:
                await self._reset(f.stream_id, RST_PROTOCOL_ERROR)
                return
            stream = Stream(self, f.stream_id, headers)
            self.streams[f.stream_id] = stream
            self.last_stream_id = max(self.last_stream_id, f.stream_id)
            await self.send(control_frame(SYN_REPLY, 0, struct.pack(">I", f.stream_id) + self._compress({})))
            if f.flags & FLAG_FIN:
                stream._ended_by_peer()
            self._on_stream(stream)
        elif f.ftype == HEADERS:
            self._decompress(f.payload[4:])  # keep the shared compression context in step
        elif f.ftype == RST_STREAM:
            reset = self.streams.pop(f.stream_id) if f.stream_id in self.streams else None
            if reset is not None:
                stream = reset
                stream.local_closed = True  # a reset stream takes no more frames
                stream._ended_by_peer()
        elif f.ftype == PING:
            await self.send(control_frame(PING, 0, f.payload[:4]))
        elif f.ftype == GOAWAY:
            self.close()
        # SETTINGS and WINDOW_UPDATE: nothing to do (no flow-control windows, as spdystream)

    async def _data(self, f: Frame) -> None:
        stream = self.streams.get(f.stream_id)
        if stream is None:
            await self._reset(f.stream_id, RST_INVALID_STREAM)
            return
        if f.payload:
            await stream._incoming.put(f.payload)
        if f.flags & FLAG_FIN:
            stream._ended_by_peer()

    async def _reset(self, stream_id: int, status: int) -> None:
        await self.send(control_frame(RST_STREAM, 0, struct.pack(">II", stream_id, status)))

    async def serve(self, receive: Callable[[], Awaitable[bytes]]) -> None:
        """Feed the session what `receive()` returns until it returns b"" (the peer closed the byte
        stream); the session is closed when this returns (ProtocolError passes through)."""
        try:
            while chunk := await receive():
                await self.feed(chunk)
        finally:
            self.close()

    async def goaway(self) -> None:
        """Tell the peer no more streams will be accepted (GOAWAY, status OK) before closing."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.send(control_frame(GOAWAY, 0, struct.pack(">II", self.last_stream_id, 0)))

    def forget(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)

    def close(self) -> None:
        self.closed = True
        for stream in list(self.streams.values()):
            stream._ended_by_peer()
        self.streams.clear()
