"""Fixtures of the Kling tests: `kling(server, key)` → a `KlingClient`; `kling_emulator` → a standalone
`gengate emulate` whose secrets are `AK|SK` pairs (for JWT, fault and reconcile tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import aiohttp
import pytest
from harness.kling import KlingClient, KlingEmulator
from harness.processes import GengateServer


@pytest.fixture
def kling(http: aiohttp.ClientSession) -> Callable[..., KlingClient]:
    def make(server: GengateServer | str, key: str | None) -> KlingClient:
        return KlingClient(http, server if isinstance(server, str) else server.url, key)

    return make


@pytest.fixture(scope="module")
def kling_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KlingEmulator]:
    emu = KlingEmulator(tmp_path_factory.mktemp("kling-emulator")).start()
    try:
        yield emu
    finally:
        emu.stop()
