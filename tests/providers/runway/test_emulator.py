"""The Runway emulator, driven over real HTTP as gengate drives the real upstream (runway.md §7):
Bearer auth and `X-Runway-Version`, validation with `issues`, the state walk with progress, playable
media, DELETE semantics, faults and per-secret counters."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from harness.runway import png_data_uri
from PIL import Image

from gengate.emulator.testing import RunningEmulator, running_emulator

SECRET = "sandbox-secret"
OTHER = "other-secret"
VERSION = {"X-Runway-Version": "2024-11-06"}
AUTH = {"Authorization": f"Bearer {SECRET}", **VERSION}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER}", **VERSION}
BASE = "/runway/v1"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def video(**over: Any) -> dict[str, Any]:
    return {"model": "gen4_turbo", "promptImage": png_data_uri(), "ratio": "1280:720", "duration": 5, **over}


@pytest.fixture(scope="module")
def instant() -> Iterator[RunningEmulator]:
    with running_emulator(secret=f"{SECRET},{OTHER}", task_seconds=(0, 0)) as emu:
        yield emu


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """Tasks take 1.5-2 s; state in SQLite, as `gengate emulate` and the sandbox keep it."""
    state: Path = tmp_path_factory.mktemp("runway-emulator")
    with running_emulator(secret=SECRET, task_seconds=(1.5, 2.0), state_dir=state) as emu:
        yield emu


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(http: aiohttp.ClientSession, emu: RunningEmulator, method: str, path: str, body: Any = None,
               headers: dict[str, str] = AUTH) -> tuple[int, Any]:
    async with http.request(method, emu.url(BASE + path), json=body, headers=headers) as reply:
        text = await reply.text()
        if text:
            assert reply.content_type == "application/json", (reply.status, text)
        return reply.status, (await reply.json()) if text else None


async def control(http: aiohttp.ClientSession, emu: RunningEmulator, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, emu.url(f"/_emulator/{path}"), json=body) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def test_auth_and_version_are_required(instant, http):
    status, body = await call(http, instant, "POST", "/image_to_video", video(), headers=VERSION)
    assert status == 401 and isinstance(body["error"], str)
    status, body = await call(http, instant, "POST", "/image_to_video", video(),
                              headers={"Authorization": "Bearer nope", **VERSION})
    assert status == 401
    status, body = await call(http, instant, "POST", "/image_to_video", video(),
                              headers={"Authorization": f"Bearer {SECRET}"})
    assert status == 400 and "X-Runway-Version" in body["error"]
    status, body = await call(http, instant, "POST", "/image_to_video", video(),
                              headers={"Authorization": f"Bearer {SECRET}", "X-Runway-Version": "1999-01-01"})
    assert status == 400 and "not supported" in body["error"]
    status, body = await call(http, instant, "GET", "/organization")
    assert status == 200 and "creditBalance" in body


@pytest.mark.parametrize(("body", "path"), [
    (video(ratio="16:9"), ["ratio"]),
    (video(duration=7), ["duration"]),
    (video(model="gen9"), ["model"]),
    (video(model={"name": "gen4_turbo"}), ["model"]),
    (video(duration=[5]), ["duration"]),
    (video(promptImage="http://example.com/a.png"), ["promptImage"]),
    (video(promptImage="https://10.0.0.1/a.png"), ["promptImage"]),
    (video(promptImage="https://assets.example.invalid/a.png"), ["promptImage"]),
    (video(promptImage=[{"uri": png_data_uri(), "position": "last"}]), ["promptImage", 0, "position"]),
])
async def test_validation_answers_issues(instant, http, body, path):
    before = (await control(http, instant, "GET", "stats"))["runway"]["creates"]
    status, reply = await call(http, instant, "POST", "/image_to_video", body)
    assert status == 400, reply
    assert reply["error"] == "Validation of body failed"
    assert path in [i["path"] for i in reply["issues"]], reply
    assert (await control(http, instant, "GET", "stats"))["runway"]["creates"] == before


async def test_a_video_walks_pending_running_succeeded_and_plays(slow, http):
    status, created = await call(http, slow, "POST", "/image_to_video", video())
    assert status == 200 and UUID4.match(created["id"]) and created["estimatedCost"] == {"credits": 25}
    seen: list[str] = []
    while True:
        status, task = await call(http, slow, "GET", f"/tasks/{created['id']}")
        assert status == 200 and ISO_MS.match(task["createdAt"]), task
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] in ("PENDING", "RUNNING"):
            assert task["estimatedCost"] == {"credits": 25}
            if task["status"] == "RUNNING":
                assert 0 <= task["progress"] <= 1
        else:
            break
        await asyncio.sleep(0.05)
    assert seen == ["PENDING", "RUNNING", "SUCCEEDED"], seen
    assert task["cost"] == {"credits": 25}
    async with http.get(task["output"][0]) as reply:
        assert reply.status == 200
        data = await reply.read()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.width * 720 == stream.codec_context.height * 1280
        assert abs(container.duration / 1_000_000 - 5) < 0.3


async def test_whole_numbers_written_as_floats_are_accepted(instant, http):
    status, created = await call(http, instant, "POST", "/image_to_video", video(duration=5.0, seed=7.0))
    assert status == 200 and created["estimatedCost"] == {"credits": 25}, created
    status, body = await call(http, instant, "POST", "/image_to_video", video(seed=7.5))
    assert status == 400 and ["seed"] in [i["path"] for i in body["issues"]]


async def test_an_image_is_a_png_of_the_ratio(instant, http):
    status, created = await call(http, instant, "POST", "/text_to_image",
                                 {"model": "gen4_image", "promptText": "a fox", "ratio": "1280:720"})
    assert status == 200 and created["estimatedCost"] == {"credits": 5}
    status, task = await call(http, instant, "GET", f"/tasks/{created['id']}")
    assert task["status"] == "SUCCEEDED", task
    async with http.get(task["output"][0]) as reply:
        with Image.open(io.BytesIO(await reply.read())) as img:
            assert (img.format, img.size) == ("PNG", (1280, 720))


async def test_delete_cancels_a_live_task_and_both_kinds_are_404_after(slow, http):
    before = (await control(http, slow, "GET", "stats"))["runway"]["by_secret"].get(SECRET, {}).get("cancels", 0)
    _, live = await call(http, slow, "POST", "/image_to_video", video())
    status, body = await call(http, slow, "DELETE", f"/tasks/{live['id']}")
    assert (status, body) == (204, None)
    assert (await call(http, slow, "GET", f"/tasks/{live['id']}"))[0] == 404
    assert (await call(http, slow, "DELETE", f"/tasks/{live['id']}"))[0] == 404
    stats = (await control(http, slow, "GET", "stats"))["runway"]
    assert stats["by_secret"][SECRET]["cancels"] == before + 1
    assert stats["by_secret"][SECRET]["running"] == 0  # the abort freed its slot


async def test_delete_of_an_ended_task_is_not_a_cancel(instant, http):
    _, done = await call(http, instant, "POST", "/text_to_image",
                         {"model": "gen4_image", "promptText": "a fox", "ratio": "1024:1024"})
    before = (await control(http, instant, "GET", "stats"))["runway"]["cancels"]
    assert (await call(http, instant, "DELETE", f"/tasks/{done['id']}"))[0] == 204
    assert (await call(http, instant, "GET", f"/tasks/{done['id']}"))[0] == 404
    assert (await control(http, instant, "GET", "stats"))["runway"]["cancels"] == before


async def test_another_secret_does_not_see_the_task(instant, http):
    _, created = await call(http, instant, "POST", "/image_to_video", video())
    assert (await call(http, instant, "GET", f"/tasks/{created['id']}", headers=OTHER_AUTH))[0] == 404
    assert (await call(http, instant, "DELETE", f"/tasks/{created['id']}", headers=OTHER_AUTH))[0] == 404


async def test_faults_fail_task_and_unknown_state(instant, http):
    await control(http, instant, "POST", "faults", {"provider": "runway", "kind": "fail_task", "count": 1,
                                                    "secret": OTHER})
    _, created = await call(http, instant, "POST", "/image_to_video", video(), headers=OTHER_AUTH)
    _, task = await call(http, instant, "GET", f"/tasks/{created['id']}", headers=OTHER_AUTH)
    assert task["status"] == "FAILED" and task["failureCode"] == "SAFETY.INPUT.TEXT" and task["failure"]
    assert task["cost"] == {"credits": 0}
    await control(http, instant, "POST", "faults", {"provider": "runway", "op": "poll", "kind": "unknown_state",
                                                    "count": 1, "secret": OTHER})
    _, task = await call(http, instant, "GET", f"/tasks/{created['id']}", headers=OTHER_AUTH)
    assert task["status"] not in ("PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
    await control(http, instant, "POST", "faults", {"provider": "runway", "kind": "status", "status": 429,
                                                    "retry_after": 2, "count": 1, "secret": OTHER})
    async with http.post(instant.url(BASE + "/image_to_video"), json=video(), headers=OTHER_AUTH) as reply:
        assert reply.status == 429 and reply.headers["Retry-After"] == "2"
        assert isinstance((await reply.json())["error"], str)
