"""The pieces of a plain SPDY/3.1 upgrade without a server: header checks, the X-Stream-Protocol-Version
handshake, the taken-over connection's read buffer, and the exec stream mapping rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from podnet.api import upgrade
from podnet.api.channels import StreamFlags
from podnet.api.errors import APIError
from podnet.api.exec_spdy import PROTOCOLS, ResizeDecoder, error_stream_payload, expected_streams


def _request(*headers: tuple[str, str]) -> Any:
    return make_mocked_request("POST", "/x", headers=CIMultiDict(headers))


def test_upgrade_headers_are_matched_as_apimachinery_does() -> None:
    assert upgrade.wants_upgrade(_request(("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")), "SPDY/3.1")
    assert upgrade.wants_upgrade(_request(("Connection", "keep-alive, upgrade"), ("Upgrade", "spdy/3.1")),
                                 "SPDY/3.1")
    assert not upgrade.wants_upgrade(_request(("Upgrade", "SPDY/3.1")), "SPDY/3.1")
    websocket = _request(("Connection", "Upgrade"), ("Upgrade", "websocket"))
    assert not upgrade.wants_upgrade(websocket, "SPDY/3.1")


def test_negotiation_takes_the_clients_first_supported_protocol_across_repeated_headers() -> None:
    req = _request(("X-Stream-Protocol-Version", "v5.channel.k8s.io"),
                   ("X-Stream-Protocol-Version", " v3.channel.k8s.io , v4.channel.k8s.io"))
    assert upgrade.negotiate(req, PROTOCOLS) == "v3.channel.k8s.io"
    with pytest.raises(upgrade.NegotiationError) as e:
        upgrade.negotiate(_request(("X-Stream-Protocol-Version", "a, b")), ("portforward.k8s.io",))
    resp = e.value.response()
    assert resp.status == 403 and resp.headers.getall("X-Accepted-Stream-Protocol-Versions") == [
        "portforward.k8s.io"]
    with pytest.raises(APIError) as missing:
        upgrade.negotiate(_request(), PROTOCOLS)
    assert (missing.value.code, missing.value.message) == (
        400, "unable to upgrade: X-Stream-Protocol-Version is required")


class FakeTransport:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def is_closing(self) -> bool:
        return False


async def test_the_read_buffer_pauses_the_transport_past_its_limit_and_resumes_when_read() -> None:
    transport = FakeTransport()
    inbox = upgrade._Inbox(transport)  # type: ignore[arg-type]
    reader = asyncio.create_task(inbox.read())
    await asyncio.sleep(0)
    assert inbox.feed_data(b"first") == (False, b"")  # aiohttp's parser contract: not eof, no tail
    assert await reader == b"first"
    inbox.feed_data(b"x" * upgrade.LIMIT)
    inbox.feed_data(b"y")
    assert (transport.paused, transport.resumed) == (1, 0)
    assert await inbox.read() == b"x" * upgrade.LIMIT + b"y"
    assert transport.resumed == 1
    inbox.feed_data(b"last")
    inbox.feed_eof()
    assert await inbox.read() == b"last"
    assert await inbox.read() == b""  # the connection is gone


def test_expected_streams_count_as_the_kubelet_counts_them() -> None:
    tty = StreamFlags.from_query({"stdin": "true", "stdout": "1", "stderr": "true", "tty": "true"})
    assert (tty.stderr, expected_streams(tty, "v4.channel.k8s.io")) == (False, 4)  # error stdin stdout resize
    assert expected_streams(tty, "v2.channel.k8s.io") == 3  # no resize stream before v3
    plain = StreamFlags.from_query({"stdout": "true", "stderr": "true"})
    assert expected_streams(plain, "v4.channel.k8s.io") == 3


def test_error_stream_carries_the_status_json_from_v4_and_a_failures_text_before() -> None:
    failure = json.dumps({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                          "message": "command terminated with non-zero exit code: exit status 2"}).encode()
    success = json.dumps({"metadata": {}, "status": "Success"}).encode()
    assert error_stream_payload("v4.channel.k8s.io", failure) == failure
    assert error_stream_payload("v4.channel.k8s.io", success) == success
    for old in ("v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"):
        want = b"command terminated with non-zero exit code: exit status 2"
        assert error_stream_payload(old, failure) == want
        assert error_stream_payload(old, success) == b""


def test_resize_messages_split_anywhere_and_garbage_stops_the_stream() -> None:
    d = ResizeDecoder()
    wire = b'{"Width":80,"Height":24}\n{"Width":132,"Height":43}\n'
    got = [size for i in range(len(wire)) for size in d.feed(wire[i:i + 1])]
    assert got == [{"Width": 80, "Height": 24}, {"Width": 132, "Height": 43}]
    bad = ResizeDecoder()
    assert bad.feed(b"not json " * 1000) == [] and bad.broken
    assert bad.feed(b'{"Width":1,"Height":1}') == []
