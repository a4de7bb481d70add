"""Keys and channels are served from each process's cache, and a CLI change reaches a running server
within 2 s (interface.md: "a running server sees the change within 2 s on every process").

client (aiohttp) → `gengate serve` (subprocess) → HTTP → the standalone Vidu emulator; the CLI writes
the database directly while the server runs. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.timeout(180)

WITHIN = 2.0  # the contract
BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat"}]},
        "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}


async def status_of(http, server, key: str) -> int:
    """An authenticated read of a task that does not exist: 404 when the key works, 401 when not."""
    async with http.get(f"{server.url}/v1/tasks/task_doesnotexist", headers={"Authorization": f"Bearer {key}"}) as r:
        await r.read()
        return r.status


async def first_change(http, server, key: str, want: int, limit: float = 5.0) -> float:
    """Seconds until the key's reads answer `want` (polling every 50 ms); fails after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await status_of(http, server, key) == want:
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {want} within {limit} s")


@pytest.fixture(scope="module")
def server(backend, make_server):
    return make_server(database_url=backend.new_database(), sandbox=False)


async def test_a_revoked_key_is_refused_within_2_s(server, http) -> None:
    name, key = server.make_named_key()
    await asyncio.sleep(WITHIN)  # the server has seen the key's creation (it empties the cache)...
    for _ in range(20):  # ...so the key is cached from here on
        assert await status_of(http, server, key) == 404
    server.cli("keys", "revoke", name)
    assert await first_change(http, server, key, 401) < WITHIN
    await asyncio.sleep(1.2)  # and stays refused after the next config checks
    assert await status_of(http, server, key) == 401


async def test_a_key_created_by_the_cli_works_within_2_s(server, http) -> None:
    assert await status_of(http, server, "sk-not-a-key-at-all") == 401  # an unknown key is refused...
    assert await status_of(http, server, "sk-not-a-key-at-all") == 401  # ...also from the cache
    key = server.make_key()
    assert await first_change(http, server, key, 404) < WITHIN


async def test_an_expired_key_is_refused_at_its_expiry(server, http) -> None:
    # Created through the admin API (no CLI process to wait for, even on a loaded machine), then
    # cached well before it expires.
    deadline = float(int(time.time()) + 10)
    async with http.post(f"{server.url}/admin/api/keys", json={"name": f"exp-{time.time_ns()}", "expires_at": deadline},
                         headers={"Authorization": f"Bearer {server.admin_token}"}) as r:
        assert r.status == 201, await r.text()
        key = (await r.json())["key"]
    assert await first_change(http, server, key, 404) < WITHIN  # works (and is cached)
    while time.time() < deadline - 0.3:
        assert await status_of(http, server, key) == 404
        await asyncio.sleep(0.1)
    await asyncio.sleep(max(0.0, deadline - time.time()) + 0.1)
    assert await status_of(http, server, key) == 401  # checked against the cached expiry, no change needed


async def test_a_disabled_channel_takes_no_new_task_within_2_s(server, emulator, http) -> None:
    """Two channels on one emulator, each with its own secret: the preferred one serves until the CLI
    disables it; from 2 s later every new task goes to the other."""
    first, second = emulator.new_secret(), emulator.new_secret()
    base = emulator.provider_url("vidu")
    server.add_channel("vidu", base, first, name="preferred", extra=("--priority", "0"))
    server.add_channel("vidu", base, second, name="fallback", extra=("--priority", "10"))
    key = server.make_key()
    headers = {"Authorization": f"Token {key}"}

    async def create() -> None:
        async with http.post(f"{server.url}/vidu/v1/tasks", json=BODY, headers=headers) as r:
            assert r.status == 200, await r.text()

    await asyncio.sleep(WITHIN)  # the new channels are loaded
    await create()
    assert (emulator.creates(first), emulator.creates(second)) == (1, 0)
    server.cli("channels", "disable", "preferred")
    await asyncio.sleep(WITHIN)
    for _ in range(3):
        await create()
    assert (emulator.creates(first), emulator.creates(second)) == (1, 3)
    server.cli("channels", "enable", "preferred")
    await asyncio.sleep(WITHIN)
    await create()
    assert (emulator.creates(first), emulator.creates(second)) == (2, 3)
