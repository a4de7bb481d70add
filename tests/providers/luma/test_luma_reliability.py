"""Luma tasks against a standalone `gengate emulate` (never killed), through a channel of its own:
an ambiguous create (the reply lost after the job was accepted) reconciled through the upstream's
list to exactly one job; 20 concurrent generations on one secret capped at 4 running upstream;
Idempotency-Key replays; callbacks delivered as Luma-shaped, signed webhooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import lumaai
import pytest
from harness.luma import assert_luma_error, luma_sdk, wait_generation
from harness.webhooks import Receiver

pytestmark = pytest.mark.timeout(240)

CAP = 4


@pytest.fixture(scope="module")
def luma_server(make_server: Any, emulator: Any) -> Iterator[Any]:
    """`gengate serve` (SQLite, no sandbox) whose only Luma channel is the standalone emulator, with a
    secret of its own capped at `CAP` running generations."""
    server = make_server(sandbox=False, start=False, env={"GENGATE_URL_ALLOW_PRIVATE": "1"})
    secret = emulator.new_secret()
    server.add_channel("luma", emulator.provider_url("luma") + "/dream-machine/v1", secret, name="emu-luma",
                       extra=("--max-concurrency", str(CAP)))
    server.upstream, server.secret = emulator, secret
    server.start()
    yield server
    emulator.clear_faults()


def counters(server: Any) -> dict[str, int]:
    return server.upstream.counters(server.secret, "luma")


async def test_ambiguous_create_is_reconciled_to_exactly_one_job(luma_server):
    server = luma_server
    client = luma_sdk(server.url, server.make_key())
    before = counters(server)["creates"]
    server.upstream.fault(provider="luma", op="create", kind="drop_after_accept", count=1, secret=server.secret)
    created = await client.generations.create(model="ray-2", prompt="a reply that never arrives")
    assert created.state == "queued"  # gengate does not know yet whether the job exists
    done = await wait_generation(client, created.id, timeout=60)
    assert done.state == "completed", done
    assert counters(server)["creates"] == before + 1  # found through the list, never sent again
    moves = server.db_query("SELECT e.to_state, e.reason FROM task_events e JOIN tasks t ON t.id = e.task_id "
                            f"WHERE t.public_id = '{created.id}' ORDER BY e.id")
    assert "ambiguous" in [m["to_state"] for m in moves], moves
    assert any(m["reason"] == "reconciled: job found upstream" for m in moves), moves


async def test_twenty_concurrent_generations_never_exceed_the_cap(luma_server):
    server = luma_server
    server.upstream.reset(counters_only=True)
    client = luma_sdk(server.url, server.make_key())
    created = await asyncio.gather(*(client.generations.create(model="ray-2", prompt=f"clip {i}")
                                     for i in range(20)))
    assert len({g.id for g in created}) == 20
    assert all(g.state == "queued" for g in created)  # over the cap they wait in gengate, shown queued
    done = await asyncio.gather(*(wait_generation(client, g.id, timeout=120) for g in created))
    assert all(g.state == "completed" for g in done), [g.state for g in done]
    c = counters(server)
    assert c["creates"] == 20 and c["max_running"] <= CAP, c


async def test_idempotency_key_replays_the_same_generation(luma_server, http):
    server = luma_server
    key = server.make_key()
    client = luma_sdk(server.url, key)
    headers = {"Idempotency-Key": "luma-once"}
    first = await client.generations.create(model="ray-2", prompt="once", extra_headers=headers)
    again = await client.generations.create(model="ray-2", prompt="once", extra_headers=headers)
    assert again.id == first.id
    with pytest.raises(lumaai.UnprocessableEntityError) as err:
        await client.generations.create(model="ray-2", prompt="another body", extra_headers=headers)
    assert_luma_error(err.value, 422)
    assert [g.id for g in (await client.generations.list()).generations] == [first.id]


async def test_callback_url_gets_luma_shaped_signed_webhooks(luma_server, http):
    server = luma_server
    client = luma_sdk(server.url, server.make_key())
    with Receiver() as rx:
        created = await client.generations.create(model="ray-2", prompt="tell me", callback_url=rx.url("/hook"))
        await wait_generation(client, created.id)
        hits = await rx.wait(lambda hits: any(json.loads(h.body)["state"] == "completed" for h in hits))
    bodies = [json.loads(h.body) for h in hits]
    assert all(b["id"] == created.id for b in bodies)
    states = [b["state"] for b in bodies]
    assert states[-1] == "completed" and len(states) == len(set(states)), states
    final = bodies[-1]
    assert final["assets"]["video"].startswith(server.url + "/")
    assert final["request"]["callback_url"] == rx.url("/hook")
    for h in hits:
        assert h.headers["webhook-id"] and h.headers["webhook-signature"].startswith("v1,")
    # The callback URL never went upstream: gengate delivers it itself.
    url = server.upstream.provider_url("luma") + "/dream-machine/v1/generations"
    async with http.get(url, params={"limit": "100"}, headers={"Authorization": f"Bearer {server.secret}"}) as r:
        upstream = (await r.json())["generations"]
    mine = [g for g in upstream if g["request"].get("prompt") == "tell me"]
    assert len(mine) == 1 and "callback_url" not in mine[0]["request"]


async def test_upstream_refusal_and_upstream_errors(luma_server):
    """A definitive refusal (400) is Luma's error with the upstream's detail, refunded; a 500 on create
    proves no job: the generation waits (queued) and is sent again later, once."""
    server = luma_server
    name, key = server.make_named_key(credits=1_000_000)
    client = luma_sdk(server.url, key)
    server.upstream.fault(provider="luma", op="create", kind="status", status=400, count=1, secret=server.secret,
                          message="Prompt not allowed")
    with pytest.raises(lumaai.BadRequestError) as err:
        await client.generations.create(model="ray-2", prompt="refused")
    assert_luma_error(err.value, 400, "Prompt not allowed")
    assert server.credits(name) == 1_000_000

    before = counters(server)["creates"]
    server.upstream.fault(provider="luma", op="create", kind="status", status=500, count=2, secret=server.secret)
    created = await client.generations.create(model="ray-2", prompt="after a hiccup")
    assert created.state == "queued"
    done = await wait_generation(client, created.id, timeout=60)
    assert done.state == "completed", done
    assert counters(server)["creates"] == before + 1
    assert server.credits(name) == 1_000_000 - 200_000
