"""Fixtures of the Suno tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session that never reuses a connection: these tests run CLI commands (which block
    the event loop) between requests, long enough for the server to close an idle keep-alive
    connection whose close the client has not read yet."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), cookie_jar=aiohttp.DummyCookieJar(),
                                     connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session
