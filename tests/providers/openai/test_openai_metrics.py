"""`/metrics` moves for relay calls (interface.md "Operators and key holders"): upstream requests by
provider/channel/outcome and their duration for chat (stream and not), Responses, embeddings and
images; credits reserved, settled and refunded for a limited key.

client (official SDK) → `gengate serve --sandbox` (subprocess) → its in-process OpenAI emulator."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from harness.metrics import sample
from harness.openai import credits_of, sdk, usage_records

pytestmark = pytest.mark.timeout(180)

HI = [{"role": "user", "content": "count me"}]


async def scrape(http: aiohttp.ClientSession, server) -> str:
    async with http.get(f"{server.url}/metrics") as r:
        assert r.status == 200, await r.text()
        return await r.text()


async def test_relay_calls_move_the_upstream_and_credit_counters(make_server, http) -> None:
    server = make_server()
    name, key = server.make_named_key(credits=5_000_000)
    before = await scrape(http, server)
    c = sdk(server, key)
    await c.chat.completions.create(model="gpt-4o-mini", messages=HI)
    [ch async for ch in await c.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)]
    await c.responses.create(model="gpt-4o-mini", input="count me")
    await c.embeddings.create(model="text-embedding-3-small", input="count me")
    await c.images.generate(model="dall-e-3", prompt="a counter", response_format="b64_json")
    rows = usage_records(server, name, 5)
    charged = sum(r["credits"] for r in rows)
    for _ in range(50):  # the batch that charges the key is written after the replies
        if credits_of(server, name) == 5_000_000 - charged:
            break
        await asyncio.sleep(0.1)
    after = await scrape(http, server)

    def moved(metric: str, **labels: str) -> float:
        return sample(after, metric, **labels) - sample(before, metric, **labels)

    assert moved("gengate_upstream_requests_total", provider="openai", outcome="2xx") == 5, after
    assert moved("gengate_upstream_request_duration_seconds_count", provider="openai") == 5
    assert moved("gengate_upstream_request_duration_seconds_sum", provider="openai") > 0
    channels = {m for m in re.findall(r'^gengate_upstream_requests_total\{.*channel="([^"]*)".*provider="openai"',
                                      after, re.M)}
    assert channels and "unknown" not in channels  # the channel's name, as `channels list` shows it
    reserved, settled = moved("gengate_credits_total", kind="reserved"), moved("gengate_credits_total", kind="settled")
    refunded = moved("gengate_credits_total", kind="refunded")
    assert settled == charged > 0
    assert reserved == settled + refunded and refunded > 0  # reservations are upper bounds
