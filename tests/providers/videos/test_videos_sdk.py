"""`/v1/videos` through the official `openai` SDK over HTTP: create (multipart), poll, retrieve, list,
delete, download_content, for `viduq1` on the Vidu platform channel and on a Vidu web channel.

client (openai.AsyncOpenAI) → `gengate serve --sandbox` (subprocess) → HTTP → in-process emulators.
"""

from __future__ import annotations

import asyncio
import io
import time
import warnings
from typing import Any

import aiohttp
import openai
import pytest
from harness.durability import balance
from harness.vidu_ent import probe_mp4
from harness.webhooks import Receiver, verify_signature
from PIL import Image

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning")]
warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Videos API deprecated

ENV = {"GENGATE_URL_ALLOW_PRIVATE": "1", "GENGATE_POLL_INTERVAL": "0.2", "GENGATE_WEBHOOK_BACKOFF_BASE": "0.2"}
PRICE_Q1 = 75_000
VIDEO_KEYS = {"id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at", "prompt",
              "seconds", "size", "remixed_from_video_id", "error"}


@pytest.fixture(scope="module")
def server(make_server):
    return make_server(env=ENV)


@pytest.fixture(scope="module")
def funded(server) -> tuple[str, str]:
    return server.make_named_key(credits=10_000_000)


def sdk(server, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=30)


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(buf, "PNG")
    return buf.getvalue()


async def wait_done(client: openai.AsyncOpenAI, video_id: str, within: float = 40) -> Any:
    end = time.monotonic() + within
    while True:
        video = await client.videos.retrieve(video_id)
        if video.status in ("completed", "failed") or time.monotonic() > end:
            return video
        await asyncio.sleep(0.2)


async def upstream_tasks(http: aiohttp.ClientSession, server) -> list[dict[str, Any]]:
    """The tasks the sandbox's platform account holds, newest first, as the emulator received them."""
    async with http.get(server.url + "/_sandbox/vidu-ent/ent/v2/tasks", params={"pager.pagesz": "100"},
                        headers={"Authorization": f"Token {server.secret}", "Connection": "close"}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["tasks"]


async def unified(http: aiohttp.ClientSession, server, key: str, task_id: str) -> dict[str, Any]:
    async with http.get(f"{server.url}/v1/tasks/{task_id}",
                        headers={"Authorization": f"Bearer {key}", "Connection": "close"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_create_poll_download(server, funded, http):
    name, key = funded
    client = sdk(server, key)
    credits = balance(server, name)
    video = await client.videos.create(model="viduq1", prompt="a paper boat", seconds="4", size="720x1280")
    raw = video.model_dump()
    assert VIDEO_KEYS <= set(raw), raw
    assert video.id.startswith("video_") and video.object == "video" and video.model == "viduq1"
    assert video.status in ("queued", "in_progress") and video.progress < 100
    assert video.seconds == "5" and video.size == "720x1280" and video.prompt == "a paper boat"
    assert balance(server, name) == credits - PRICE_Q1

    done = await client.videos.poll(video.id, poll_interval_ms=200)
    assert done.status == "completed" and done.progress == 100, done
    assert done.completed_at and done.completed_at >= done.created_at and done.error is None
    assert done.seconds == "5"

    content = await client.videos.download_content(video.id)
    width, height, seconds = probe_mp4(content.content)
    assert height > width, (width, height)  # 720x1280 is portrait: 9:16 went upstream
    assert abs(seconds - 5) < 0.3
    thumb = await client.videos.download_content(video.id, variant="thumbnail")
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert img.format == "JPEG"
    with pytest.raises(openai.NotFoundError):
        await client.videos.download_content(video.id, variant="spritesheet")
    async with http.get(f"{server.url}/v1/videos/{video.id}/content", headers={"Authorization": f"Bearer {key}",
                                                                               "Range": "bytes=0-99"}) as resp:
        assert resp.status == 206 and await resp.read() == content.content[:100]

    task = await unified(http, server, key, video.id)
    assert task["id"] == video.id and task["provider"] == "vidu-ent" and task["model"] == "viduq1"
    assert task["status"] == "succeeded" and task["cost"] == {"reserved": PRICE_Q1, "settled": PRICE_Q1}
    assert task["video"] == (await client.videos.retrieve(video.id)).model_dump()
    [up] = [t for t in await upstream_tasks(http, server) if t["prompt"] == "a paper boat"]
    assert up["model"] == "viduq1" and up["duration"] == 5 and up["aspect_ratio"] == "9:16", up


async def test_input_reference_upload_and_url(server, funded, http):
    client = sdk(server, funded[1])
    uploaded = await client.videos.create(model="viduq1", prompt="an uploaded frame",
                                          input_reference=("frame.png", png(), "image/png"))
    # This SDK cannot put a dict in `input_reference` (it expects a file there), so the reference object
    # goes as extra_body: the SDK sends it as the multipart field `input_reference[image_url]`.
    by_url = await client.videos.create(model="viduq1", prompt="a frame by url", size="1280x720",
                                        extra_body={"input_reference": {"image_url": "https://example.com/cat.png"}})
    done = await asyncio.gather(wait_done(client, uploaded.id), wait_done(client, by_url.id))
    assert [v.status for v in done] == ["completed", "completed"], done
    ups = {t["prompt"]: t for t in await upstream_tasks(http, server)}
    assert ups["an uploaded frame"]["images"][0].startswith("data:image/png;base64,"), ups["an uploaded frame"]
    assert ups["a frame by url"]["images"] == ["https://example.com/cat.png"]
    assert "aspect_ratio" not in ups["a frame by url"]  # img2video: the image decides


async def test_list_cursor_order_and_delete(server, http):
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server, key)
    server.upstream.hold(True, provider="vidu-ent")
    try:
        made = [await client.videos.create(model="viduq1", prompt=f"clip {i}") for i in range(3)]
        ids = [v.id for v in made]
        page = await client.videos.list(limit=2)
        assert [v.id for v in page.data] == ids[::-1][:2] and page.has_more
        rest = await client.videos.list(limit=2, after=page.data[-1].id)
        assert [v.id for v in rest.data] == [ids[0]] and not rest.has_more
        assert [v.id async for v in client.videos.list(limit=1)] == ids[::-1]  # the SDK follows the cursor
        oldest = await client.videos.list(order="asc")
        assert [v.id for v in oldest.data] == ids
        with pytest.raises(openai.NotFoundError):  # not ready yet
            await client.videos.download_content(ids[0])

        before = server.upstream.counters(server.secret, "vidu-ent")["cancels"]
        deleted = await client.videos.delete(ids[1])
        assert deleted.id == ids[1] and deleted.deleted and deleted.object == "video.deleted"
        assert server.upstream.counters(server.secret, "vidu-ent")["cancels"] == before + 1
        with pytest.raises(openai.NotFoundError):
            await client.videos.retrieve(ids[1])
        with pytest.raises(openai.NotFoundError):
            await client.videos.delete(ids[1])
        assert [v.id for v in (await client.videos.list()).data] == [ids[2], ids[0]]
        assert balance(server, name) == 1_000_000 - 2 * PRICE_Q1  # the deleted one was refunded
    finally:
        server.upstream.hold(False, provider="vidu-ent")


async def test_errors_are_openai_shaped_400_or_404_and_free(server, funded, http):
    name, key = funded
    client = sdk(server, key)
    restricted = sdk(server, server.make_key(models="gpt-4o*"))
    credits = balance(server, name)
    with pytest.raises(openai.NotFoundError) as err:
        await client.videos.create(model="sora-9", prompt="x")
    assert err.value.code == "model_not_found"
    for kwargs, param in (({"seconds": "abc"}, "seconds"), ({"seconds": "-4"}, "seconds"),
                          ({"size": "huge"}, "size"), ({"prompt": " "}, "prompt")):
        args = {"model": "viduq1", "prompt": "p", **kwargs}
        with pytest.raises(openai.BadRequestError) as bad:
            await client.videos.create(**args)
        assert bad.value.status_code == 400 and bad.value.body["param"] == param, bad.value.body
    with pytest.raises(openai.BadRequestError) as bad:
        await client.videos.create(model="viduq1", prompt="p", input_reference=("a.txt", b"not an image", "text/plain"))
    assert bad.value.body["param"] == "input_reference"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.videos.create(model="viduq1", prompt="p", extra_body={"input_reference": {"file_id": "file-abc"}})
    assert bad.value.body["param"] == "input_reference"
    # A key that may not use the model, and a key that does not own the video.
    with pytest.raises(openai.NotFoundError) as err:
        await restricted.videos.create(model="viduq1", prompt="x")
    assert err.value.code == "model_not_found"
    mine = await client.videos.create(model="viduq1", prompt="private")
    for call in (restricted.videos.retrieve(mine.id), restricted.videos.delete(mine.id),
                 restricted.videos.download_content(mine.id)):
        with pytest.raises(openai.NotFoundError):
            await call
    # Raw HTTP: no key, a body that is not multipart or JSON, missing fields, a bad limit.
    async with http.post(f"{server.url}/v1/videos", data=b"{}") as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_api_key"
    auth = {"Authorization": f"Bearer {key}", "Connection": "close"}
    async with http.post(f"{server.url}/v1/videos", data=b"{bad", headers={**auth, "Content-Type": "application/json"}
                         ) as resp:
        assert resp.status == 400 and "error" in await resp.json()
    form = aiohttp.FormData()
    form.add_field("model", "viduq1")
    async with http.post(f"{server.url}/v1/videos", data=form, headers=auth) as resp:
        body = await resp.json()
        assert resp.status == 400 and body["error"]["param"] == "prompt", body
    async with http.post(f"{server.url}/v1/videos", json={"prompt": "p"}, headers=auth) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["param"] == "model"
    async with http.get(f"{server.url}/v1/videos", params={"limit": "0"}, headers=auth) as resp:
        assert resp.status == 400
    async with http.put(f"{server.url}/v1/videos", headers=auth) as resp:
        assert resp.status == 405 and "error" in await resp.json()
    assert balance(server, name) == credits - PRICE_Q1  # only the one good create was charged
    # A JSON body works as well as multipart.
    async with http.post(f"{server.url}/v1/videos", json={"model": "viduq1", "prompt": "json", "seconds": 2},
                         headers=auth) as resp:
        body = await resp.json()
        assert resp.status == 200 and body["seconds"] == "5" and body["size"] == "1280x720", body


async def test_failed_video_is_refunded(server, http):
    name, key = server.make_named_key(credits=500_000)
    client = sdk(server, key)
    server.upstream.fault(provider="vidu-ent", op="create", kind="fail_task", count=1, secret=server.secret,
                          err_code="CreationPolicyViolation", err_msg="blocked")
    video = await client.videos.create(model="viduq1", prompt="will fail")
    done = await wait_done(client, video.id)
    assert done.status == "failed" and done.error is not None, done
    assert done.error.code == "CreationPolicyViolation"
    assert balance(server, name) == 500_000
    with pytest.raises(openai.NotFoundError):
        await client.videos.download_content(video.id)


async def test_webhooks_carry_video_objects(server, http):
    name = f"wh-{int(time.time() * 1000)}"
    key = server.make_named_key(name)[1]
    whsec = server.cli("keys", "webhook-secret", name).strip().splitlines()[-1]
    client = sdk(server, key)
    with Receiver("127.0.0.1") as rx:
        video = await client.videos.create(model="viduq1", prompt="hooked", extra_body={"callback_url": rx.url()})
        hits = await rx.wait(lambda hits: any(h.json()["status"] == "completed" for h in hits), within=40)
    bodies = [h.json() for h in hits]
    for hit in hits:
        verify_signature(whsec, hit.headers, hit.body)
    assert all(b["object"] == "video" and b["id"] == video.id for b in bodies), bodies
    statuses = [b["status"] for b in bodies]
    order = {"queued": 0, "in_progress": 1, "completed": 2}
    assert statuses == sorted(statuses, key=order.__getitem__) and len(set(statuses)) == len(statuses), statuses
    assert bodies[-1]["progress"] == 100 and bodies[-1]["seconds"] == "5"


async def test_viduq1_on_a_vidu_web_channel(server, funded, http):
    """With the platform channel disabled, the web-format channel serves viduq1 through the same table."""
    key = funded[1]
    client = sdk(server, key)
    server.cli("channels", "disable", "sandbox-vidu-ent")
    try:
        await asyncio.sleep(2.5)  # every process sees a channel change within 2 s
        video = await client.videos.create(model="viduq1", prompt="on the web format", size="1280x720")
        task = await unified(http, server, key, video.id)
        assert task["provider"] == "vidu", task
        done = await client.videos.poll(video.id, poll_interval_ms=200)
        assert done.status == "completed" and done.seconds == "5", done
        width, height, seconds = probe_mp4((await client.videos.download_content(video.id)).content)
        assert width > height and abs(seconds - 5) < 0.3
        thumb = await client.videos.download_content(video.id, variant="thumbnail")
        assert thumb.content[:3] == b"\xff\xd8\xff"
        with_image = await client.videos.create(model="viduq1", prompt="web image",
                                                input_reference=("f.png", png((0, 200, 0)), "image/png"))
        assert (await wait_done(client, with_image.id)).status == "completed"
    finally:
        server.cli("channels", "enable", "sandbox-vidu-ent")


async def test_idempotency_key_replays_the_same_video(server, funded):
    client = sdk(server, funded[1])
    headers = {"Idempotency-Key": f"video-{time.time()}"}
    first = await client.videos.create(model="viduq1", prompt="only once", extra_headers=headers)
    again = await client.videos.create(model="viduq1", prompt="only once", extra_headers=headers)
    assert again.id == first.id
    with pytest.raises(openai.UnprocessableEntityError):
        await client.videos.create(model="viduq1", prompt="something else", extra_headers=headers)


async def test_out_of_credit_is_insufficient_quota(server):
    client = sdk(server, server.make_key(credits=10))
    with pytest.raises(openai.RateLimitError) as err:
        await client.videos.create(model="viduq1", prompt="too expensive")
    assert err.value.code == "insufficient_quota"


@pytest.mark.parametrize(("model", "provider", "kwargs", "produced"), [
    ("kling-v1", "kling", {"seconds": "8", "size": "1280x720"}, "10"),
    ("ray-2", "luma", {"seconds": "4", "size": "720x1280"}, "5"),
    ("gen4_turbo", "runway", {"seconds": "5", "size": "1280x720"}, "5"),
])
async def test_every_sandbox_video_model(server, funded, http, model, provider, kwargs, produced):
    """The table's entries for the other video providers: the SDK's create, poll and download end in a
    playable MP4 from that provider's channel, and `seconds` is rounded up to the model's duration."""
    client = sdk(server, funded[1])
    if model == "gen4_turbo":  # Runway animates an image: text alone is a 400 on input_reference
        with pytest.raises(openai.BadRequestError) as refused:
            await client.videos.create(model=model, prompt="text alone", **kwargs)
        assert refused.value.body["param"] == "input_reference", refused.value.body
        kwargs = {**kwargs, "input_reference": ("frame.png", png_sized(640, 360), "image/png")}
    video = await client.videos.create(model=model, prompt=f"a {model} clip", **kwargs)
    assert video.id.startswith("video_") and video.seconds == produced, video
    done = await client.videos.poll(video.id, poll_interval_ms=200)
    assert done.status == "completed", done
    content = await client.videos.download_content(video.id)
    width, height, seconds = probe_mp4(content.content)
    assert (height > width) == (kwargs["size"] == "720x1280"), (width, height)
    assert seconds > 0
    task = await unified(http, server, funded[1], video.id)
    assert task["provider"] == provider and task["status"] == "succeeded", task
    native = {"kling": "/kling/v1/videos/text2video?pageNum=1&pageSize=500",
              "luma": "/luma/dream-machine/v1/generations?limit=100"}.get(provider)
    if native:  # the provider's own list shows its own routes' tasks, not the /v1/videos ones
        async with http.get(server.url + native, headers={"Authorization": f"Bearer {funded[1]}"}) as resp:
            assert resp.status == 200, await resp.text()
            assert video.id not in await resp.text()


def png_sized(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(buf, "PNG")
    return buf.getvalue()
