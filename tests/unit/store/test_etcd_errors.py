"""EtcdStore input checks and the unreachable-cluster error: no etcd process needed."""

from __future__ import annotations

import socket
import time

import pytest

from podnet.store import EtcdStore, StoreError, open_store
from podnet.store.etcd import parse_etcd_url
from podnet.store.etcd_http import EtcdHttp, EtcdUnavailable, normalize_endpoint


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released: connect gets refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("url", "endpoints", "prefix"), [
    ("etcd://127.0.0.1:2379", ["127.0.0.1:2379"], "/registry"),
    ("etcd://10.0.0.1:2379,10.0.0.2:2379, 10.0.0.3:2379", ["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"],
     "/registry"),
    ("etcd://localhost:2379/podnet/prod/", ["localhost:2379"], "/podnet/prod"),
    ("etcd://[::1]:2379", ["[::1]:2379"], "/registry"),
])
def test_url_forms(url: str, endpoints: list[str], prefix: str) -> None:
    assert parse_etcd_url(url) == (endpoints, prefix)


async def test_open_store_gives_an_etcd_store() -> None:
    store = open_store("etcd://127.0.0.1:2379,127.0.0.1:22379/podnet")
    assert isinstance(store, EtcdStore)
    assert store.endpoints == ["http://127.0.0.1:2379", "http://127.0.0.1:22379"]
    assert store.prefix == "/podnet"
    await store.close()


@pytest.mark.parametrize(("url", "message"), [
    ("etcd://", "store URL 'etcd://' names no etcd endpoint; use etcd://HOST:PORT[,HOST:PORT...][/key-prefix]"),
    ("etcd://,", "store URL 'etcd://,' names no etcd endpoint"),
    ("etcd://127.0.0.1",
     "store URL 'etcd://127.0.0.1': endpoint '127.0.0.1' is not HOST:PORT (e.g. 127.0.0.1:2379)"),
    ("etcd://h:2379,h:notaport",
     "store URL 'etcd://h:2379,h:notaport': endpoint 'h:notaport' is not HOST:PORT"),
    ("etcd://h:99999", "store URL 'etcd://h:99999': endpoint 'h:99999' is not HOST:PORT"),
    ("etcd://h:2379/a//b", "store URL 'etcd://h:2379/a//b': key prefix '/a//b' has an empty part"),
])
def test_bad_urls_name_the_part_at_fault(url: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        open_store(url)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("127.0.0.1:2379", "http://127.0.0.1:2379"),
    ("http://127.0.0.1:2379/", "http://127.0.0.1:2379"),
    ("https://etcd.example:2379", "https://etcd.example:2379"),
    ("::1", None), ("ftp://h:1", None), ("http://h:1/v3", None), ("", None),
])
def test_endpoint_forms(endpoint: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=f"etcd endpoint {endpoint!r} is not valid; use HOST:PORT"):
            normalize_endpoint(endpoint)
    else:
        assert normalize_endpoint(endpoint) == expected


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"endpoints": []}, "etcd store needs at least one endpoint (HOST:PORT)"),
    ({"prefix": "registry"},
     "etcd key prefix 'registry' is not valid; use an absolute path such as /registry"),
    ({"timeout": 0}, "etcd timeout must be positive, got 0"),
    ({"history": 0}, "history must be at least 1, got 0"),
])
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"endpoints": ["127.0.0.1:2379"], **kwargs}
    with pytest.raises(ValueError) as err:
        EtcdStore(**args)  # type: ignore[arg-type]
    assert str(err.value) == message


async def test_a_name_with_a_slash_is_refused_before_any_request() -> None:
    store = EtcdStore([f"127.0.0.1:{closed_port()}"], timeout=0.3)
    try:
        with pytest.raises(ValueError, match=r"metadata.name 'a/b' contains '/'"):
            await store.get("services", "default", "a/b")
    finally:
        await store.close()


async def test_unreachable_cluster_fails_in_time_naming_every_endpoint() -> None:
    ports = [closed_port(), closed_port()]
    store = EtcdStore([f"127.0.0.1:{p}" for p in ports], timeout=0.5)
    try:
        start = time.monotonic()
        with pytest.raises(EtcdUnavailable) as err:
            await store.create("services", {"metadata": {"name": "a", "namespace": "default"}})
        assert time.monotonic() - start < 1.5
        text = str(err.value)
        assert text.startswith("no etcd endpoint answered /v3/kv/txn within 0.5s: ")
        for p in ports:
            assert f"http://127.0.0.1:{p}: cannot connect" in text
        assert "may or may not" not in text  # nothing was ever sent
        assert isinstance(err.value, StoreError)
    finally:
        await store.close()


async def test_unreachable_cluster_refuses_a_watch_stream_in_time_naming_every_endpoint() -> None:
    ports = [closed_port(), closed_port()]
    http = EtcdHttp([f"127.0.0.1:{p}" for p in ports], timeout=0.5)
    try:
        start = time.monotonic()
        with pytest.raises(EtcdUnavailable) as err:
            await http.open_stream("/v3/watch", {"create_request": {"key": "L3g="}})
        assert time.monotonic() - start < 1.5
        text = str(err.value)
        assert text.startswith("no etcd endpoint accepted /v3/watch within 0.5s: ")
        for p in ports:
            assert f"http://127.0.0.1:{p}: ClientConnectorError: " in text
        assert http.failed_attempts >= 2
    finally:
        await http.close()


async def test_closed_store_refuses_calls() -> None:
    store = EtcdStore([f"127.0.0.1:{closed_port()}"], timeout=0.3)
    await store.close()
    with pytest.raises(StoreError, match="etcd store is closed"):
        await store.get("services", "default", "a")
    assert [e async for e in store.watch("services", None, 0)] == []
