"""gengate against a standalone `gengate emulate` (Runway channels added with `channels add`): the
channel's `X-Runway-Version` goes upstream, an ambiguous create is never re-sent (Runway offers no
list to reconcile with: the task fails and is refunded), excess tasks wait in gengate as THROTTLED,
and a per-secret cap of 4 holds with 20 tasks in flight."""

from __future__ import annotations

import asyncio

import pytest
from harness.runway import RunwayRaw, assert_runway_error, i2v, png_data_uri, sdk
from runwayml.types.task_retrieve_response import Succeeded, Throttled

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    """One server, three Runway channels on their own secrets: `main` (gen4_turbo, gen4_image; cap 4),
    `old` (gen3a_turbo only; configured with a version the upstream does not support) and `solo`
    (model `gen4_image_turbo` only, cap 1)."""
    server = make_server(sandbox=False, start=False)
    main, old, solo = emulator.new_secret(), emulator.new_secret(), emulator.new_secret()
    url = emulator.provider_url("runway")
    server.add_channel("runway", url, main, name="rw-main",
                       extra=("--models", "gen4_turbo,gen4_image", "--max-concurrency", "4"))
    server.add_channel("runway", url, old, name="rw-old", extra=("--models", "gen3a_turbo", "--option",
                                                                 "version=1999-01-01"))
    server.add_channel("runway", url, solo, name="rw-solo",
                       extra=("--models", "gen4_image_turbo", "--max-concurrency", "1"))
    server.start()
    server.upstream = emulator
    yield server, {"main": main, "old": old, "solo": solo}
    emulator.clear_faults()


async def test_the_channels_version_goes_upstream_not_the_clients(setup, http, emulator):
    server, secrets = setup
    name, key = server.make_named_key(credits=1_000_000)
    raw = RunwayRaw(http, server.url, key, version="2024-11-06")
    # The channel configured with 1999-01-01 is refused upstream whatever the client sent.
    reply = await raw.create(i2v(model="gen3a_turbo", ratio="1280:768"))
    body = assert_runway_error(reply, 400)
    assert "not supported" in str(body), body
    assert emulator.creates(secrets["old"], "runway") == 0
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [{"credits": 1_000_000}]
    # The default channel sends 2024-11-06 even when the client sends an unknown version.
    reply = await RunwayRaw(http, server.url, key, version="1999-01-01").create(i2v())
    assert reply.status == 200, reply.text
    assert emulator.creates(secrets["main"], "runway") >= 1


async def test_an_ambiguous_create_is_not_resent_and_is_refunded(setup, http, emulator):
    server, secrets = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = emulator.creates(secrets["main"], "runway")
    emulator.fault(provider="runway", op="create", kind="drop_after_accept", count=1, secret=secrets["main"])
    raw = RunwayRaw(http, server.url, key)
    reply = await raw.create(i2v())
    assert reply.status == 200, reply.text
    task_id = reply.body["id"]
    for _ in range(200):
        task = (await raw.get(task_id)).body
        if task["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        assert task["status"] in ("PENDING", "THROTTLED", "RUNNING"), task
        await asyncio.sleep(0.1)
    assert task["status"] == "FAILED", task
    assert task["failureCode"].startswith("INTERNAL") and task["cost"] == {"credits": 0}, task
    assert emulator.creates(secrets["main"], "runway") == before + 1  # exactly one upstream job, never re-sent
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [{"credits": 1_000_000}]


async def wait_end(raw: RunwayRaw, task_id: str) -> dict:
    for _ in range(300):
        task = (await raw.get(task_id)).body
        if task["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} did not end: {task}")


async def test_a_garbled_create_reply_fails_the_task_with_a_refund(setup, http, emulator):
    server, secrets = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = emulator.creates(secrets["main"], "runway")
    emulator.fault(provider="runway", op="create", kind="malformed", count=1, secret=secrets["main"])
    raw = RunwayRaw(http, server.url, key)
    reply = await raw.create(i2v())
    assert reply.status == 200, reply.text
    task = await wait_end(raw, reply.body["id"])
    assert task["status"] == "FAILED" and task["cost"] == {"credits": 0}, task
    assert emulator.creates(secrets["main"], "runway") == before  # nothing was made, nothing re-sent
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [{"credits": 1_000_000}]


async def test_a_429_on_create_is_retried_later_and_succeeds(setup, http, emulator):
    server, secrets = setup
    raw = RunwayRaw(http, server.url, server.make_key())
    before = emulator.creates(secrets["main"], "runway")
    emulator.fault(provider="runway", op="create", kind="status", status=429, retry_after=1, count=1,
                   secret=secrets["main"])
    reply = await raw.create(i2v())
    assert reply.status == 200, reply.text
    task = await wait_end(raw, reply.body["id"])
    assert task["status"] == "SUCCEEDED", task
    assert emulator.creates(secrets["main"], "runway") == before + 1


async def test_a_task_waiting_for_a_slot_is_throttled(setup, emulator, fast_polls):
    server, secrets = setup
    client = sdk(server.url, server.make_key())
    emulator.hold(True, provider="runway")
    try:
        first = await client.text_to_image.create(model="gen4_image_turbo", prompt_text="a fox @ref", ratio="720:720",
                                                  reference_images=[{"uri": png_data_uri(), "tag": "ref"}])
        second = await client.text_to_image.create(model="gen4_image_turbo", prompt_text="a fox @ref",
                                                   ratio="720:720",
                                                   reference_images=[{"uri": png_data_uri(), "tag": "ref"}])
        waiting = await client.tasks.retrieve(second.id)
        assert isinstance(waiting, Throttled), waiting
        assert waiting.estimated_cost.credits == 2
        assert emulator.counters(secrets["solo"], "runway")["running"] == 1
    finally:
        emulator.hold(False, provider="runway")
    for created in (first, second):
        assert isinstance(await created.wait_for_task_output(timeout=60), Succeeded)
    assert emulator.counters(secrets["solo"], "runway")["max_running"] == 1


async def test_twenty_tasks_on_a_cap_of_four(setup, emulator, http, fast_polls):
    server, secrets = setup
    name, key = server.make_named_key(credits=10_000_000)
    client = sdk(server.url, key)
    created = await asyncio.gather(*(client.image_to_video.create(
        model="gen4_turbo", prompt_image=png_data_uri(color=(i * 10, 0, 0)), ratio="1280:720", duration=5)
        for i in range(20)))
    assert len({c.id for c in created}) == 20
    done = await asyncio.gather(*(c.wait_for_task_output(timeout=150) for c in created))
    assert all(isinstance(t, Succeeded) for t in done)
    counters = emulator.counters(secrets["main"], "runway")
    assert counters["max_running"] == 4, counters  # the cap was reached and held
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [
        {"credits": 10_000_000 - 20 * 250_000}]
