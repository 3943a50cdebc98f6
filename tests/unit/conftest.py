"""Unit tests never touch the machine's own state root (/var/lib/podnet): each test gets one of its own
(a test that joined a cluster once left its link in /var/lib/podnet/joined, listed by `podnet list`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_state_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODNET_STATE_ROOT", str(tmp_path_factory.mktemp("state-root")))
