"""Kling's official format (`/kling/v1`) end to end on SQLite and PostgreSQL: client (aiohttp) →
`gengate serve --sandbox` (subprocess) → HTTP → the in-process Kling emulator. Nothing is mocked."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import time
import uuid
from typing import Any

import aiohttp
import av
import pytest
from harness.kling import assert_kling_error
from PIL import Image

pytestmark = pytest.mark.timeout(180)

DIGITS18 = re.compile(r"^\d{18}$")
PRICE_5S_STD = 100_000  # 5 s x 20,000 credits per second (shipped price table)
PRICE_IMAGE_1K = 3_500


def t2v(prompt: str = "a paper boat on a rainy street", **extra: Any) -> dict[str, Any]:
    return {"model_name": "kling-v1", "prompt": prompt, "duration": "5", "mode": "std", "aspect_ratio": "16:9",
            **extra}


def png_base64(width: int = 640, height: int = 480) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def check_task(data: dict[str, Any]) -> None:
    assert DIGITS18.match(data["task_id"]), data
    assert data["task_status"] in ("submitted", "processing", "succeed", "failed"), data
    assert isinstance(data["task_info"], dict)
    now_ms = time.time() * 1000
    for name in ("created_at", "updated_at"):
        assert isinstance(data[name], int) and now_ms - 600_000 < data[name] <= now_ms + 1000, (name, data)
    assert data["updated_at"] >= data["created_at"]


async def fetch(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url, allow_redirects=False) as resp:
        assert "Authorization" not in resp.request_info.headers
        assert resp.status == 200, (resp.status, url)
        return await resp.read()


def mp4_seconds(data: bytes) -> float:
    assert data[4:8] == b"ftyp" and b"moov" in data
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) >= 1
        return container.duration / 1_000_000


async def test_text2video_to_succeed_with_gengate_media(sandbox_server, kling, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = kling(server, key)
    task = await client.create_ok("text2video", t2v(external_task_id="order-1187"))
    check_task(task)
    assert task["task_status"] == "submitted"
    assert task["task_info"] == {"external_task_id": "order-1187"}
    assert server.credits(name) == 1_000_000 - PRICE_5S_STD  # reserved at create

    done = await client.wait("text2video", task["task_id"])
    assert done["task_status"] == "succeed", done
    check_task(done)
    assert done["task_id"] == task["task_id"] and done["created_at"] == task["created_at"]
    assert done["task_info"] == {"external_task_id": "order-1187"}
    [video] = done["task_result"]["videos"]
    assert video["url"].startswith(server.url + "/"), video
    assert isinstance(video["duration"], str) and float(video["duration"]) == pytest.approx(5, abs=0.2)
    seconds = mp4_seconds(await fetch(http, video["url"]))
    assert seconds == pytest.approx(float(video["duration"]), abs=0.3)
    assert server.credits(name) == 1_000_000 - PRICE_5S_STD  # settled at the price of what was made

    # The unified task API sees the same task by the same id.
    async with http.get(f"{server.url}/v1/tasks/{task['task_id']}",
                        headers={"Authorization": f"Bearer {key}"}) as resp:
        unified = await resp.json()
    assert unified["status"] == "succeeded" and unified["provider"] == "kling", unified
    assert unified["cost"] == {"reserved": PRICE_5S_STD, "settled": PRICE_5S_STD}

    # The client's external_task_id finds the task too.
    reply = await client.get("text2video", "order-1187")
    assert reply.status == 200 and reply.body["data"]["task_id"] == task["task_id"], reply.text


async def test_image2video_with_base64_image_and_tail_and_with_url(sandbox_server, kling, http):
    server = sandbox_server
    client = kling(server, server.make_key())
    first = await client.create_ok("image2video", {"model_name": "kling-v1", "image": png_base64(),
                                                   "image_tail": png_base64(480, 640), "prompt": "it turns",
                                                   "duration": "5"})
    by_url = await client.create_ok("image2video", {"image": "https://example.com/cat.png", "mode": "pro",
                                                     "duration": "10"})
    for task in (first, by_url):
        done = await client.wait("image2video", task["task_id"])
        assert done["task_status"] == "succeed", done
        [video] = done["task_result"]["videos"]
        assert video["url"].startswith(server.url + "/")
        assert mp4_seconds(await fetch(http, video["url"])) > 4
    # One kind's task is not found under another kind's path.
    reply = await client.get("text2video", first["task_id"])
    assert_kling_error(reply, 1203)


async def test_image_generation_of_several_images(sandbox_server, kling, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=100_000)
    client = kling(server, key)
    task = await client.create_ok("images", {"model_name": "kling-v1", "prompt": "a red kite over the sea", "n": 3,
                                             "aspect_ratio": "1:1"})
    check_task(task)
    assert server.credits(name) == 100_000 - 3 * PRICE_IMAGE_1K
    done = await client.wait("images", task["task_id"])
    assert done["task_status"] == "succeed", done
    images = done["task_result"]["images"]
    assert [i["index"] for i in images] == [0, 1, 2]
    for item in images:
        assert item["url"].startswith(server.url + "/")
        with Image.open(io.BytesIO(await fetch(http, item["url"]))) as img:
            img.load()
            assert img.format == "PNG" and img.size[0] == img.size[1]
    assert server.credits(name) == 100_000 - 3 * PRICE_IMAGE_1K


async def test_list_pages_the_keys_own_tasks_of_one_kind(sandbox_server, kling):
    server = sandbox_server
    client = kling(server, server.make_key())
    other = kling(server, server.make_key())
    ids = [(await client.create_ok("text2video", t2v(f"scene {i}")))["task_id"] for i in range(5)]
    await client.create_ok("images", {"prompt": "not a video"})
    await other.create_ok("text2video", t2v("someone else's"))

    reply = await client.list("text2video", pageNum=1, pageSize=2)
    assert reply.status == 200 and reply.body["code"] == 0, reply.text
    page1 = [t["task_id"] for t in reply.body["data"]]
    page2 = [t["task_id"] for t in (await client.list("text2video", pageNum=2, pageSize=2)).body["data"]]
    page3 = [t["task_id"] for t in (await client.list("text2video", pageNum=3, pageSize=2)).body["data"]]
    assert page1 + page2 + page3 == ids[::-1]  # newest first, only this key's text2video tasks
    assert (await client.list("text2video", pageNum=4, pageSize=2)).body["data"] == []
    default = (await client.list("text2video")).body["data"]
    assert [t["task_id"] for t in default] == ids[::-1]
    assert len((await client.list("images")).body["data"]) == 1
    for bad in ({"pageNum": 0}, {"pageSize": 501}, {"pageNum": 1001}, {"pageNum": "x"}):
        assert_kling_error(await client.list("text2video", **bad), 1201)

    # Another key's task does not exist for this one.
    assert_kling_error(await other.get("text2video", ids[0]), 1203)


async def test_external_task_id_is_unique_per_key(sandbox_server, kling):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = kling(server, key)
    external = f"order-{uuid.uuid4().hex[:8]}"
    await client.create_ok("text2video", t2v(external_task_id=external))
    before = server.credits(name)
    creates = server.upstream.creates(server.secret, "kling")
    for kind, body in (("text2video", t2v(external_task_id=external)),
                       ("images", {"prompt": "x", "external_task_id": external})):
        reply = await client.create(kind, body)
        assert_kling_error(reply, 1201)
        assert "external_task_id" in reply.body["message"]
    assert server.credits(name) == before
    assert server.upstream.creates(server.secret, "kling") == creates
    # Another key may use the same value.
    await kling(server, server.make_key()).create_ok("text2video", t2v(external_task_id=external))


async def test_special_characters_in_external_task_id_and_idempotency_key(sandbox_server, kling):
    server = sandbox_server
    client = kling(server, server.make_key())
    tricky = f'order-%_"\\ {uuid.uuid4().hex[:6]}'  # LIKE wildcards, a quote and a backslash
    near = tricky.replace("%", "x")  # matches `tricky` as a LIKE pattern, is another value
    await client.create_ok("text2video", t2v(external_task_id=near))
    first = await client.create_ok("text2video", t2v(external_task_id=tricky))
    assert first["task_info"] == {"external_task_id": tricky}
    assert_kling_error(await client.create("text2video", t2v(external_task_id=tricky)), 1201)

    # Concurrent creates naming one new value: exactly one task.
    fresh = f"order-{uuid.uuid4().hex[:8]}"
    replies = await asyncio.gather(*(client.create("images", {"prompt": f"race {i}", "external_task_id": fresh})
                                     for i in range(5)))
    assert sorted(r.status for r in replies) == [200, 400, 400, 400, 400], [r.text for r in replies]
    for r in replies:
        if r.status == 400:
            assert_kling_error(r, 1201)

    headers = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    once = await client.create_ok("text2video", t2v("same request"), headers=headers)
    again = await client.create_ok("text2video", t2v("same request"), headers=headers)
    assert again["task_id"] == once["task_id"]
    reply = await client.create("text2video", t2v("another body"), headers=headers)
    assert reply.status == 422 and reply.body["code"] == 1200, reply.text


async def test_a_large_base64_image_is_stashed_and_sent_whole(sandbox_server, kling):
    server = sandbox_server
    client = kling(server, server.make_key())
    noise = Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3))
    buf = io.BytesIO()
    noise.save(buf, format="PNG", compress_level=0)
    image = base64.b64encode(buf.getvalue()).decode()
    assert len(image) > 256 * 1024
    task = await client.create_ok("image2video", {"image": image, "prompt": "static"})
    row = server.db_query(f"SELECT request, upstream_request FROM tasks WHERE public_id = '{task['task_id']}'")[0]
    assert len(row["request"]) < 4096 and len(row["upstream_request"]) < 4096, row
    done = await client.wait("image2video", task["task_id"])
    assert done["task_status"] == "succeed", done
    assert image[:100] not in json.dumps(done)


async def test_openapi_documents_the_kling_routes(sandbox_server, http):
    async with http.get(f"{sandbox_server.url}/openapi.json") as resp:
        doc = await resp.json()
    for path in ("/kling/v1/videos/text2video", "/kling/v1/videos/image2video", "/kling/v1/images/generations"):
        assert {"post", "get"} <= set(doc["paths"][path]), path
        assert "get" in doc["paths"][path + "/{task_id}"], path


async def test_cancel_through_the_unified_api_refunds_and_shows_failed(sandbox_server, kling, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = kling(server, key)
    task = await client.create_ok("text2video", t2v("cancel me", mode="pro", duration="10"))
    async with http.post(f"{server.url}/v1/tasks/{task['task_id']}/cancel",
                         headers={"Authorization": f"Bearer {key}", "Connection": "close"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "cancelled"
    shown = (await client.get("text2video", task["task_id"])).body["data"]
    assert shown["task_status"] == "failed" and shown["task_status_msg"], shown
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [{"credits": 1_000_000}]
