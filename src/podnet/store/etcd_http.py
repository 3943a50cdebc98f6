"""HTTP transport to etcd's v3 JSON gateway (`/v3/kv/*`, `/v3/watch`), with failover.

Every etcd member serves the gRPC-gateway on its client URL: the same v3 API as gRPC,
as JSON over HTTP/1.1 (keys and values base64, int64 fields as strings, zero values
left out). Unary calls are `POST /v3/kv/range|txn|compaction`; a watch is one
`POST /v3/watch` whose response streams newline-separated JSON messages.

Failover: the transport keeps a preferred endpoint and moves to the next one whenever a
call cannot reach it (connection refused or reset, no answer in time) or the member says
it cannot serve right now (gRPC codes Unavailable / DeadlineExceeded / ResourceExhausted,
e.g. "etcdserver: leader changed" during an election). It keeps cycling through the
endpoints, with a short pause after each full round, until the call's deadline. One attempt
gets a third of the call's timeout: a follower that forwarded a write to a leader that just
died holds it until etcd's own request timeout (~7 s), while another member may already
have a new leader.

A write whose request left this process but whose answer never came may or may not have
been applied. `call` reports that as `ambiguous=True` alongside the final answer, so the
store can recognise its own write when the retry finds it already there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp

from podnet.store.base import StoreError

Json = dict[str, Any]

CODE_INVALID_ARGUMENT = 3
CODE_OUT_OF_RANGE = 11  # "required revision has been compacted" / "... is a future revision"
RETRIABLE_CODES = frozenset({4, 8, 14})  # DeadlineExceeded, ResourceExhausted, Unavailable

_ATTEMPT_SHARE = 3  # one attempt may use 1/3 of the call's timeout (at least _ATTEMPT_MIN seconds)
_ATTEMPT_MIN = 1.0
_ROUND_PAUSE = 0.05  # seconds between two full rounds over the endpoints (doubles, up to 0.4 s)
_ROUND_PAUSE_MAX = 0.4
_READ_CHUNK = 1 << 16


class EtcdUnavailable(StoreError):
    """No etcd endpoint gave an answer before the deadline."""


class EtcdRequestError(StoreError):
    """etcd answered with an error that a retry would not change."""

    def __init__(self, code: int, message: str):
        super().__init__(f"etcd refused the request: {message} (code {code})")
        self.code = code
        self.etcd_message = message


class _Retry(Exception):
    """One attempt failed in a way another attempt (maybe on another endpoint) may fix."""

    def __init__(self, reason: str, ambiguous: bool):
        super().__init__(reason)
        self.reason = reason
        self.ambiguous = ambiguous


def normalize_endpoint(text: str) -> str:
    """`HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT` → a base URL without a trailing slash.
    Raises ValueError naming the value and the accepted form."""
    raw = text.strip()
    url = raw if "://" in raw else f"http://{raw}"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None \
            or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"etcd endpoint {text!r} is not valid; use HOST:PORT or http://HOST:PORT "
                         "(e.g. 127.0.0.1:2379)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def _error_of(body: Json) -> tuple[int, str] | None:
    if "error" in body or ("code" in body and "header" not in body and "result" not in body):
        message = str(body.get("message") or body.get("error") or "unknown error")
        return int(body.get("code") or 2), message
    return None


class _Rounds:
    """One call's walk over the endpoints until its deadline: what each failed attempt said, and a
    pause after every full round (from _ROUND_PAUSE, doubling up to _ROUND_PAUSE_MAX)."""

    def __init__(self, endpoints: int, deadline: float):
        self.endpoints = endpoints
        self.deadline = deadline
        self.errors: list[str] = []
        self.attempts = 0
        self.pause = _ROUND_PAUSE

    async def failed(self, error: str) -> None:
        """Note one failed attempt; after the last endpoint of a round, wait before the next round."""
        self.errors.append(error)
        self.attempts += 1
        if self.attempts % self.endpoints == 0:
            await asyncio.sleep(min(self.pause, max(0.0, self.deadline - time.monotonic())))
            self.pause = min(self.pause * 2, _ROUND_PAUSE_MAX)

    def last_round(self) -> str:
        """The errors of the last round, for the final message."""
        return "; ".join(self.errors[-self.endpoints:]) or "no attempt made"


class EtcdHttp:
    """Unary calls and watch streams against a list of etcd client URLs."""

    def __init__(self, endpoints: list[str], timeout: float):
        if not endpoints:
            raise ValueError("etcd store needs at least one endpoint (HOST:PORT)")
        if timeout <= 0:
            raise ValueError(f"etcd timeout must be positive, got {timeout}")
        self.endpoints = [normalize_endpoint(e) for e in endpoints]
        self.timeout = timeout
        self._preferred = 0
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self.closed = False
        self.failed_attempts = 0  # calls or stream opens that had to try another endpoint (or again)
        self.stream_reconnects = 0  # watch streams reopened after they broke

    # -- sessions ---------------------------------------------------------------------------

    def _unary(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        return self._session

    def _streams(self) -> aiohttp.ClientSession:
        # One connection per watch for as long as it lives: no pool limit here.
        if self._watch_session is None:
            self._watch_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._watch_session

    async def close(self) -> None:
        self.closed = True
        for session in (self._session, self._watch_session):
            if session is not None:
                await session.close()
        self._session = self._watch_session = None

    def _advance(self, failed: int) -> None:
        if self._preferred == failed:
            self._preferred = (failed + 1) % len(self.endpoints)

    async def _attempt_failed(self, rounds: _Rounds, index: int, error: str) -> None:
        """Endpoint `index` failed an attempt: prefer the next one, count it, pause after a round."""
        self._advance(index)
        self.failed_attempts += 1
        await rounds.failed(f"{self.endpoints[index]}: {error}")

    # -- unary ------------------------------------------------------------------------------

    async def call(self, path: str, body: Json) -> tuple[Json, bool]:
        """POST `body` to `path` on the preferred endpoint, failing over until the deadline.
        Returns (answer, ambiguous): ambiguous is True when an earlier attempt may have been
        applied. Raises EtcdRequestError for an error answer that is final, EtcdUnavailable
        when the deadline passes."""
        if self.closed:
            raise StoreError("etcd store is closed")
        deadline = time.monotonic() + self.timeout
        ambiguous = False
        rounds = _Rounds(len(self.endpoints), deadline)
        while True:
            if self.closed:
                raise StoreError("etcd store is closed")
            index = self._preferred
            endpoint = self.endpoints[index]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            attempt_timeout = min(remaining, max(_ATTEMPT_MIN, self.timeout / _ATTEMPT_SHARE))
            try:
                answer = await self._attempt(endpoint, path, body, attempt_timeout)
                return answer, ambiguous
            except _Retry as e:
                ambiguous = ambiguous or e.ambiguous
                await self._attempt_failed(rounds, index, e.reason)
        outcome = " (the request may or may not have been applied)" if ambiguous else ""
        raise EtcdUnavailable(f"no etcd endpoint answered {path} within {self.timeout:g}s{outcome}: "
                              f"{rounds.last_round()}")

    async def _attempt(self, endpoint: str, path: str, body: Json, remaining: float) -> Json:
        timeout = aiohttp.ClientTimeout(total=remaining)
        try:
            async with self._unary().post(endpoint + path, json=body, timeout=timeout) as resp:
                raw = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectorError as e:
            raise _Retry(f"cannot connect ({e.os_error or e})", ambiguous=False) from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise _Retry(f"no answer ({type(e).__name__}: {e})", ambiguous=True) from e
        try:
            answer = json.loads(raw)
        except ValueError:
            raise StoreError(f"etcd at {endpoint} answered {path} with HTTP {status} and a body "
                             f"that is not JSON: {raw[:200]!r}") from None
        if not isinstance(answer, dict):
            raise StoreError(f"etcd at {endpoint} answered {path} with {raw[:200]!r}")
        err = _error_of(answer)
        if err is not None:
            code, message = err
            if code in RETRIABLE_CODES:
                raise _Retry(f"{message} (code {code})", ambiguous=True)
            raise EtcdRequestError(code, message)
        return cast(Json, answer)

    # -- watch streams ----------------------------------------------------------------------

    async def open_stream(self, path: str, body: Json) -> tuple[aiohttp.ClientResponse, str]:
        """Start a streaming POST (a watch) on the first endpoint that accepts it, failing over
        until the deadline. The caller reads it with `messages` and must `release()` it."""
        if self.closed:
            raise StoreError("etcd store is closed")
        deadline = time.monotonic() + self.timeout
        rounds = _Rounds(len(self.endpoints), deadline)
        while time.monotonic() < deadline:
            index = self._preferred
            endpoint = self.endpoints[index]
            # Until the answer's headers: a third of the timeout, as for a unary call.
            attempt = min(max(0.05, deadline - time.monotonic()),
                          max(_ATTEMPT_MIN, self.timeout / _ATTEMPT_SHARE))
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=attempt)
            try:
                resp = await asyncio.wait_for(self._post_stream(endpoint + path, body, timeout), attempt)
            except (aiohttp.ClientError, TimeoutError) as e:
                await self._attempt_failed(rounds, index, f"{type(e).__name__}: {e}")
                continue
            if resp.status != 200:
                raw = await resp.read()
                resp.release()
                raise StoreError(f"etcd at {endpoint} refused {path}: HTTP {resp.status} {raw[:200]!r}")
            return resp, endpoint
        raise EtcdUnavailable(f"no etcd endpoint accepted {path} within {self.timeout:g}s: "
                              f"{rounds.last_round()}")

    async def _post_stream(self, url: str, body: Json,
                           timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        return await self._streams().post(url, json=body, timeout=timeout)

    def note_stream_failure(self, endpoint: str) -> None:
        """A stream from `endpoint` broke: prefer another endpoint from now on."""
        self.stream_reconnects += 1
        if endpoint in self.endpoints:
            self._advance(self.endpoints.index(endpoint))


async def messages(resp: aiohttp.ClientResponse) -> AsyncIterator[Json]:
    """The JSON messages of a gateway stream, one per line (JSON escapes newlines in strings,
    so a raw newline only ever separates messages). Lines may be longer than aiohttp's
    readline limit (a watch replaying history sends its events in one message), hence the
    own buffering. Raises aiohttp errors when the connection breaks; ends at end of stream."""
    buffer = bytearray()
    while True:
        chunk = await resp.content.read(_READ_CHUNK)
        if not chunk:
            if buffer.strip():
                raise aiohttp.ClientPayloadError("etcd watch stream ended inside a message")
            return
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = bytes(buffer[start:end]).strip()
            start = end + 1
            if line:
                message = json.loads(line)
                if isinstance(message, dict):
                    yield message
        del buffer[:start]
