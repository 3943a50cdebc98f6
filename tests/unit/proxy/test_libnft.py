"""The libnftables adapter's choice: the library when it loads, the `nft` binary when it does not."""

from __future__ import annotations

import pytest

from podnet.proxy.libnft import LibNft, LibUnavailable, open_nft
from podnet.proxy.nft import RealNft


def test_a_missing_library_falls_back_to_the_nft_binary() -> None:
    nft = open_nft("some-netns", timeout=7, library="libnftables-not-here.so.0")
    assert isinstance(nft, RealNft)
    assert (nft.netns, nft.timeout) == ("some-netns", 7)


def test_a_missing_library_is_reported_by_its_path() -> None:
    with pytest.raises(LibUnavailable, match=r"cannot load libnftables-not-here\.so\.0"):
        LibNft(library="libnftables-not-here.so.0")
