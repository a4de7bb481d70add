"""Fixtures of the Kling tests: `kling(server, key)` → a `KlingClient`; `kling_emulator` → a standalone
`gengate emulate` whose secrets are `AK|SK` pairs (for JWT, fault and reconcile tests); `gw` → a
gengate server whose one Kling channel is that emulator."""

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


@pytest.fixture(scope="module")
def gw(make_server, kling_emulator: KlingEmulator) -> Iterator[GengateServer]:
    """`gengate serve` (no sandbox) with one Kling channel on the emulator, its own `AK|SK` pair
    (`gw.secret`); faults a test added are cleared after the module."""
    server = make_server(sandbox=False, start=False, env={"GENGATE_URL_ALLOW_PRIVATE": "1"})
    secret = kling_emulator.new_secret()
    server.add_channel("kling", kling_emulator.provider_url("kling"), secret, name="emu-kling")
    server.upstream, server.secret = kling_emulator, secret
    server.start()
    yield server
    kling_emulator.clear_faults()
