"""Token billing of the relay, on SQLite and PostgreSQL: reserve an upper bound, settle from `usage`;
a stream the client drops (or the upstream cuts) is billed for what was relayed; out of credit is
429 `insufficient_quota` with nothing sent upstream; every request leaves a usage record; queued
settlements are written before a SIGTERM'd server exits."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import openai
import pytest
from harness.openai import assert_openai_error, credits_of, sdk, usage_records

pytestmark = pytest.mark.timeout(240)

HI = [{"role": "user", "content": "bill me please"}]
GPT4O = (2_500_000, 10_000_000)  # shipped credits per million input / output tokens


def cost(inp: int, out: int, price: tuple[int, int] = GPT4O) -> int:
    return max(1, math.ceil((inp * price[0] + out * price[1]) / 1_000_000))


@pytest.fixture(scope="module")
def server(backend, make_server):
    return make_server(database_url=backend.url)


async def _settled(server, name: str, expected: int, within: float = 10) -> int | None:
    for _ in range(int(within / 0.1)):
        if credits_of(server, name) == expected:
            break
        await asyncio.sleep(0.1)
    return credits_of(server, name)


async def test_full_calls_settle_from_usage(server) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    c = sdk(server, key)
    reply = await c.chat.completions.create(model="gpt-4o", messages=HI)
    charged = cost(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    chunks = [ch async for ch in await c.chat.completions.create(
        model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True})]
    usage = chunks[-1].usage
    charged += cost(usage.prompt_tokens, usage.completion_tokens)
    emb = await c.embeddings.create(model="text-embedding-3-small", input="bill this")
    charged += cost(emb.usage.prompt_tokens, 0, (20_000, 0))
    assert await _settled(server, name, 1_000_000 - charged) == 1_000_000 - charged
    rows = usage_records(server, name, 3)
    assert sum(r["credits"] for r in rows) == charged
    kinds = server.db_query(f"SELECT kind, amount FROM ledger_entries WHERE key_id = {rows[0]['key_id']}")
    assert sum(r["amount"] for r in kinds if r["kind"] != "grant") == charged  # the ledger explains it


async def test_abandoned_stream_is_billed_for_what_was_relayed(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    words = " ".join(f"w{i}" for i in range(400))
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": words}], "max_tokens": 400,
            "stream": True}
    full = [ch async for ch in await sdk(server, key).chat.completions.create(
        model="gpt-4o", messages=body["messages"], max_tokens=400, stream=True,
        stream_options={"include_usage": True})]
    full_cost = cost(full[-1].usage.prompt_tokens, full[-1].usage.completion_tokens)
    after_full = await _settled(server, name, 1_000_000 - full_cost)
    assert after_full == 1_000_000 - full_cost
    async with http.post(server.url + "/v1/chat/completions", json=body,
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200
        got = b""
        while got.count(b"\n\n") < 3:
            got += await resp.content.readany()
        resp.close()  # the client goes away after 3 chunks of ~400
    await asyncio.sleep(0.3)  # let this loop really close the socket (usage_records blocks it)
    rows = usage_records(server, name, 2)
    dropped = rows[1]
    assert dropped["stream"] in (1, True) and dropped["error"] == "stream ended early", rows
    assert 3 <= dropped["output_tokens"] < 200, dropped  # what was relayed, not the whole reply
    assert 0 < dropped["credits"] < full_cost
    assert await _settled(server, name, after_full - dropped["credits"]) == after_full - dropped["credits"]


async def test_stream_cut_by_the_upstream_bills_what_was_relayed(server) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.fault(provider="openai", op="create", kind="drop_after_accept", after_chunks=3, count=1)
    got = []
    with pytest.raises(openai.APIError):
        async for ch in await sdk(server, key).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "cut-me-midway"}], stream=True):
            got.append(ch)
    assert len(got) == 3
    row = usage_records(server, name, 1)[0]
    assert row["output_tokens"] == 3 and 0 < row["credits"]
    assert await _settled(server, name, 1_000_000 - row["credits"]) == 1_000_000 - row["credits"]


async def test_out_of_credit_is_429_and_nothing_goes_upstream(server) -> None:
    name, key = server.make_named_key(credits=10)
    before = server.upstream.stats()["openai"]["creates"]
    c = sdk(server, key)
    with pytest.raises(openai.RateLimitError) as exc:
        await c.chat.completions.create(model="gpt-4o", messages=HI)
    err = assert_openai_error(exc.value, 429, "insufficient_quota")
    assert err["type"] == "insufficient_quota"
    with pytest.raises(openai.RateLimitError):
        async for _ in await c.chat.completions.create(model="gpt-4o", messages=HI, stream=True):
            pass
    assert server.upstream.stats()["openai"]["creates"] == before
    assert credits_of(server, name) == 10
    rows = usage_records(server, name, 2)
    assert [(r["status"], r["credits"]) for r in rows] == [(429, 0), (429, 0)]


async def test_unlimited_key_records_usage_and_the_ledger(server) -> None:
    name, key = server.make_named_key()
    c = sdk(server, key)
    await asyncio.gather(*(c.chat.completions.create(model="gpt-4o-mini", messages=HI) for _ in range(20)))
    rows = usage_records(server, name, 20)
    assert all(r["status"] == 200 and r["credits"] >= 1 and r["latency_ms"] > 0 for r in rows)
    total = server.db_query(f"SELECT SUM(amount) AS s FROM ledger_entries WHERE key_id = {rows[0]['key_id']}"
                            " AND kind = 'usage'")[0]["s"]
    assert total == sum(r["credits"] for r in rows)
    assert credits_of(server, name) is None


# These two open many connections at once and stop a server under them; each runs on an event loop of
# its own, so nothing either leaves behind (half-closed keep-alive sockets of earlier clients) can stall
# the session loop that later tests share (seen as calls whose replies were never read).
@pytest.mark.asyncio(loop_scope="function")
async def test_sigterm_writes_queued_settlements(backend, make_server) -> None:
    server = make_server(database_url=backend.new_database() if backend.url else None)
    name, key = server.make_named_key(credits=1_000_000)
    c = sdk(server, key)
    async with c:
        replies = await asyncio.gather(*(c.chat.completions.create(model="gpt-4o", messages=HI) for _ in range(10)))
    assert server.stop() in (0, -15)  # at once (uvicorn re-raises SIGTERM after its graceful exit)
    charged = sum(cost(r.usage.prompt_tokens, r.usage.completion_tokens) for r in replies)
    assert credits_of(server, name) == 1_000_000 - charged
    assert len(server.db_query("SELECT id FROM usage_records")) == 10


@pytest.mark.asyncio(loop_scope="function")
async def test_concurrent_calls_never_overspend_a_limited_key(server) -> None:
    """The balance is held in the process (no database write per call): N calls at once on a key that
    pays for only a few of them → at most what the key holds is charged, the rest are 429 with nothing
    sent upstream, and every call has its usage record."""
    _, probe = server.make_named_key(credits=1_000_000)
    body = {"model": "gpt-4o", "messages": HI, "max_tokens": 16}
    async with sdk(server, probe) as probing:
        first = await probing.chat.completions.create(**body)
    one = cost(first.usage.prompt_tokens, first.usage.completion_tokens)
    k = 4
    name, key = server.make_named_key(credits=k * one + one // 2)
    creates = server.upstream.stats()["openai"]["creates"]
    n = 24

    async def call() -> tuple[int, dict]:
        async with http.post(server.url + "/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {key}"}) as resp:
            return resp.status, await resp.json()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        results = await asyncio.wait_for(asyncio.gather(*(call() for _ in range(n))), 120)
    ok = [reply for status, reply in results if status == 200]
    refused = [reply for status, reply in results if status != 200]
    for status, reply in results:
        assert status in (200, 429), reply
        if status == 429:
            assert reply["error"]["code"] == "insufficient_quota" and reply["error"]["type"] == "insufficient_quota"
    # The reservation (an upper bound for 16 output tokens) is at least one call's cost: at most
    # k calls fit, and one more reservation per process is all the contract allows.
    assert 1 <= len(ok) <= k + 1 and len(refused) == n - len(ok), (len(ok), k)
    assert server.upstream.stats()["openai"]["creates"] - creates == len(ok)  # refused: nothing sent
    rows = usage_records(server, name, n)
    assert len(rows) == n and sorted(r["status"] for r in rows) == [200] * len(ok) + [429] * len(refused)
    charged = sum(r["credits"] for r in rows)
    assert charged == sum(cost(r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"]) for r in ok)
    left = await _settled(server, name, k * one + one // 2 - charged)
    assert left == k * one + one // 2 - charged and left >= 0  # one process: never below zero
