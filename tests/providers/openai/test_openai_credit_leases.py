"""A limited key's calls across processes (interface.md "Synchronous calls"; gengate/core/leases.py):
two `gengate serve` on one PostgreSQL database, a burst of calls on both at once on a key that pays
for only a few → the key never goes below zero, what it lost is exactly its usage records' charges,
the refused calls are 429 `insufficient_quota` with nothing sent upstream; a SIGKILLed process's
lease holds its slice until it expires, then the other process can spend it; SIGTERM and idleness
give leases back.

client (official SDK / aiohttp) → two `gengate serve` (no sandbox) → HTTP → the standalone emulator."""

from __future__ import annotations

import asyncio
import math
import secrets
import signal
import time

import aiohttp
import pytest
from harness.openai import add_openai_channel, credits_of, key_id, sdk, usage_records
from harness.services import fresh_pg_database

pytestmark = pytest.mark.timeout(240)

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "lease me"}], "max_tokens": 16}
GPT4O = (2_500_000, 10_000_000)  # shipped credits per million input / output tokens
TTL = 4.0  # GENGATE_CREDIT_LEASE_SECONDS of these servers


def cost(inp: int, out: int) -> int:
    return max(1, math.ceil((inp * GPT4O[0] + out * GPT4O[1]) / 1_000_000))


@pytest.fixture(scope="module")
def pair(make_server, emulator):
    with fresh_pg_database() as pg:
        env = {"GENGATE_SECRET_KEY": secrets.token_urlsafe(24), "GENGATE_CREDIT_LEASE_SECONDS": str(TTL)}
        a = make_server(database_url=pg, sandbox=False, env=env)
        b = make_server(database_url=pg, sandbox=False, env=env)
        add_openai_channel(a, emulator, "leases", models="gpt-4o")
        yield a, b


async def _call(http: aiohttp.ClientSession, server, key: str) -> tuple[int, dict]:
    async with http.post(server.url + "/v1/chat/completions", json=BODY,
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status, await resp.json()


async def _one_call_cost(a, b) -> int:
    """One call's charge (the emulator answers this body the same way every time), once both
    processes serve the channel."""
    _, probe = a.make_named_key(credits=10**9)
    deadline = time.monotonic() + 10
    for server in (a, b):
        while True:
            try:
                reply = await sdk(server, probe).chat.completions.create(**BODY)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    return cost(reply.usage.prompt_tokens, reply.usage.completion_tokens)


def _leases(server, name: str) -> list[dict]:
    return server.db_query(f"SELECT owner, amount, expires_at FROM credit_leases WHERE key_id = {key_id(server, name)}")


async def _until(check, within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.mark.asyncio(loop_scope="function")
async def test_a_burst_on_two_processes_never_overspends(pair, emulator) -> None:
    a, b = pair
    one = await _one_call_cost(a, b)
    k = 20
    start = k * one + one // 2
    name, key = a.make_named_key(credits=start)
    creates = emulator.stats()["openai"]["creates"]
    n = 40
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        results = await asyncio.wait_for(asyncio.gather(
            *(_call(http, server, key) for _ in range(n) for server in (a, b))), 120)
    ok = [reply for status, reply in results if status == 200]
    for status, reply in results:
        assert status in (200, 429), reply
        if status == 429:
            assert reply["error"]["code"] == "insufficient_quota"
    # Every call costs `one`: never more than the key pays for; and slices left in the other
    # process (each less than a reservation) refuse only the last few calls.
    assert k // 2 <= len(ok) <= k, len(ok)
    assert emulator.stats()["openai"]["creates"] - creates == len(ok)  # refused: nothing sent upstream
    rows = usage_records(a, name, 2 * n)
    charged = sum(r["credits"] for r in rows)
    assert charged == len(ok) * one
    assert await _until(lambda: credits_of(a, name) == start - charged, 10), credits_of(a, name)
    assert credits_of(a, name) >= 0
    # Idle for a second: both processes give their leases back.
    assert await _until(lambda: _leases(a, name) == [], 5), _leases(a, name)


@pytest.mark.asyncio(loop_scope="function")
async def test_a_killed_process_lease_expires_then_its_slice_is_spent(pair, emulator) -> None:
    a, b = pair
    one = await _one_call_cost(a, b)
    name, key = a.make_named_key(credits=40 * one)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        assert (await _call(http, a, key))[0] == 200
        assert await _until(lambda: credits_of(a, name) == 39 * one, 5)  # its charge written
        a.kill()  # within its idle second: the lease stays behind
        (held,) = _leases(b, name)
        assert held["amount"] > 0
        served = 0
        while (await _call(http, b, key))[0] == 200:
            served += 1
            assert served < 40
        left = credits_of(b, name)
        assert left >= held["amount"]  # B could not touch A's slice while it was live ...
        await asyncio.sleep(max(0.0, held["expires_at"] - time.time()) + 0.3)
        more = 0
        while (await _call(http, b, key))[0] == 200:  # ... and spends it once it has expired
            more += 1
            assert more < 40
        assert more >= 1
        assert all(r["owner"] != held["owner"] for r in _leases(b, name))  # swept by B's claim
        assert credits_of(b, name) >= 0
    usage = usage_records(b, name, 1 + served + more + 2)
    assert sum(r["credits"] for r in usage) == 40 * one - credits_of(b, name)
    a.start()


@pytest.mark.asyncio(loop_scope="function")
async def test_sigterm_gives_the_leases_back(pair) -> None:
    a, b = pair
    one = await _one_call_cost(a, b)
    name, key = a.make_named_key(credits=100 * one)
    assert (await sdk(b, key).chat.completions.create(**BODY)).usage is not None
    assert len(_leases(a, name)) == 1
    assert b.stop(signal.SIGTERM) in (0, -signal.SIGTERM)  # within its idle second (uvicorn re-raises it)
    assert _leases(a, name) == []
    assert await _until(lambda: credits_of(a, name) == 99 * one, 5)
    b.start()
