"""The Luma emulator over real HTTP, as gengate drives the real upstream: Bearer auth, 201 creates on
both video paths and the image path, the queued → dreaming → completed walk, real media, list paging,
DELETE (then 404) on the in-memory and the SQLite store, keyframe references, faults."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from PIL import Image

from gengate.emulator.sqlite_store import SqliteStore
from gengate.emulator.store import MemoryStore, Store
from gengate.emulator.testing import RunningEmulator, running_emulator
from gengate.emulator.timeline import TaskRecord

SECRET = "sandbox-secret"
OTHER = "other-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER}"}
API = "/luma/dream-machine/v1"


@pytest.fixture(scope="module")
def instant() -> Iterator[RunningEmulator]:
    with running_emulator(secret=f"{SECRET},{OTHER}", task_seconds=(0, 0)) as emu:
        yield emu


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def slow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """Tasks that take 30 s, on either store (SQLite: the sandbox's, shared by processes)."""
    state: Path | None = tmp_path_factory.mktemp("luma-emu") if request.param == "sqlite" else None
    with running_emulator(secret=SECRET, task_seconds=(30, 30), state_dir=state) as emu:
        yield emu


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(http: aiohttp.ClientSession, emu: RunningEmulator, method: str, path: str, body: Any = None,
               headers: dict[str, str] = AUTH, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, emu.url(API + path), json=body, headers=headers, **kw) as reply:
        text = await reply.text()
        if reply.status != 204:
            assert reply.content_type == "application/json", (reply.status, text)
        return reply.status, (await reply.json() if text else None)


async def stats(http: aiohttp.ClientSession, emu: RunningEmulator) -> dict[str, Any]:
    async with http.get(emu.url("/_emulator/stats")) as reply:
        return (await reply.json())["luma"]


async def test_auth_is_bearer(instant, http):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Token {SECRET}"}):
        status, body = await call(http, instant, "GET", "/generations", headers=headers)
        assert status == 401 and set(body) == {"detail"}, (headers, body)
    status, body = await call(http, instant, "GET", "/ping")
    assert (status, body) == (200, {"message": "pong"})


async def test_video_on_both_paths_walks_to_completed_with_real_media(instant, http):
    status, legacy = await call(http, instant, "POST", "/generations", {"prompt": "a fox"})
    assert status == 201 and legacy["model"] == "ray-2" and legacy["generation_type"] == "video"
    sent = {"model": "ray-2", "prompt": "a lighthouse", "aspect_ratio": "9:16", "duration": "9s",
            "resolution": "1080p", "loop": True}
    status, created = await call(http, instant, "POST", "/generations/video", sent)
    assert status == 201
    assert created["request"] == sent and created["failure_reason"] is None
    assert created["created_at"].endswith("Z")
    status, done = await call(http, instant, "GET", f"/generations/{created['id']}")
    assert status == 200 and done["state"] == "completed", done
    assets = done["assets"]
    async with http.get(assets["video"]) as reply:
        data = await reply.read()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (360, 640)
        assert abs(container.duration / 1_000_000 - 9) < 0.3
    async with http.get(assets["image"]) as reply:
        with Image.open(io.BytesIO(await reply.read())) as img:
            assert img.format == "JPEG" and img.size == (360, 640)


async def test_image_generation(instant, http):
    status, created = await call(http, instant, "POST", "/generations/image",
                                 {"model": "photon-1", "prompt": "a kite", "aspect_ratio": "1:1", "format": "png"})
    assert status == 201 and created["generation_type"] == "image"
    _, done = await call(http, instant, "GET", f"/generations/{created['id']}")
    assert done["state"] == "completed" and set(done["assets"]) == {"image"}
    async with http.get(done["assets"]["image"]) as reply:
        with Image.open(io.BytesIO(await reply.read())) as img:
            assert img.format == "PNG" and img.size == (360, 360)


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/generations/video", {"prompt": "no model"}, 422),
    ("/generations/video", {"model": "ray-2", "prompt": "x", "aspect_ratio": "2:1"}, 422),
    ("/generations/video", {"model": "ray-2", "prompt": "x", "duration": "7s"}, 422),
    ("/generations/video", {"model": "ray-2"}, 422),
    ("/generations/image", {"model": "photon-1"}, 422),
    ("/generations/image", {"model": "ray-2", "prompt": "x"}, 422),
    ("/generations/video", {"model": "ray-2", "keyframes": {"frame0": {"type": "generation",
                                                                        "id": "00000000-0000-4000-8000-000000000000"}}},
     400),
])
async def test_validation(instant, http, path, body, status):
    before = (await stats(http, instant))["creates"]
    got, reply = await call(http, instant, "POST", path, body)
    assert got == status and set(reply) == {"detail"}, reply
    assert (await stats(http, instant))["creates"] == before  # a refused create is not a job


async def test_keyframes_refer_to_the_same_accounts_completed_videos(instant, http):
    _, parent = await call(http, instant, "POST", "/generations/video", {"model": "ray-2", "prompt": "a"})
    frames = {"frame0": {"type": "generation", "id": parent["id"]}}
    status, child = await call(http, instant, "POST", "/generations/video", {"model": "ray-2", "keyframes": frames})
    assert status == 201 and child["request"]["keyframes"] == frames
    status, body = await call(http, instant, "POST", "/generations/video", {"model": "ray-2", "keyframes": frames},
                              headers=OTHER_AUTH)
    assert status == 400 and "not found" in body["detail"]


async def test_list_pages_newest_first(instant, http):
    ids = []
    for i in range(3):
        _, g = await call(http, instant, "POST", "/generations/video", {"model": "ray-2", "prompt": f"p{i}"},
                          headers=OTHER_AUTH)
        ids.append(g["id"])
    _, page = await call(http, instant, "GET", "/generations", headers=OTHER_AUTH, params={"limit": "2"})
    assert [g["id"] for g in page["generations"]] == ids[::-1][:2]
    assert (page["has_more"], page["count"], page["limit"], page["offset"]) == (True, 2, 2, 0)
    _, page = await call(http, instant, "GET", "/generations", headers=OTHER_AUTH,
                         params={"limit": "2", "offset": "2"})
    assert [g["id"] for g in page["generations"]] == ids[:1] and page["has_more"] is False
    status, body = await call(http, instant, "GET", "/generations", params={"limit": "x"})
    assert status == 400 and set(body) == {"detail"}


async def test_delete_then_404_on_either_store(slow, http):
    _, running = await call(http, slow, "POST", "/generations/video", {"model": "ray-2", "prompt": "a"})
    _, kept = await call(http, slow, "POST", "/generations/video", {"model": "ray-2", "prompt": "b"})
    before = await stats(http, slow)
    assert before["running"] >= 2
    status, _ = await call(http, slow, "DELETE", f"/generations/{running['id']}")
    assert status == 204
    after = await stats(http, slow)
    assert after["cancels"] == before["cancels"] + 1 and after["running"] == before["running"] - 1
    status, body = await call(http, slow, "GET", f"/generations/{running['id']}")
    assert status == 404 and body == {"detail": "Generation not found"}
    status, _ = await call(http, slow, "DELETE", f"/generations/{running['id']}")
    assert status == 404
    _, page = await call(http, slow, "GET", "/generations", params={"limit": "100"})
    listed = [g["id"] for g in page["generations"]]
    assert running["id"] not in listed and kept["id"] in listed
    status, _ = await call(http, slow, "DELETE", f"/generations/{kept['id']}")
    assert status == 204


async def test_faults_fail_task_and_unknown_state(instant, http):
    async with http.post(instant.url("/_emulator/faults"),
                         json={"provider": "luma", "kind": "fail_task", "count": 1, "err_msg": "blocked"}) as r:
        assert r.status == 200
    _, created = await call(http, instant, "POST", "/generations/video", {"model": "ray-2", "prompt": "x"})
    _, done = await call(http, instant, "GET", f"/generations/{created['id']}")
    assert done["state"] == "failed" and done["failure_reason"] == "blocked" and done["assets"] is None
    async with http.post(instant.url("/_emulator/faults"),
                         json={"provider": "luma", "op": "poll", "kind": "unknown_state", "count": 1}) as r:
        assert r.status == 200
    _, odd = await call(http, instant, "GET", f"/generations/{created['id']}")
    assert odd["state"] not in ("queued", "dreaming", "completed", "failed")
    async with http.post(instant.url("/_emulator/faults"),
                         json={"provider": "luma", "op": "create", "kind": "status", "status": 429,
                               "retry_after": 2, "count": 1}) as r:
        assert r.status == 200
    async with http.post(instant.url(API + "/generations/video"), json={"model": "ray-2", "prompt": "x"},
                         headers=AUTH) as reply:
        assert reply.status == 429 and reply.headers["Retry-After"] == "2"
        assert set(await reply.json()) == {"detail"}


# ------------------------------------------------------------------------------ Store.delete_task (added for Luma)
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_delete_task_forgets_task_aliases_history_and_slot(kind: str, tmp_path: Path) -> None:
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path)
    t0 = 1_700_000_000.0
    try:
        for n in range(3):
            record = TaskRecord(provider="p", id=str(n), secret="s", accepted_at=t0 + n, duration=10, data={})
            assert store.add_task(record, [f"c{n}"], None, t0 + n) is not None
        assert store.running("p", t0 + 3) == {"s": 3}
        assert store.delete_task("p", "1") is True
        assert store.delete_task("p", "1") is False and store.delete_task("q", "0") is False
        assert store.get_task("p", "1") is None and store.find_alias("p", "c1") is None
        assert store.find_alias("p", "c2") is not None
        page, total = store.list_tasks("p", "s", 0, 10)
        assert total == 2 and [t.id for t in page] == ["2", "0"]
        assert store.running("p", t0 + 3) == {"s": 2}
    finally:
        store.close()
