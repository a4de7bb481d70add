"""The unified task API on a Vidu task: `GET /v1/tasks/{id}`, `GET /v1/tasks/{id}/events` (SSE),
ownership and unknown paths, in OpenAI's error envelope.

client (aiohttp) → `gengate serve --sandbox` (subprocess) → HTTP → its in-process Vidu emulator, whose
hold control freezes tasks so that a stream can be watched while nothing changes. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from unified_client import (
    PRICE_T2V_4S,
    STATUS_RANK,
    assert_openai_error,
    call,
    check_unified,
    get_task,
    read_events,
    t2v,
    wait_status,
)

# Reading and streaming do nothing backend-specific beyond what tests/unified/test_unified_cancel.py and
# the webhook tests run on PostgreSQL too: SQLite keeps this module quick.
pytestmark = [pytest.mark.timeout(120), pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

ENV = {"GENGATE_POLL_INTERVAL": "0.2", "GENGATE_SANDBOX_TASK_SECONDS": "2"}
CREDITS = 1_000_000


@pytest.fixture(scope="module")
def server(backend, make_server):
    """A sandbox server of this module alone (its emulator's holds touch no other test module)."""
    return make_server(database_url=backend.url, env=ENV)


@pytest.fixture
def released(server):
    """Every test leaves the sandbox's Vidu tasks running, whatever happened."""
    yield
    server.upstream.hold(False)


async def download(http, url: str) -> tuple[int, bytes]:
    async with http.get(url, allow_redirects=False) as resp:
        assert "Authorization" not in resp.request_info.headers
        return resp.status, await resp.read()


async def test_vidu_task_read_through_the_unified_api(server, vidu, http):
    name, key = server.make_named_key(credits=CREDITS)
    created = await vidu(server, key).create_ok(t2v())
    task_id = created["id"]

    first = await get_task(http, server.url, key, task_id)
    assert first["id"] == task_id  # the id exactly as Vidu's reply shows it
    assert first["provider"] == "vidu" and first["model"] == "vidu-1", first
    assert first["status"] in ("queued", "in_progress"), first
    assert first["cost"] == {"reserved": PRICE_T2V_4S, "settled": None}, first
    assert first["outputs"] == [] and first["error"] is None

    final, seen = await wait_status(http, server.url, key, task_id)
    assert final["status"] == "succeeded", final
    assert [STATUS_RANK[s] for s in seen] == sorted(STATUS_RANK[s] for s in seen), seen
    assert final["progress"] == 100
    assert final["created_at"] == first["created_at"] and final["updated_at"] >= first["updated_at"]
    assert final["cost"]["reserved"] == PRICE_T2V_4S
    assert 0 < final["cost"]["settled"] <= PRICE_T2V_4S, final
    assert server.credits(name) == CREDITS - final["cost"]["settled"]

    vidu_task = (await vidu(server, key).get(task_id)).body
    assert vidu_task["state"] == "success"
    assert len(final["outputs"]) == len(vidu_task["creations"]) >= 1, (final, vidu_task)
    for out in final["outputs"]:
        assert out["type"] == "video", out
        assert out["url"].startswith(server.url + "/"), out  # gengate's own URL, absolute
        status, data = await download(http, out["url"])  # no Authorization: the signature is the credential
        assert status == 200, (status, data[:200])
        assert data[4:8] == b"ftyp" and b"moov" in data, data[:16]


async def test_events_from_in_progress_to_succeeded(server, vidu, http, released):
    key = server.make_key(credits=CREDITS)
    server.upstream.hold(True)  # every sandbox Vidu task stays where it is until released
    task_id = (await vidu(server, key).create_ok(t2v()))["id"]
    deadline = time.monotonic() + 10
    while (await get_task(http, server.url, key, task_id))["progress"] is None:  # polled once: all known
        assert time.monotonic() < deadline, "the task was never polled"
        await asyncio.sleep(0.1)

    started = time.monotonic()
    reading = asyncio.create_task(read_events(http, server.url, key, task_id, within=40))
    await asyncio.sleep(1.5)  # held: the first event, and nothing after it
    released_at = time.monotonic() - started
    server.upstream.hold(False)
    stream = await reading

    assert stream.status == 200 and stream.content_type.startswith("text/event-stream"), stream
    events = [e for _, e in stream.events]
    times = [t for t, _ in stream.events]
    assert times and times[0] < 1.0, times  # the first event at once, with the current state
    assert events[0]["status"] in ("queued", "in_progress"), events[0]
    # While held nothing changes: no event after the first, not even one per poll with only
    # `updated_at` moved.
    assert [t for t in times if t < released_at - 0.1] == times[:1], (stream.events, released_at)
    for block in stream.blocks:  # each event a single `data:` line (comments aside)
        assert [ln for ln in block if not ln.startswith(":")] == [ln for ln in block if ln.startswith("data:")]
        assert len([ln for ln in block if ln.startswith("data:")]) <= 1, block
    for event in events:
        check_unified(event, task_id)
    for a, b in itertools.pairwise(events):
        assert a != b, "an event without a change"
        assert STATUS_RANK[a["status"]] <= STATUS_RANK[b["status"]], events
    assert events[-1]["status"] == "succeeded" and events[-1]["outputs"], events[-1]
    assert [e["status"] for e in events].count("succeeded") == 1
    assert stream.closed_after is not None and stream.closed_after - times[-1] < 1.0  # closed right after
    assert events[-1] == await get_task(http, server.url, key, task_id)


async def test_events_of_a_finished_task_is_one_event(server, vidu, http):
    key = server.make_key(credits=CREDITS)
    task_id = (await vidu(server, key).create_ok(t2v()))["id"]
    final, _ = await wait_status(http, server.url, key, task_id)
    assert final["status"] == "succeeded"

    stream = await read_events(http, server.url, key, task_id, within=10)
    assert stream.status == 200 and stream.content_type.startswith("text/event-stream"), stream
    assert len(stream.events) == 1, stream.events
    assert stream.events[0][1] == final
    assert stream.closed_after is not None and stream.closed_after < 2.0, stream.closed_after


async def test_another_key_gets_404_on_every_route(server, vidu, http, released):
    owner = server.make_key(credits=CREDITS)
    other = server.make_key(credits=CREDITS)
    server.upstream.hold(True)  # keep it running, so that a cancel would have something to cancel
    task_id = (await vidu(server, owner).create_ok(t2v()))["id"]

    base = f"{server.url}/v1/tasks/{task_id}"
    assert_openai_error(await call(http, "GET", base, other), 404, "not_found")
    stream = await read_events(http, server.url, other, task_id, within=10)
    assert stream.error is not None, stream.events
    assert_openai_error(stream.error, 404, "not_found")
    assert_openai_error(await call(http, "POST", base + "/cancel", other), 404, "not_found")
    # An id that exists nowhere looks the same.
    missing = f"{server.url}/v1/tasks/9{task_id[1:]}0"
    assert_openai_error(await call(http, "GET", missing, owner), 404, "not_found")
    assert_openai_error(await call(http, "POST", missing + "/cancel", owner), 404, "not_found")
    # Without a key (or with an unknown one): 401 in the same envelope.
    for key in (None, "sk-" + "x" * 40):
        assert_openai_error(await call(http, "GET", base, key), 401)
        assert_openai_error(await call(http, "POST", base + "/cancel", key), 401)
        missing_key = await read_events(http, server.url, key, task_id, within=10)
        assert missing_key.error is not None
        assert_openai_error(missing_key.error, 401)

    # The other key's cancel did nothing: the owner's task still runs to success.
    server.upstream.hold(False)
    final, _ = await wait_status(http, server.url, owner, task_id)
    assert final["status"] == "succeeded", final


async def test_unknown_paths_and_methods_are_openai_shaped(server, vidu, http):
    key = server.make_key(credits=CREDITS)
    task_id = (await vidu(server, key).create_ok(t2v()))["id"]
    for path in (f"/v1/tasks/{task_id}/nope", f"/v1/tasks/{task_id}/events/more", f"/v1/tasks/{task_id}/cancel/x",
                 "/v1/tasks/", "/v1/tasks/a/b/c"):
        for method in ("GET", "POST"):
            answer = await call(http, method, server.url + path, key)
            assert_openai_error(answer, 404)
            assert "detail" not in answer.text
    for method, path in (("PATCH", f"/v1/tasks/{task_id}"), ("PUT", f"/v1/tasks/{task_id}"),
                         ("GET", f"/v1/tasks/{task_id}/cancel"), ("POST", f"/v1/tasks/{task_id}/events")):
        answer = await call(http, method, server.url + path, key)
        assert_openai_error(answer, 405)
