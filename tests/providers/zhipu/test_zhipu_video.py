"""CogVideoX through the task engine: the `zhipuai` SDK's `videos.generations` +
`videos.retrieve_videos_result` → gengate (saved before the reply, polled upstream, re-hosted) → the GLM
emulator; a failed task is refunded; bad input is GLM's 4xx and free; `cogvideox-3` on `/v1/videos`."""

from __future__ import annotations

import asyncio
import time
import warnings

import aiohttp
import openai
import pytest
from harness.zhipu import run_sdk

pytestmark = [pytest.mark.timeout(300), pytest.mark.filterwarnings("ignore::DeprecationWarning")]
warnings.filterwarnings("ignore", category=DeprecationWarning)

ENV = {"GENGATE_POLL_INTERVAL": "0.2", "GENGATE_SANDBOX_TASK_SECONDS": "2"}
PRICE_5S = 140_000

POLL = """
import time
task = client.videos.generations(model="cogvideox-3", prompt="a cat surfing", duration=5, quality="speed")
out["submit"] = task.model_dump()
end = time.time() + 60
while True:
    res = client.videos.retrieve_videos_result(id=task.id)
    if res.task_status != "PROCESSING" or time.time() > end:
        break
    time.sleep(0.3)
out["result"] = res.model_dump()
"""


@pytest.fixture(scope="module")
def server(make_server):
    return make_server(env=ENV)


async def test_sdk_video_generations_and_result(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    out = run_sdk(server, key, POLL)
    submit, result = out["submit"], out["result"]
    assert submit["task_status"] == "PROCESSING" and submit["model"] == "cogvideox-3" and submit["id"]
    assert server.db_query(f"SELECT count(*) AS n FROM tasks WHERE public_id = '{submit['id']}'")[0]["n"] == 1
    assert result["task_status"] == "SUCCESS", result
    video = result["video_result"][0]
    assert video["url"].startswith(server.url) and video["cover_image_url"].startswith(server.url)  # re-hosted
    async with http.get(video["url"]) as resp:
        data = await resp.read()
        assert resp.status == 200 and data[4:8] == b"ftyp"
    async with http.get(video["cover_image_url"]) as resp:
        assert resp.status == 200 and (await resp.read())[:8] == b"\x89PNG\r\n\x1a\n"
    assert server.credits(name) == 1_000_000 - PRICE_5S
    async with http.get(f"{server.url}/v1/tasks/{submit['id']}", headers={"Authorization": f"Bearer {key}"}) as resp:
        unified = await resp.json()
        assert resp.status == 200, unified
    assert unified["id"] == submit["id"] and unified["provider"] == "zhipu", unified


def test_failed_video_is_refunded(server) -> None:
    server.upstream.fault(provider="zhipu", op="create", kind="fail_task", count=1)
    name, key = server.make_named_key(credits=1_000_000)
    out = run_sdk(server, key, POLL)
    assert out["result"]["task_status"] == "FAIL", out
    deadline = time.monotonic() + 10
    while server.credits(name) != 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.credits(name) == 1_000_000


async def test_bad_video_input_is_glm_4xx_and_free(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    url = server.url + "/api/paas/v4/videos/generations"
    for body, code in (({"prompt": "x"}, "1213"), ({"model": "cogvideox-3"}, "1213"),
                       ({"model": "cogvideox-3", "prompt": "x", "duration": 7}, "1214"),
                       ({"model": "cogvideox-3", "prompt": "x" * 513}, "1214"),
                       ({"model": "cogvideox-9", "prompt": "x"}, "1211")):
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
            got = await resp.json()
            assert resp.status == 400 and got["error"]["code"] == code, (body, got)
    async with http.get(server.url + "/api/paas/v4/async-result/123", headers={"Authorization": f"Bearer {key}"}) as r:
        assert r.status == 404 and "code" in (await r.json())["error"]
    assert server.credits(name) == 1_000_000
    _, poor = server.make_named_key(credits=0)
    async with aiohttp.ClientSession() as fresh, fresh.post(  # the CLI took a while: no idle keep-alive
            url, json={"model": "cogvideox-3", "prompt": "x"}, headers={"Authorization": f"Bearer {poor}"}) as resp:
        assert resp.status == 429 and (await resp.json())["error"]["code"] == "1113"


async def test_cogvideox_on_v1_videos(server) -> None:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=server.make_key(credits=1_000_000),
                                max_retries=0, timeout=30)
    video = await client.videos.create(model="cogvideox-3", prompt="a cat surfing", seconds="4")
    end = time.monotonic() + 60
    while video.status not in ("completed", "failed") and time.monotonic() < end:
        await asyncio.sleep(0.3)
        video = await client.videos.retrieve(video.id)
    assert video.status == "completed" and video.model == "cogvideox-3" and video.seconds == "5", video
    content = await client.videos.download_content(video.id)
    assert content.content[4:8] == b"ftyp"
