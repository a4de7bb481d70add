"""`/v1/images/generations` over every sandbox image provider, with the official `openai` SDK over HTTP:
dall-e-3 (openai relay), cogview-4 (zhipu, synchronous), kling-v1 / gen4_image / photon-1 (tasks,
awaited), each returning a real image as `url` (gengate's media URL) and as `b64_json`; a task that
fails upstream is an OpenAI-style error and refunded; a task past GENGATE_IMAGE_WAIT is cancelled and
refunded.

client (openai.AsyncOpenAI) → `gengate serve --sandbox` (subprocess) → HTTP → in-process emulators.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time

import aiohttp
import openai
import pytest
from PIL import Image

pytestmark = pytest.mark.timeout(240)

ENV = {"GENGATE_POLL_INTERVAL": "0.2", "GENGATE_SANDBOX_TASK_SECONDS": "1.5"}
MODELS = ("dall-e-3", "cogview-4", "kling-v1", "gen4_image", "photon-1")
TASK_MODELS = {"kling-v1": "kling", "gen4_image": "runway", "photon-1": "luma"}


@pytest.fixture(scope="module")
def server(make_server):
    return make_server(env=ENV)


def sdk(server, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        return img.size


@pytest.mark.parametrize("model", MODELS)
async def test_each_model_url_and_b64(server, http: aiohttp.ClientSession, model: str) -> None:
    name, key = server.make_named_key(credits=10_000_000)
    client = sdk(server, key)
    by_url = await client.images.generate(model=model, prompt="a lighthouse at dusk", size="1024x1024")
    assert by_url.created > 0 and len(by_url.data) == 1
    url = by_url.data[0].url
    assert url and url.startswith(server.url), url
    async with http.get(url) as resp:
        assert resp.status == 200
        fetched = await resp.read()
    width, height = image_size(fetched)
    assert width > 0 and height > 0
    after_one = server.credits(name)
    assert after_one < 10_000_000  # priced per image

    by_b64 = await client.images.generate(model=model, prompt="a lighthouse at dawn", response_format="b64_json")
    raw = base64.b64decode(by_b64.data[0].b64_json or "")
    assert image_size(raw)[0] > 0
    assert server.credits(name) < after_one


async def test_price_follows_model_and_size(server) -> None:
    """Runway's gen4_image costs 5 credits at 720p and 8 at 1080p: a square 1024 size is 1080p."""
    name, key = server.make_named_key(credits=10_000_000)
    await sdk(server, key).images.generate(model="gen4_image", prompt="a red square", size="1024x1024")
    assert server.credits(name) == 10_000_000 - 8 * 10_000


async def test_kling_several_images(server, http: aiohttp.ClientSession) -> None:
    _, key = server.make_named_key(credits=10_000_000)
    reply = await sdk(server, key).images.generate(model="kling-v1", prompt="three cats", n=3, size="1792x1024")
    assert len(reply.data) == 3 and len({d.url for d in reply.data}) == 3
    for item in reply.data:
        async with http.get(item.url) as resp:
            assert resp.status == 200 and image_size(await resp.read())[0] > 0


@pytest.mark.parametrize("model", sorted(TASK_MODELS))
async def test_task_failure_is_openai_error_and_refunded(server, model: str) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.fault(provider=TASK_MODELS[model], kind="fail_task", count=1, secret=server.secret,
                          err_msg="prompt blocked by moderation")
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk(server, key).images.generate(model=model, prompt="something forbidden")
    err = caught.value
    assert err.status_code == 502, err
    body = err.body if isinstance(err.body, dict) else {}
    assert set(body) >= {"message", "type", "code"}, err.body
    assert "failed" in body["message"] and body["type"] == "server_error"
    assert server.credits(name) == 1_000_000


async def test_bad_input_is_400_and_free(server) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server, key)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="photon-1", prompt="two", n=2)
    assert caught.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        await client.images.generate(model="kling-v1", prompt="x", response_format="png")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        await client.images.generate(model="photon-9", prompt="x")
    assert server.credits(name) == 1_000_000


async def test_timeout_cancels_and_refunds(make_server) -> None:
    server = make_server(env={**ENV, "GENGATE_IMAGE_WAIT": "1"})
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.hold(True, provider="luma")
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk(server, key).images.generate(model="photon-1", prompt="slow")
    finally:
        server.upstream.hold(False, provider="luma")
    assert caught.value.status_code == 504
    assert "cancelled" in str(caught.value.body)
    assert server.credits(name) == 1_000_000
    rows = server.db_query("SELECT state FROM tasks WHERE provider = 'luma'")
    assert [r["state"] for r in rows] == ["cancelled"]


async def test_a_client_that_goes_away_cancels_its_image_task(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.hold(True, provider="luma")
    try:
        with pytest.raises(TimeoutError):  # the client gives up while the task is held upstream
            async with http.post(f"{server.url}/v1/images/generations", headers={"Authorization": f"Bearer {key}"},
                                 json={"model": "photon-1", "prompt": "never mind"},
                                 timeout=aiohttp.ClientTimeout(total=2)) as resp:
                await resp.read()
        query = ("SELECT t.state FROM tasks t JOIN keys k ON k.id = t.key_id "
                 f"WHERE k.name = '{name}'")
        deadline = time.monotonic() + 10
        while [r["state"] for r in server.db_query(query)] != ["cancelled"]:
            assert time.monotonic() < deadline, server.db_query(query)
            await asyncio.sleep(0.2)
    finally:
        server.upstream.hold(False, provider="luma")
    assert server.credits(name) == 1_000_000  # refunded: nobody was there to take the image
