"""Fixtures for the API tests (helpers live in api_support.py: conftest modules share one name)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from api_support import Api, make_api


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    a = await make_api()
    try:
        yield a
    finally:
        await a.client.close()
