"""Suno (relay "Suno-API" format) end to end: client (aiohttp) → `gengate serve` (subprocess) → HTTP →
the Suno emulator (in-process sandbox, or the standalone `gengate emulate`). Nothing is mocked."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from typing import Any

import av
import pytest
from harness.suno import SunoClient, assert_suno_error
from PIL import Image

pytestmark = pytest.mark.timeout(180)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DTO_KEYS = {"task_id", "action", "status", "fail_reason", "submit_time", "start_time", "finish_time", "progress",
            "data"}
MUSIC_PRICE = 100_000
LYRICS_PRICE = 10_000


@pytest.fixture
def suno(http):
    def make(server: Any, key: str | None) -> SunoClient:
        return SunoClient(http, server if isinstance(server, str) else server.url, key)

    return make


async def download(http, url: str) -> bytes:
    async with http.get(url, allow_redirects=False) as resp:
        assert "Authorization" not in resp.request_info.headers
        assert resp.status == 200, (resp.status, url)
        return await resp.read()


def mp3_seconds(data: bytes) -> float:
    assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0), data[:8]
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith("mp3")
        samples = sum(f.samples for f in container.decode(stream))
        return samples / stream.codec_context.sample_rate


async def check_clip(http, server, clip: dict[str, Any]) -> None:
    assert UUID4.match(clip["id"]), clip["id"]
    assert clip["status"] == "complete"
    for f in ("audio_url", "video_url", "image_url", "image_large_url"):
        assert clip[f].startswith(server.url + "/"), (f, clip[f])
    audio = await download(http, clip["audio_url"])
    assert abs(mp3_seconds(audio) - clip["metadata"]["duration"]) < 0.2, clip["metadata"]
    for f in ("image_url", "image_large_url"):
        with Image.open(io.BytesIO(await download(http, clip[f]))) as img:
            img.load()
            assert img.format == "JPEG"
    video = await download(http, clip["video_url"])
    assert video[4:8] == b"ftyp" and b"moov" in video
    meta = clip["metadata"]
    assert meta["type"] == "gen" and meta["error_message"] is None
    assert meta["history"] is None or all(UUID4.match(h["id"]) for h in meta["history"])
    assert "user_id" not in clip


def check_dto(dto: dict[str, Any], task_id: str, action: str) -> None:
    assert set(dto) == DTO_KEYS, dto
    assert dto["task_id"] == task_id and dto["action"] == action
    assert re.match(r"^\d{1,3}%$", dto["progress"]), dto["progress"]
    for f in ("submit_time", "start_time", "finish_time"):
        assert isinstance(dto[f], int), (f, dto)
    assert abs(dto["submit_time"] - time.time()) < 120
    if dto["status"] in ("SUCCESS", "FAILURE"):
        assert dto["finish_time"] >= dto["submit_time"] and dto["progress"] == "100%"
    else:
        assert dto["finish_time"] == 0


async def credits_become(server, name: str, want: int, within: float = 10) -> None:
    end = time.monotonic() + within
    got = server.credits(name)
    while got != want and time.monotonic() < end:
        await asyncio.sleep(0.3)
        got = server.credits(name)
    assert got == want, (got, want)


# ------------------------------------------------------------------------------------------- music
async def test_music_inspiration_mode(sandbox_server, suno, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    c = suno(server, key)
    task_id = await c.submit_ok("music", {"gpt_description_prompt": "an upbeat synthwave song about the moon",
                                          "title": "ignored in inspiration mode"})
    assert UUID4.match(task_id)
    first = (await c.fetch(task_id)).body["data"]
    check_dto(first, task_id, "MUSIC")
    assert first["status"] in ("NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS", "SUCCESS")
    done = await c.wait(task_id)
    check_dto(done, task_id, "MUSIC")
    assert done["status"] == "SUCCESS" and done["fail_reason"] == "", done
    assert len(done["data"]) == 2
    for clip in done["data"]:
        await check_clip(http, server, clip)
        assert clip["model_name"] == "chirp-v3-0"  # the default mv
        assert clip["metadata"]["gpt_description_prompt"] == "an upbeat synthwave song about the moon"
        assert clip["title"] != "ignored in inspiration mode"
    assert len({clip["id"] for clip in done["data"]}) == 2
    await credits_become(server, name, 1_000_000 - MUSIC_PRICE)
    unified = await c.request("GET", f"/v1/tasks/{task_id}")
    assert unified.status == 200 and unified.body["status"] == "succeeded", unified.text
    assert [o["type"] for o in unified.body["outputs"]] == ["audio", "audio"]
    path = lambda url: url.split("?")[0]  # noqa: E731 - signatures differ per read
    assert {path(o["url"]) for o in unified.body["outputs"]} == {path(clip["audio_url"]) for clip in done["data"]}


async def test_music_custom_mode(sandbox_server, suno, http):
    server = sandbox_server
    c = suno(server, server.make_key())
    body = {"prompt": "[Verse]\nStreetlights hum\n[Chorus]\nTurn the radio up", "title": "Moon Drive",
            "tags": "synthwave, retro", "negative_tags": "metal", "mv": "chirp-v3-5", "make_instrumental": False}
    task_id = await c.submit_ok("MUSIC", body)  # the action segment is upper-cased
    done = await c.wait(task_id)
    assert done["status"] == "SUCCESS", done
    for clip in done["data"]:
        await check_clip(http, server, clip)
        assert clip["title"] == "Moon Drive"  # a custom-mode title is every clip's title
        assert clip["model_name"] == "chirp-v3-5"
        assert clip["metadata"]["tags"] == "synthwave, retro"
        assert clip["metadata"]["prompt"] == body["prompt"]
    # An instrumental needs no lyrics.
    inst = await c.submit_ok("music", {"make_instrumental": True, "tags": "ambient piano", "title": "Rain"})
    done = await c.wait(inst)
    assert done["status"] == "SUCCESS" and all(c["title"] == "Rain" for c in done["data"]), done


async def test_lyrics(sandbox_server, suno, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=100_000)
    c = suno(server, key)
    task_id = await c.submit_ok("lyrics", {"prompt": "a song about a night drive"})
    done = await c.wait(task_id)
    check_dto(done, task_id, "LYRICS")
    assert done["status"] == "SUCCESS", done
    lyrics = done["data"]
    assert set(lyrics) >= {"id", "status", "title", "text"}, lyrics
    assert UUID4.match(lyrics["id"]) and lyrics["status"] == "complete"
    assert lyrics["title"] and "[Verse]" in lyrics["text"]
    await credits_become(server, name, 100_000 - LYRICS_PRICE)
    # The unified task API shows it too; lyrics have no media output.
    unified = await c.request("GET", f"/v1/tasks/{task_id}")
    assert unified.status == 200 and unified.body["status"] == "succeeded" and unified.body["outputs"] == []


async def test_idempotency_key(sandbox_server, suno):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    c = suno(server, key)
    body = {"prompt": "the same words twice"}
    first = await c.submit_ok("lyrics", body, headers={"Idempotency-Key": "suno-1"})
    assert await c.submit_ok("lyrics", body, headers={"Idempotency-Key": "suno-1"}) == first
    reply = await c.submit("lyrics", {"prompt": "other words"}, headers={"Idempotency-Key": "suno-1"})
    assert_suno_error(reply, 422, "invalid_request")
    assert (await c.wait(first))["status"] == "SUCCESS"
    await credits_become(server, name, 1_000_000 - LYRICS_PRICE)  # one task, charged once


# ------------------------------------------------------------------------------------------- batch fetch
async def test_batch_fetch(sandbox_server, suno):
    server = sandbox_server
    c = suno(server, server.make_key())
    ids = [await c.submit_ok("music", {"gpt_description_prompt": f"song {i}"}) for i in range(2)]
    ids.append(await c.submit_ok("lyrics", {"prompt": "rain on a tin roof"}))
    other = suno(server, server.make_key())
    foreign = await other.submit_ok("lyrics", {"prompt": "not yours"})
    reply = await c.fetch_many([*ids, "00000000-0000-4000-8000-000000000000", foreign, ids[0]], action="MUSIC")
    assert reply.status == 200, reply.text
    assert reply.body["code"] == "success"
    rows = reply.body["data"]
    assert [r["task_id"] for r in rows] == ids  # unknown and other keys' ids are absent, duplicates once
    for row, action in zip(rows, ("MUSIC", "MUSIC", "LYRICS"), strict=True):
        check_dto(row, row["task_id"], action)
    for task_id in ids:
        await c.wait(task_id)
    rows = (await c.fetch_many(ids)).body["data"]
    assert [r["status"] for r in rows] == ["SUCCESS"] * 3
    empty = await c.fetch_many([])
    assert empty.status == 200 and empty.body == {"code": "success", "message": "", "data": []}


async def test_polling_uses_one_batch_fetch_per_secret(make_server, emulator, suno):
    """Many running tasks of one secret are polled with one upstream `POST /suno/fetch` per round."""
    server = make_server(sandbox=False, env={"GENGATE_POLL_INTERVAL": "0.5"})
    secret = emulator.new_secret()
    server.add_channel("suno", emulator.provider_url("suno"), secret, name="emu-suno")
    emulator.hold(True, provider="suno")
    try:
        c = suno(server, server.make_key())
        ids = await asyncio.gather(*(c.submit_ok("music", {"gpt_description_prompt": f"tune {i}"})
                                     for i in range(6)))
        before = emulator.counters(secret, "suno")["polls"]
        await asyncio.sleep(3)
        polls = emulator.counters(secret, "suno")["polls"] - before
    finally:
        emulator.hold(False, provider="suno")
    # One by one, six tasks polled every 0.5 s for 3 s would take ~36 calls; batched, ~6-12.
    assert 0 < polls <= 18, polls
    for task_id in ids:
        assert (await c.wait(task_id))["status"] == "SUCCESS"


# ------------------------------------------------------------------------------------------- continuation
async def test_continuation_pinned_to_the_clips_secret(make_server, emulator, suno, http):
    server = make_server(sandbox=False)
    a, b = emulator.new_secret(), emulator.new_secret()
    server.add_channel("suno", emulator.provider_url("suno"), a, b, name="emu-suno-2")
    c = suno(server, server.make_key())
    parent_id = await c.submit_ok("music", {"prompt": "[Verse]\nOne", "title": "Seed", "tags": "folk"})
    parent = await c.wait(parent_id)
    assert parent["status"] == "SUCCESS", parent
    clip = parent["data"][0]
    made_on = a if emulator.creates(a, "suno") == 1 else b
    other = b if made_on == a else a
    before = {s: emulator.creates(s, "suno") for s in (a, b)}
    children = []
    for i in range(3):  # a random pick would land on the other secret, which has no such clip
        children.append(await c.submit_ok("music", {
            "prompt": f"[Bridge]\nTurn {i}", "continue_clip_id": clip["id"], "continue_at": 2.5,
            "task_id": parent_id, "mv": "chirp-v3-0", "task": "extend"}))
    for child_id in children:
        done = await c.wait(child_id)
        assert done["status"] == "SUCCESS", done
        for child_clip in done["data"]:
            await check_clip(http, server, child_clip)
            assert child_clip["title"] == "Seed"
            assert child_clip["metadata"]["history"] == [{"id": clip["id"], "continue_at": 2.5, "type": "gen",
                                                          "source": "web"}]
            assert child_clip["id"] not in (c_["id"] for c_ in parent["data"])
    assert emulator.creates(made_on, "suno") == before[made_on] + 3
    assert emulator.creates(other, "suno") == before[other]

    # Another key cannot refer to this clip; the task must be the clip's own.
    stranger = suno(server, server.make_key())
    reply = await stranger.submit("music", {"prompt": "x", "continue_clip_id": clip["id"], "continue_at": 1,
                                            "task_id": parent_id})
    assert_suno_error(reply, 400, "invalid_request")
    reply = await c.submit("music", {"prompt": "x", "continue_clip_id": clip["id"], "continue_at": 1,
                                     "task_id": children[0]})
    assert_suno_error(reply, 400, "invalid_request")
    reply = await c.submit("music", {"prompt": "x", "continue_clip_id": clip["id"], "continue_at": 1})
    assert_suno_error(reply, 400, "invalid_request", "task id is empty")
    reply = await c.submit("music", {"prompt": "x", "continue_clip_id": clip["id"], "continue_at": 10_000,
                                     "task_id": parent_id})
    assert_suno_error(reply, 400, "invalid_request")
    assert emulator.creates(made_on, "suno") == before[made_on] + 3


# ------------------------------------------------------------------------------------------- failure
async def test_failure_is_refunded(sandbox_server, suno):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    c = suno(server, key)
    server.upstream.fault(provider="suno", kind="fail_task", count=1, err_msg="Unable to generate: policy")
    task_id = await c.submit_ok("music", {"gpt_description_prompt": "a forbidden song"})
    done = await c.wait(task_id)
    check_dto(done, task_id, "MUSIC")
    assert done["status"] == "FAILURE", done
    assert done["fail_reason"] == "Unable to generate: policy"
    assert done["data"] == []
    await credits_become(server, name, 1_000_000)
    unified = await c.request("GET", f"/v1/tasks/{task_id}")
    assert unified.status == 200 and unified.body["status"] == "failed", unified.text
    assert unified.body["cost"]["settled"] in (0, None), unified.body


async def test_out_of_credit(sandbox_server, suno):
    server = sandbox_server
    name, key = server.make_named_key(credits=MUSIC_PRICE - 1)
    c = suno(server, key)
    before = server.upstream.counters(server.secret, "suno")["creates"]
    reply = await c.submit("music", {"gpt_description_prompt": "too expensive"})
    assert_suno_error(reply, 403, "quota_not_enough")
    assert server.upstream.counters(server.secret, "suno")["creates"] == before
    assert server.credits(name) == MUSIC_PRICE - 1
    # Lyrics are cheaper and still fit.
    task_id = await c.submit_ok("lyrics", {"prompt": "cheap words"})
    assert (await c.wait(task_id))["status"] == "SUCCESS"


async def test_upstream_out_of_credit_disables_the_secret(make_server, emulator, suno):
    """The proxy's 403 `quota_not_enough` disables that secret; the task goes to the next one."""
    server = make_server(sandbox=False)
    broke, fine = emulator.new_secret(), emulator.new_secret()
    server.add_channel("suno", emulator.provider_url("suno"), broke, name="emu-broke",
                       extra=("--priority", "0"))
    server.add_channel("suno", emulator.provider_url("suno"), fine, name="emu-fine", extra=("--priority", "5"))
    emulator.fault(provider="suno", op="create", secret=broke, kind="status", status=403,
                   message="quota_not_enough")
    c = suno(server, server.make_key())
    task_id = await c.submit_ok("lyrics", {"prompt": "a song"})
    assert (await c.wait(task_id))["status"] == "SUCCESS"
    assert emulator.creates(fine, "suno") == 1 and emulator.creates(broke, "suno") == 0
    channels = {r["name"]: r for r in json.loads(server.cli("channels", "list", "--json").strip().splitlines()[-1])}
    [secret] = channels["emu-broke"]["secrets"]
    assert not secret["enabled"] and "credit" in (secret["status_reason"] or ""), secret


@pytest.mark.parametrize(("env", "waits"), [
    ({"GENGATE_SUBMIT_TIMEOUT": "1", "GENGATE_SUBMIT_TIMEOUTS": "suno=15"}, True),
    ({"GENGATE_SUBMIT_TIMEOUT": "1"}, True),
    ({"GENGATE_SUBMIT_TIMEOUT": "15", "GENGATE_SUBMIT_TIMEOUTS": "suno=1"}, False),
], ids=["configured", "suno-default", "configured-short"])
async def test_lyrics_submit_uses_the_suno_submit_timeout(make_server, suno, env, waits):
    """A lyrics submit blocks upstream: Suno's create waits longer than the default submit timeout,
    by GENGATE_SUBMIT_TIMEOUTS or else by the provider's own default (150 s). A configured timeout
    wins; a create that outlasts it is ambiguous, and (Suno has no way to reconcile) refunded."""
    server = make_server(env=env)
    server.upstream.fault(provider="suno", op="create", kind="timeout", seconds=3, count=1)
    name, key = server.make_named_key(credits=1_000_000)
    c = suno(server, key)
    started = time.monotonic()
    task_id = await c.submit_ok("lyrics", {"prompt": "slow words"})
    took = time.monotonic() - started
    first = (await c.fetch(task_id)).body["data"]
    done = await c.wait(task_id)
    assert server.upstream.counters(server.secret, "suno")["creates"] == 1
    if waits:
        assert took >= 2.5, took
        assert first["status"] in ("SUBMITTED", "IN_PROGRESS", "SUCCESS"), first  # accepted, not ambiguous
        assert done["status"] == "SUCCESS", done
    else:
        assert took < 2.5, took
        assert done["status"] == "FAILURE", done
        await credits_become(server, name, 1_000_000)
