"""The Vidu web-format emulator, driven over real HTTP as gengate drives the real upstream."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from PIL import Image

from gengate.emulator.testing import RunningEmulator, running_emulator

SECRET = "sandbox-secret"
OTHER = "other-secret"
AUTH = {"Authorization": f"Token {SECRET}"}
OTHER_AUTH = {"Authorization": f"Token {OTHER}"}
TASKS = "/vidu/vidu/v1/tasks"
TEXT = {"type": "text", "content": "a paper boat on a rainy street"}
IMAGE = {"type": "image", "content": "ssupload:?id=2611000000001234", "src_imgs": ["ssupload:?id=2611000000001234"]}
MATERIAL = {"type": "material", "name": "cat", "material": {"id": "1", "version": "1"}}


@pytest.fixture(scope="module")
def instant() -> Iterator[RunningEmulator]:
    with running_emulator(secret=f"{SECRET},{OTHER}", task_seconds=(0, 0)) as emu:
        yield emu


@pytest.fixture(scope="module")
def slow() -> Iterator[RunningEmulator]:
    with running_emulator(secret=SECRET, task_seconds=(0.5, 1.0)) as emu:
        yield emu


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def create(
    http: aiohttp.ClientSession, emu: RunningEmulator, body: dict[str, Any], headers: dict[str, str] = AUTH
) -> tuple[int, dict[str, Any]]:
    async with http.post(emu.url(TASKS), json=body, headers=headers) as reply:
        return reply.status, await reply.json()


async def get_task(http: aiohttp.ClientSession, emu: RunningEmulator, task_id: str) -> dict[str, Any]:
    async with http.get(emu.url(f"{TASKS}/{task_id}"), headers=AUTH) as reply:
        assert reply.status == 200
        return await reply.json()


async def succeeded(http: aiohttp.ClientSession, emu: RunningEmulator, body: dict[str, Any]) -> dict[str, Any]:
    status, task = await create(http, emu, body)
    assert status == 200, task
    task = await get_task(http, emu, task["id"])
    assert task["state"] == "success", task
    return task


def assert_envelope(body: dict[str, Any], code: int, reason: str) -> None:
    assert body["code"] == code and body["reason"] == reason, body
    assert isinstance(body["message"], str)
    assert len(body["metadata"]["trace_id"]) == 16


async def test_auth_requires_token_scheme(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    body = {"type": "text2video", "input": {"prompts": [TEXT]}}
    for headers in ({}, {"Authorization": f"Bearer {SECRET}"}, {"Authorization": "Token wrong"}):
        status, reply = await create(http, instant, body, headers)
        assert status == 401
        assert_envelope(reply, 401, "Unauthorized")


async def test_task_object_shape(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    settings = {"style": "general", "duration": 4, "aspect_ratio": "16:9", "model": "vidu-1", "brand_new": [1]}
    status, task = await create(
        http, instant, {"type": "text2video", "input": {"prompts": [TEXT]}, "settings": settings}
    )
    assert status == 200
    assert len(task["id"]) == 16 and task["id"].isdigit()
    assert task["settings"] == settings
    assert task["input"]["creation_id"] == "0" and task["input"]["lang"] == "en"
    assert task["input"]["prompts"] == [{**TEXT, "negative": False, "enhance": False, "recaption": ""}]
    assert task["created_at"].endswith("Z") and len(task["created_at"]) == len("2024-08-05T05:12:05.145617Z")
    assert task["err_code"] == ""

    done = await get_task(http, instant, task["id"])
    assert done["state"] == "success"
    (creation,) = done["creations"]
    assert creation["task_id"] == task["id"] and len(creation["id"]) == 16
    assert creation["type"] == "video" and creation["grade"] == "draft"
    assert creation["resolution"] == {"width": 640, "height": 360}
    assert creation["video"] == {"duration": 4, "fps": 8, "resolution": {"width": 640, "height": 360}}
    for key in ("uri", "nomark_uri", "download_uri", "cover_uri"):
        assert creation[key].startswith(instant.base_url + "/vidu/") and "Signature=" in creation[key]


async def test_chinese_prompt_sets_lang(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    prompt = {"type": "text", "content": "雨中的纸船", "enhance": True}
    status, task = await create(http, instant, {"type": "text2video", "input": {"prompts": [prompt]}})
    assert status == 200
    assert task["input"]["lang"] == "zh"
    assert task["input"]["prompts"][0]["enhance"] is True


@pytest.mark.parametrize(
    ("kind", "prompts", "settings"),
    [
        ("text2video", [TEXT], {"duration": 8}),
        ("img2video", [TEXT, IMAGE], {"duration": 4, "resolution": "720p", "model_version": "2.0"}),
        ("character2video", [TEXT, IMAGE, MATERIAL], {"aspect_ratio": "9:16"}),
        ("headtailimg2video", [IMAGE, IMAGE], {}),
        ("text2image", [TEXT], {"duration": 0, "aspect_ratio": "1:1"}),
        ("reference2image", [TEXT, IMAGE], {"model_version": "3.1"}),
    ],
)
async def test_every_task_type_succeeds(
    http: aiohttp.ClientSession,
    instant: RunningEmulator,
    kind: str,
    prompts: list[dict[str, Any]],
    settings: dict[str, Any],
) -> None:
    task = await succeeded(http, instant, {"type": kind, "input": {"prompts": prompts}, "settings": settings})
    assert task["type"] == kind and task["settings"] == settings
    (creation,) = task["creations"]
    if kind.endswith("image"):
        assert creation["type"] == "image" and creation["video"]["duration"] == 0
    else:
        assert creation["type"] == "video" and creation["video"]["duration"] == settings.get("duration", 4)
    if kind == "character2video":
        assert creation["resolution"] == {"width": 360, "height": 640}


async def test_sample_count_gives_several_creations(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    task = await succeeded(
        http, instant, {"type": "text2video", "input": {"prompts": [TEXT]}, "settings": {"sample_count": 3}}
    )
    assert len({c["id"] for c in task["creations"]}) == 3


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"type": "text2movie", "input": {"prompts": [TEXT]}}, 400, "FieldInvalid"),
        ({"input": {"prompts": [TEXT]}}, 400, "FieldLacking"),
        ({"type": "text2video"}, 400, "FieldLacking"),
        ({"type": "text2video", "input": {"prompts": [IMAGE]}}, 400, "FieldLacking"),
        ({"type": "text2video", "input": {"prompts": [TEXT] * 21}}, 400, "FieldItemCountOutOfRange"),
        ({"type": "img2video", "input": {"prompts": [TEXT, IMAGE, IMAGE]}}, 400, "FieldItemCountOutOfRange"),
        (
            {"type": "img2video", "input": {"prompts": [TEXT, IMAGE]}, "settings": {"aspect_ratio": "16:9"}},
            400,
            "FieldUnwanted",
        ),
        ({"type": "headtailimg2video", "input": {"prompts": [IMAGE]}}, 400, "FieldItemCountOutOfRange"),
        ({"type": "character2video", "input": {"prompts": [TEXT]}}, 400, "FieldItemCountOutOfRange"),
        ({"type": "reference2image", "input": {"prompts": [TEXT] + [IMAGE] * 8}}, 400, "FieldItemCountOutOfRange"),
        ({"type": "upscale", "input": {}}, 400, "FieldLacking"),
        ({"type": "upscale", "input": {"creation_id": "1234567890123456"}}, 404, "CreationNotFound"),
        ([1, 2], 400, "BadRequest"),
    ],
)
async def test_validation(
    http: aiohttp.ClientSession, instant: RunningEmulator, body: Any, status: int, reason: str
) -> None:
    got, reply = await create(http, instant, body)
    assert got == status
    assert_envelope(reply, status, reason)


async def test_not_json_is_bad_request(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    async with http.post(instant.url(TASKS), data=b"{nope", headers=AUTH) as reply:
        assert reply.status == 400
        assert_envelope(await reply.json(), 400, "BadRequest")


async def test_unknown_task_and_path(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    async with http.get(instant.url(f"{TASKS}/1000000000000000"), headers=AUTH) as reply:
        assert reply.status == 404
        assert_envelope(await reply.json(), 404, "TaskNotFound")
    async with http.get(instant.url("/vidu/vidu/v9/nothing"), headers=AUTH) as reply:
        assert reply.status == 404
        assert_envelope(await reply.json(), 404, "NotFound")


async def test_upscale_doubles_resolution(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    parent = await succeeded(
        http, instant, {"type": "text2video", "input": {"prompts": [TEXT]}, "settings": {"duration": 2}}
    )
    creation = parent["creations"][0]
    body = {"type": "upscale", "input": {"creation_id": creation["id"]}, "settings": {"model": "stable", "duration": 4}}
    task = await succeeded(http, instant, body)
    assert task["type"] == "upscale" and task["input"]["creation_id"] == creation["id"]
    assert task["settings"] == body["settings"] and "prompts" in task["input"] and "lang" in task["input"]
    (upscaled,) = task["creations"]
    assert upscaled["resolution"] == {"width": 1280, "height": 720}
    assert upscaled["video"]["duration"] == 2
    async with http.get(upscaled["nomark_uri"]) as reply:
        data = await reply.read()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1280, 720)


async def test_upscale_of_another_accounts_creation(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    parent = await succeeded(http, instant, {"type": "text2video", "input": {"prompts": [TEXT]}})
    body = {"type": "upscale", "input": {"creation_id": parent["creations"][0]["id"]}, "settings": {"model": "stable"}}
    status, reply = await create(http, instant, body, OTHER_AUTH)
    assert status == 404
    assert_envelope(reply, 404, "CreationNotFound")
    # ...and the task itself is invisible to the other account.
    async with http.get(instant.url(f"{TASKS}/{parent['id']}"), headers=OTHER_AUTH) as got:
        assert got.status == 404


async def test_upscale_needs_a_finished_parent(http: aiohttp.ClientSession, slow: RunningEmulator) -> None:
    status, parent = await create(http, slow, {"type": "text2video", "input": {"prompts": [TEXT]}})
    assert status == 200
    # The parent's creation id is not known until success; a task id is never a creation id.
    status, reply = await create(http, slow, {"type": "upscale", "input": {"creation_id": parent["id"]}})
    assert status == 404
    assert_envelope(reply, 404, "CreationNotFound")


async def test_state_walk(http: aiohttp.ClientSession, slow: RunningEmulator) -> None:
    started = time.monotonic()
    status, task = await create(http, slow, {"type": "text2video", "input": {"prompts": [TEXT]}})
    assert status == 200 and task["state"] == "created" and task["creations"] == []
    seen = [task["state"]]
    while seen[-1] != "success":
        assert time.monotonic() - started < 3
        await asyncio.sleep(0.03)
        current = await get_task(http, slow, task["id"])
        if current["state"] != seen[-1]:
            seen.append(current["state"])
        if current["state"] != "success":
            assert current["creations"] == []
    assert seen == ["created", "queueing", "processing", "success"]
    assert 0.5 <= time.monotonic() - started


async def test_sse_streams_each_state_then_closes(http: aiohttp.ClientSession, slow: RunningEmulator) -> None:
    status, task = await create(http, slow, {"type": "text2video", "input": {"prompts": [TEXT]}})
    assert status == 200
    url = slow.url(f"{TASKS}/state")
    headers = {**AUTH, "Accept": "text/event-stream"}
    async with http.get(url, params={"id": task["id"]}, headers=headers) as reply:
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
        raw = await asyncio.wait_for(reply.read(), 5)
    blocks = [b for b in raw.decode().split("\n\n") if b]
    events = [json.loads(b.removeprefix("data: ")) for b in blocks]
    assert all(b.startswith("data: ") and "\n" not in b for b in blocks)
    assert [e["state"] for e in events] == ["created", "queueing", "processing", "success"]
    assert events[-1]["estimated_time_left"] == 0
    assert set(events[0]) == {"state", "estimated_time_left", "err_code", "queue_wait_time"}
    assert set(events[0]["queue_wait_time"]) == {"min", "max"}


async def test_sse_is_cut_by_drop_after_accept(http: aiohttp.ClientSession) -> None:
    with running_emulator(task_seconds=(0.5, 0.5)) as emu:
        _, task = await create(http, emu, {"type": "text2video", "input": {"prompts": [TEXT]}})
        rule = {"op": "poll", "kind": "drop_after_accept", "after_chunks": 1, "count": 1}
        async with http.post(emu.url("/_emulator/faults"), json=rule) as reply:
            assert reply.status == 200
        lines: list[bytes] = []
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.get(emu.url(f"{TASKS}/state"), params={"id": task["id"]}, headers=AUTH) as reply:
                assert reply.status == 200
                async for line in reply.content:
                    lines.append(line)
        assert [json.loads(line[6:])["state"] for line in lines if line.startswith(b"data: ")] == ["created"]
        async with http.get(emu.url(f"{TASKS}/state"), params={"id": task["id"]}, headers=AUTH) as reply:
            assert b'"state":"success"' in await asyncio.wait_for(reply.read(), 5)


async def test_cancel(http: aiohttp.ClientSession, slow: RunningEmulator) -> None:
    status, task = await create(http, slow, {"type": "text2video", "input": {"prompts": [TEXT]}})
    assert status == 200
    async with http.delete(slow.url(f"{TASKS}/{task['id']}"), headers=AUTH) as reply:
        assert reply.status == 200 and await reply.json() == {}
    assert (await get_task(http, slow, task["id"]))["state"] == "canceled"
    async with http.delete(slow.url(f"{TASKS}/{task['id']}"), headers=AUTH) as reply:
        assert reply.status == 400
        assert_envelope(await reply.json(), 400, "BadRequest")
    async with http.get(slow.url("/_emulator/stats")) as reply:
        assert (await reply.json())["vidu"]["cancels"] >= 1


async def test_history_is_paged_newest_first(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    async with http.get(instant.url(f"{TASKS}/history/me"), headers=OTHER_AUTH) as reply:
        before = (await reply.json())["total"]
    ids = []
    for _ in range(7):
        status, task = await create(http, instant, {"type": "text2video", "input": {"prompts": [TEXT]}}, OTHER_AUTH)
        assert status == 200
        ids.append(task["id"])
    pages = []
    for page_no in (1, 2):
        params = {"page_no": str(page_no), "page_size": "5"}
        async with http.get(instant.url(f"{TASKS}/history/me"), params=params, headers=OTHER_AUTH) as reply:
            assert reply.status == 200
            body = await reply.json()
        assert body["total"] == before + 7 and body["page_no"] == page_no and body["page_size"] == 5
        pages.append([t["id"] for t in body["tasks"]])
    assert pages[0] == ids[::-1][:5]
    assert pages[1][:2] == ids[::-1][5:]
    async with http.get(instant.url(f"{TASKS}/history/me"), headers=AUTH) as reply:
        assert not {t["id"] for t in (await reply.json())["tasks"]} & set(ids)


async def test_media_are_real_files(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    task = await succeeded(
        http, instant, {"type": "text2video", "input": {"prompts": [TEXT]}, "settings": {"duration": 3}}
    )
    creation = task["creations"][0]
    async with http.get(creation["uri"]) as reply:
        assert reply.headers["Content-Type"] == "video/mp4"
        video = await reply.read()
    assert video[4:8] == b"ftyp" and b"moov" in video
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.width, stream.height) == (640, 360)
        assert stream.average_rate == 8 and frames == 24
        assert container.duration is not None and abs(container.duration / 1e6 - 3) < 0.01
    async with http.get(creation["cover_uri"]) as reply:
        cover = Image.open(io.BytesIO(await reply.read()))
        assert cover.format == "JPEG" and cover.size == (640, 360)

    image_task = await succeeded(http, instant, {"type": "text2image", "input": {"prompts": [TEXT]}})
    async with http.get(image_task["creations"][0]["nomark_uri"]) as reply:
        picture = Image.open(io.BytesIO(await reply.read()))
        assert picture.format == "PNG" and picture.size == (640, 360)


HISTORY = f"{TASKS}/history/me"


@pytest.mark.parametrize(
    "query",
    [
        "page_no=0",
        "page_no=-1",
        "page_no=1.5",
        "page_no=1e3",
        "page_no=abc",
        "page_no=%EF%BC%91",  # a full-width 1
        "page_no=1_0",
        "page_no=99999999999999999999",
        "page_no=9223372036854775807",
        "page_no=92233720368547758&page_size=100",
        "page_no=" + "9" * 5000,
        "page_size=0",
        "page_size=101",
        "page_size=-5",
        "page_size=99999999999999999999",
    ],
)
async def test_history_refuses_bad_paging_with_400(
    http: aiohttp.ClientSession, instant: RunningEmulator, query: str
) -> None:
    async with http.get(instant.url(f"{HISTORY}?{query}"), headers=AUTH) as reply:
        assert reply.status == 400
        assert_envelope(await reply.json(), 400, "BadRequest")


async def test_history_of_an_empty_account_and_past_the_end(http: aiohttp.ClientSession) -> None:
    with running_emulator(task_seconds=(0, 0)) as fresh:
        for query in ("", "?page_no=1&page_size=1", "?page_no=1000000000&page_size=100"):
            async with http.get(fresh.url(HISTORY + query), headers=AUTH) as reply:
                assert reply.status == 200
                assert (await reply.json())["tasks"] == [] and reply.status == 200
        await create(http, fresh, {"type": "text2video", "input": {"prompts": [TEXT]}})
        async with http.get(fresh.url(HISTORY + "?page_no=50000&page_size=100"), headers=AUTH) as reply:
            assert reply.status == 200
            assert await reply.json() == {"tasks": [], "total": 1, "page_no": 50000, "page_size": 100}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"text2video","input":{"prompts":[{"type":"text","content":"a \\ud800 boat"}]}}',
        b'{"type":"text2video","input":{"prompts":[{"type":"text","content":"a boat"}]},"settings":{"duration":NaN}}',
        b"[" * 600 + b"]" * 600,
        b'{"type":"text2video","input":{"prompts":[{"type":"text","content":"\xff"}]}}',
    ],
)
async def test_bodies_that_cannot_be_echoed_are_refused_and_not_stored(
    http: aiohttp.ClientSession, raw: bytes
) -> None:
    """A lone surrogate used to be stored as a job, then answer 500 on create, read and every
    history page after it."""
    with running_emulator(task_seconds=(0, 0)) as fresh:
        headers = {**AUTH, "Content-Type": "application/json"}
        async with http.post(fresh.url(TASKS), data=raw, headers=headers) as reply:
            assert reply.status == 400
            assert_envelope(await reply.json(), 400, "BadRequest")
        async with http.get(fresh.url(HISTORY), headers=AUTH) as reply:
            assert reply.status == 200 and (await reply.json())["total"] == 0
        async with http.get(fresh.url("/_emulator/stats")) as reply:
            assert (await reply.json())["vidu"]["creates"] == 0


async def test_a_huge_duration_is_the_longest_clip(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    body = {"type": "text2video", "input": {"prompts": [TEXT]}, "settings": {"duration": 10**400}}
    task = await succeeded(http, instant, body)
    assert task["creations"][0]["video"]["duration"] == 16


@pytest.mark.parametrize("persistent", [False, True])
async def test_history_pages_stay_whole_during_concurrent_creates(
    http: aiohttp.ClientSession, tmp_path: Path, persistent: bool
) -> None:
    with running_emulator(task_seconds=(0, 0.2), state_dir=tmp_path if persistent else None) as emu:
        body = {"type": "text2video", "input": {"prompts": [TEXT]}}

        async def page(number: int) -> tuple[int, Any]:
            params = {"page_no": str(number), "page_size": "7"}
            async with http.get(emu.url(HISTORY), params=params, headers=AUTH) as reply:
                return reply.status, await reply.json()

        jobs = [create(http, emu, body) if n % 2 else page(1 + n % 5) for n in range(120)]
        results = await asyncio.gather(*jobs)
        assert {status for status, _ in results} == {200}
        status, first = await page(1)
        assert status == 200 and first["total"] == 60 and len(first["tasks"]) == 7
        ids = [t["id"] for n in range(1, 10) for t in (await page(n))[1]["tasks"]]
        assert len(ids) == len(set(ids)) == 60


async def test_creates_count_accepted_jobs_only(http: aiohttp.ClientSession) -> None:
    with running_emulator(task_seconds=(5, 5)) as emu:
        body = {"type": "text2video", "input": {"prompts": [TEXT]}}

        async def counted() -> tuple[int, int]:
            async with http.get(emu.url("/_emulator/stats")) as reply:
                vidu = (await reply.json())["vidu"]
            return vidu["creates"], vidu["by_secret"].get(SECRET, {"creates": 0})["creates"]

        async def rule(**fault: Any) -> None:
            async with http.post(emu.url("/_emulator/faults"), json={"op": "create", "count": 1, **fault}) as reply:
                assert reply.status == 200

        assert (await create(http, emu, body, {"Authorization": "Token wrong"}))[0] == 401
        assert (await create(http, emu, {"type": "text2video"}))[0] == 400
        await rule(kind="status", status=503)
        assert (await create(http, emu, body))[0] == 503
        await rule(kind="malformed")
        async with http.post(emu.url(TASKS), json=body, headers=AUTH) as reply:
            assert reply.status == 200
        async with http.post(emu.url("/_emulator/caps"), json={"secret": SECRET, "max_running": 0}) as reply:
            assert reply.status == 200
        assert (await create(http, emu, body))[0] == 429
        assert await counted() == (0, 0)

        async with http.post(emu.url("/_emulator/caps"), json={"secret": SECRET, "max_running": None}) as reply:
            assert reply.status == 200
        assert (await create(http, emu, body))[0] == 200
        await rule(kind="drop_after_accept")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await create(http, emu, body)
        await rule(kind="timeout", seconds=0.3)
        assert (await create(http, emu, body))[0] == 200
        assert await counted() == (3, 3)


@pytest.mark.parametrize("persistent", [False, True])
async def test_cap_holds_under_concurrent_creates(
    http: aiohttp.ClientSession, tmp_path: Path, persistent: bool
) -> None:
    """30 creates at once against a cap of 3: at no moment do more than 3 jobs run."""
    with running_emulator(task_seconds=(0.3, 0.6), state_dir=tmp_path if persistent else None) as emu:
        async with http.post(emu.url("/_emulator/caps"), json={"secret": SECRET, "max_running": 3}) as reply:
            assert reply.status == 200
        body = {"type": "text2video", "input": {"prompts": [TEXT]}}
        seen: list[int] = []
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                async with http.get(emu.url("/_emulator/stats")) as reply:
                    seen.append((await reply.json())["vidu"]["by_secret"].get(SECRET, {"running": 0})["running"])
                await asyncio.sleep(0.005)

        async def creates_until_done() -> list[int]:
            statuses = []
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:  # retry refused creates, so slots keep freeing and filling
                statuses.append((await create(http, emu, body))[0])
                await asyncio.sleep(0.01)
            return statuses

        watcher = asyncio.create_task(watch())
        statuses = [s for batch in await asyncio.gather(*(creates_until_done() for _ in range(30))) for s in batch]
        done.set()
        await watcher
        async with http.get(emu.url("/_emulator/stats")) as reply:
            stats = (await reply.json())["vidu"]
        assert set(statuses) == {200, 429} and statuses.count(200) >= 3
        assert stats["creates"] == statuses.count(200)  # refused creates are not jobs
        assert stats["by_secret"][SECRET]["max_running"] == 3 and stats["max_running"] == 3
        assert max(seen) <= 3 and 3 in seen
