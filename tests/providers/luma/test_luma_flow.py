"""Luma Dream Machine end to end with the official `lumaai` SDK (1.21) as the client:
SDK → `gengate serve --sandbox` (subprocess) → HTTP → the Luma emulator. Nothing is mocked.

Create and poll to `completed` (both video paths, and images), downloadable media from gengate,
keyframes that extend an earlier generation of the same key (and never another key's), list,
delete (404 afterwards), and an upstream failure refunded."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import lumaai
import pytest
from harness.luma import (
    LUMA_PATH,
    assert_luma_error,
    download,
    luma_sdk,
    probe_image,
    probe_mp4,
    wait_generation,
)
from lumaai.types import Generation

pytestmark = pytest.mark.timeout(180)

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PRICE_RAY2_720P_5S = 200_000  # 5 s x 40,000 credits (the shipped table)
PRICE_PHOTON_1 = 15_000


def check_uuid4(value: str | None) -> None:
    assert value is not None
    assert uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value, value


async def raw_generation(http: Any, server: Any, key: str, generation_id: str) -> dict[str, Any]:
    async with http.get(f"{server.url}{LUMA_PATH}/generations/{generation_id}",
                        headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def upstream_generations(http: Any, server: Any) -> list[dict[str, Any]]:
    """Every generation the sandbox's upstream account holds (newest first), as the emulator has them."""
    url = server.upstream.provider_url("luma") + "/dream-machine/v1/generations"
    async with http.get(url, params={"limit": "100"}, headers={"Authorization": f"Bearer {server.secret}"}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["generations"]


async def check_video(http: Any, server: Any, done: Generation, seconds: float, size: tuple[int, int]) -> None:
    assert done.state == "completed" and done.failure_reason is None, done
    assert done.assets is not None and done.assets.video and done.assets.image
    for url in (done.assets.video, done.assets.image):
        assert url.startswith(server.url + "/"), url  # gengate's own URL, never the upstream's
    status, data, headers = await download(http, done.assets.video)
    assert status == 200 and headers["Content-Type"].startswith("video/mp4"), (status, headers)
    width, height, duration = probe_mp4(data)
    assert (width, height) == size
    assert abs(duration - seconds) <= 0.3, duration
    status, part, headers = await download(http, done.assets.video, {"Range": "bytes=0-99"})
    assert status == 206 and part == data[:100]
    status, thumb, _ = await download(http, done.assets.image)
    assert status == 200 and probe_image(thumb) == ("JPEG", size)


# ------------------------------------------------------------------------------------------- video
async def test_video_create_poll_completed(sandbox_server, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = luma_sdk(server.url, key)
    created = await client.generations.create(model="ray-2", prompt="a lighthouse at dusk", aspect_ratio="16:9",
                                              duration="5s", resolution="720p", loop=False)
    check_uuid4(created.id)
    assert created.state in ("queued", "dreaming"), created.state
    assert created.generation_type == "video" and created.model == "ray-2"
    assert created.assets is None and created.failure_reason is None
    assert isinstance(created.created_at, datetime)
    assert created.request is not None and created.request.prompt == "a lighthouse at dusk"  # type: ignore[union-attr]
    assert server.credits(name) == 1_000_000 - PRICE_RAY2_720P_5S  # reserved at create

    raw = await raw_generation(http, server, key, created.id)
    assert ISO_Z.match(raw["created_at"]), raw["created_at"]
    assert raw["request"] == {"model": "ray-2", "prompt": "a lighthouse at dusk", "aspect_ratio": "16:9",
                              "duration": "5s", "resolution": "720p", "loop": False}

    states = set()
    done = await wait_generation(client, created.id)
    states.add(done.state)
    await check_video(http, server, done, 5.0, (640, 360))
    assert done.id == created.id and done.created_at == created.created_at
    assert server.credits(name) == 1_000_000 - PRICE_RAY2_720P_5S  # settled at the reservation

    # The unified task API shows the same task, by the same id.
    async with http.get(f"{server.url}/v1/tasks/{created.id}", headers={"Authorization": f"Bearer {key}"}) as r:
        unified = await r.json()
    assert unified["provider"] == "luma" and unified["status"] == "succeeded"
    assert unified["outputs"][0]["type"] == "video" and unified["outputs"][0]["url"].startswith(server.url)


async def test_both_video_paths_and_nine_seconds(sandbox_server, http):
    """`generations.video.create` (1.21: `/generations/video`) and lumaai 1.0's `POST /generations`
    without `model` (ray-2) both make videos; a 9 s clip is 9 s long."""
    server = sandbox_server
    key = server.make_key()
    client = luma_sdk(server.url, key)
    nine = await client.generations.video.create(model="ray-2", prompt="waves", duration="9s", aspect_ratio="9:16")
    legacy = await client.post("/generations", body={"prompt": "a fox in snow"}, cast_to=Generation)
    check_uuid4(legacy.id)
    assert legacy.model == "ray-2" and legacy.generation_type == "video"
    done = await wait_generation(client, nine.id)
    await check_video(http, server, done, 9.0, (360, 640))
    done = await wait_generation(client, legacy.id)
    await check_video(http, server, done, 5.0, (640, 360))


# ------------------------------------------------------------------------------------------- image
async def test_image_generation(sandbox_server, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=100_000)
    client = luma_sdk(server.url, key)
    created = await client.generations.image.create(model="photon-1", prompt="a red kite over the sea",
                                                    aspect_ratio="1:1", format="png")
    check_uuid4(created.id)
    assert created.generation_type == "image" and created.assets is None
    done = await wait_generation(client, created.id)
    assert done.state == "completed", done
    assert done.assets is not None and done.assets.image and done.assets.video is None
    assert done.assets.image.startswith(server.url + "/")
    status, data, _ = await download(http, done.assets.image)
    assert status == 200 and probe_image(data) == ("PNG", (360, 360))
    assert server.credits(name) == 100_000 - PRICE_PHOTON_1


async def test_image_sync_answers_completed(sandbox_server):
    server = sandbox_server
    client = luma_sdk(server.url, server.make_key())
    done = await client.generations.image.create(model="photon-1", prompt="a lamp", sync=True, sync_timeout=30)
    assert done.state == "completed" and done.assets is not None and done.assets.image


# ------------------------------------------------------------------------------------------- keyframes
async def test_keyframes_extend_an_earlier_generation_of_the_same_key(sandbox_server, http):
    server = sandbox_server
    key = server.make_key()
    client = luma_sdk(server.url, key)
    server.upstream.hold(True, provider="luma")
    try:
        first = await client.generations.create(model="ray-2", prompt="a paper boat")
        # Not completed yet: nothing to extend.
        with pytest.raises(lumaai.BadRequestError) as err:
            await client.generations.create(model="ray-2", prompt="on",
                                            keyframes={"frame0": {"type": "generation", "id": first.id}})
        assert_luma_error(err.value, 400, "not completed")
    finally:
        server.upstream.hold(False, provider="luma")
    await wait_generation(client, first.id)

    ext = await client.generations.create(model="ray-2", prompt="the boat sails on",
                                          keyframes={"frame0": {"type": "generation", "id": first.id},
                                                     "frame1": {"type": "image",
                                                                "url": "https://example.com/end.jpg"}})
    assert ext.request.keyframes.frame0.id == first.id  # type: ignore[union-attr]  # the client's own id
    done = await wait_generation(client, ext.id)
    await check_video(http, server, done, 5.0, (640, 360))
    reverse = await client.generations.create(model="ray-2", prompt="before",
                                              keyframes={"frame1": {"type": "generation", "id": first.id}})
    assert (await wait_generation(client, reverse.id)).state == "completed"

    # Upstream got the upstream id of the first generation, never gengate's.
    ups = await upstream_generations(http, server)
    extended = [g for g in ups if g["request"].get("prompt") == "the boat sails on"]
    assert len(extended) == 1
    upstream_parent = extended[0]["request"]["keyframes"]["frame0"]["id"]
    assert upstream_parent != first.id
    assert any(g["id"] == upstream_parent and g["request"].get("prompt") == "a paper boat" for g in ups)


async def test_keyframes_refuse_another_keys_generation_and_images(sandbox_server):
    server = sandbox_server
    owner = luma_sdk(server.url, server.make_key())
    first = await owner.generations.create(model="ray-2", prompt="a kite")
    image = await owner.generations.image.create(model="photon-1", prompt="a kite")
    await wait_generation(owner, first.id)
    await wait_generation(owner, image.id)

    name, other_key = server.make_named_key(credits=1_000_000)
    other = luma_sdk(server.url, other_key)
    for ref in (first.id, str(uuid.uuid4())):
        with pytest.raises(lumaai.BadRequestError) as err:
            await other.generations.create(model="ray-2", prompt="steal",
                                           keyframes={"frame0": {"type": "generation", "id": ref}})
        assert_luma_error(err.value, 400, "not found")
    assert server.credits(name) == 1_000_000
    assert (await other.generations.list()).generations == []
    with pytest.raises(lumaai.BadRequestError) as err:
        await owner.generations.create(model="ray-2", prompt="x",
                                       keyframes={"frame0": {"type": "generation", "id": image.id}})
    assert_luma_error(err.value, 400, "not a video")


# ------------------------------------------------------------------------------------------- list, get, delete
async def test_list_newest_first_with_offset(sandbox_server):
    server = sandbox_server
    client = luma_sdk(server.url, server.make_key())
    ids = [(await client.generations.create(model="ray-2", prompt=f"clip {i}")).id for i in range(3)]
    page = await client.generations.list(limit=2)
    assert [g.id for g in page.generations] == ids[::-1][:2]
    assert page.has_more is True and page.count == 2 and page.limit == 2 and page.offset == 0
    page = await client.generations.list(limit=2, offset=2)
    assert [g.id for g in page.generations] == ids[:1]
    assert page.has_more is False and page.count == 1 and page.offset == 2
    assert all(g.request is not None for g in page.generations)
    other = luma_sdk(server.url, server.make_key())
    assert (await other.generations.list()).generations == []
    with pytest.raises(lumaai.NotFoundError) as err:
        await other.generations.get(ids[0])
    assert_luma_error(err.value, 404)


async def test_delete_completed_then_404(sandbox_server):
    server = sandbox_server
    key = server.make_key()
    client = luma_sdk(server.url, key)
    created = await client.generations.create(model="ray-2", prompt="to delete")
    keep = await client.generations.create(model="ray-2", prompt="to keep")
    await wait_generation(client, created.id)
    other = luma_sdk(server.url, server.make_key())
    with pytest.raises(lumaai.NotFoundError):
        await other.generations.delete(created.id)  # another key's generation does not exist for it
    assert await client.generations.delete(created.id) is None
    with pytest.raises(lumaai.NotFoundError) as err:
        await client.generations.get(created.id)
    assert_luma_error(err.value, 404)
    with pytest.raises(lumaai.NotFoundError):
        await client.generations.delete(created.id)
    assert [g.id for g in (await client.generations.list()).generations] == [keep.id]
    # A deleted generation cannot be extended either.
    with pytest.raises(lumaai.BadRequestError):
        await client.generations.create(model="ray-2", prompt="x",
                                        keyframes={"frame0": {"type": "generation", "id": created.id}})


async def test_delete_running_refunds_and_stops_upstream(sandbox_server, http):
    server = sandbox_server
    server.upstream.hold(True, provider="luma")
    try:
        name, key = server.make_named_key(credits=1_000_000)
        client = luma_sdk(server.url, key)
        before = server.upstream.counters(server.secret, "luma")["cancels"]
        created = await client.generations.create(model="ray-2", prompt="stop me")
        await wait_generation(client, created.id, states=frozenset({"dreaming", "queued"}))
        assert server.credits(name) == 1_000_000 - PRICE_RAY2_720P_5S
        await client.generations.delete(created.id)
        assert server.credits(name) == 1_000_000  # refunded once
        assert server.upstream.counters(server.secret, "luma")["cancels"] == before + 1
        with pytest.raises(lumaai.NotFoundError):
            await client.generations.get(created.id)

        # Cancelled through the unified API instead: Luma has no cancelled state, so it shows failed.
        other = await client.generations.create(model="ray-2", prompt="cancel me")
        await wait_generation(client, other.id, states=frozenset({"dreaming", "queued"}))
        async with http.post(f"{server.url}/v1/tasks/{other.id}/cancel",
                             headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
        shown = await client.generations.get(other.id)
        assert shown.state == "failed" and "cancelled" in (shown.failure_reason or "") and shown.assets is None
        assert server.credits(name) == 1_000_000
    finally:
        server.upstream.hold(False, provider="luma")


# ------------------------------------------------------------------------------------------- failure
async def test_upstream_failure_is_failed_and_refunded(sandbox_server):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = luma_sdk(server.url, key)
    server.upstream.fault(provider="luma", kind="fail_task", count=1, secret=server.secret,
                          err_msg="prompt blocked by moderation")
    created = await client.generations.create(model="ray-2", prompt="something forbidden")
    done = await wait_generation(client, created.id)
    assert done.state == "failed", done
    assert done.failure_reason == "prompt blocked by moderation"
    assert done.assets is None
    assert server.credits(name) == 1_000_000
