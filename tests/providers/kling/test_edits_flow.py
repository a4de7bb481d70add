"""Kling's creates on existing media, end to end (client → `gengate serve --sandbox` → emulator, over
HTTP, on SQLite and PostgreSQL): extend a video of this key, lip-sync it, dress a person in a garment;
each result downloadable from gengate's own URLs, charged at the shipped price."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from harness.kling import assert_kling_error
from PIL import Image

from .test_flow import check_task, fetch, mp4_seconds

pytestmark = pytest.mark.timeout(180)

PRICE_5S_STD = 100_000
PRICE_EXTEND_STD = 100_000
PRICE_LIP_SYNC_SECOND = 10_000
PRICE_TRY_ON = 100_000


def png_base64(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 160, 90)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


async def made_video(client: Any, prompt: str = "a lighthouse at dusk") -> dict[str, Any]:
    task = await client.create_ok("text2video", {"model_name": "kling-v1", "prompt": prompt, "duration": "5"})
    done = await client.wait("text2video", task["task_id"])
    assert done["task_status"] == "succeed", done
    return done["task_result"]["videos"][0]


async def test_extend_adds_four_to_five_seconds(sandbox_server, kling, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = kling(server, key)
    parent = await made_video(client)
    parent_seconds = float(parent["duration"])

    task = await client.create_ok("extend", {"video_id": parent["id"], "prompt": "the light turns on",
                                             "external_task_id": "ext-1"})
    check_task(task)
    assert task["task_info"]["parent_video"]["id"] == parent["id"], task
    assert task["task_info"]["external_task_id"] == "ext-1"
    assert server.credits(name) == 1_000_000 - PRICE_5S_STD - PRICE_EXTEND_STD  # reserved at create

    done = await client.wait("extend", task["task_id"])
    assert done["task_status"] == "succeed", done
    info = done["task_info"]["parent_video"]
    assert info["id"] == parent["id"] and float(info["duration"]) == pytest.approx(parent_seconds, abs=0.1), info
    [video] = done["task_result"]["videos"]
    assert video["url"].startswith(server.url + "/") and video["id"] != parent["id"]
    assert parent_seconds + 3.9 <= float(video["duration"]) <= parent_seconds + 5.1, (parent, video)
    assert mp4_seconds(await fetch(http, video["url"])) == pytest.approx(float(video["duration"]), abs=0.3)
    assert server.credits(name) == 1_000_000 - PRICE_5S_STD - PRICE_EXTEND_STD

    # An extended video is a Kling video of this key too: it can be extended again.
    again = await client.create_ok("extend", {"video_id": video["id"]})
    longer = (await client.wait("extend", again["task_id"]))["task_result"]["videos"][0]
    assert float(longer["duration"]) >= float(video["duration"]) + 3.9

    # Read back by id, by the client's external_task_id and in the list of extensions (newest first).
    assert (await client.get("extend", "ext-1")).body["data"]["task_id"] == task["task_id"]
    listed = (await client.list("extend", pageNum=1, pageSize=10)).body["data"]
    assert [t["task_id"] for t in listed] == [again["task_id"], task["task_id"]]
    assert (await client.list("text2video")).body["data"][0]["task_result"]["videos"][0]["id"] == parent["id"]
    assert_kling_error(await client.get("text2video", task["task_id"]), 1203)


async def test_a_video_that_is_not_this_keys_own_is_not_found(sandbox_server, kling):
    server = sandbox_server
    owner = kling(server, server.make_key())
    parent = await made_video(owner, "someone else's harbour")
    owner_task_id = (await owner.list("text2video")).body["data"][0]["task_id"]

    name, key = server.make_named_key(credits=1_000_000)
    stranger = kling(server, key)
    before = server.upstream.creates(server.secret, "kling")
    for kind, body in (("extend", {"video_id": parent["id"]}),
                       ("lip_sync", {"input": {"video_id": parent["id"], "mode": "text2video", "text": "hi",
                                               "voice_id": "girlfriend_1_speech02"}})):
        reply = await stranger.create(kind, body)
        assert_kling_error(reply, 1203)
        assert "Traceback" not in reply.text
    # An unknown id and a task id (not a video id) are not found either.
    assert_kling_error(await owner.create("extend", {"video_id": owner_task_id}), 1203)
    assert_kling_error(await owner.create("extend", {"video_id": "123456789012345678"}), 1203)
    assert server.credits(name) == 1_000_000
    assert server.upstream.creates(server.secret, "kling") == before


async def test_lip_sync_by_text_on_a_video_of_this_key_and_by_audio_on_a_url(sandbox_server, kling, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = kling(server, key)
    parent = await made_video(client, "a person talking")
    spent = PRICE_5S_STD

    by_text = await client.create_ok("lip_sync", {"input": {
        "video_id": parent["id"], "mode": "text2video", "text": "Hello there", "voice_id": "girlfriend_1_speech02",
        "voice_language": "en", "voice_speed": 1.2}})
    seconds = round(float(parent["duration"]))
    spent += seconds * PRICE_LIP_SYNC_SECOND
    assert by_text["task_info"]["parent_video"]["id"] == parent["id"]
    assert server.credits(name) == 1_000_000 - spent

    audio = base64.b64encode(b"ID3" + bytes(2000)).decode()
    by_audio = await client.create_ok("lip_sync", {"input": {
        "video_url": "https://example.com/talk.mp4", "mode": "audio2video", "audio_type": "file",
        "audio_file": audio}})
    assert "parent_video" not in by_audio["task_info"]
    async with http.get(f"{server.url}/v1/tasks/{by_audio['task_id']}",
                        headers={"Authorization": f"Bearer {key}", "Connection": "close"}) as resp:
        cost = (await resp.json())["cost"]
    assert cost["reserved"] == 60 * PRICE_LIP_SYNC_SECOND, cost  # a video by URL: its longest reserved

    done_text = await client.wait("lip_sync", by_text["task_id"])
    done_audio = await client.wait("lip_sync", by_audio["task_id"])
    for done in (done_text, done_audio):
        assert done["task_status"] == "succeed", done
        [video] = done["task_result"]["videos"]
        assert video["url"].startswith(server.url + "/")
        assert mp4_seconds(await fetch(http, video["url"])) == pytest.approx(float(video["duration"]), abs=0.3)
    assert float(done_text["task_result"]["videos"][0]["duration"]) == pytest.approx(float(parent["duration"]),
                                                                                   abs=0.2)
    made = round(float(done_audio["task_result"]["videos"][0]["duration"]))
    assert server.credits(name) == 1_000_000 - spent - made * PRICE_LIP_SYNC_SECOND  # settled on what was made
    assert audio[:40] not in str(done_audio)
    listed = (await client.list("lip_sync", pageNum=1, pageSize=1)).body["data"]
    assert [t["task_id"] for t in listed] == [by_audio["task_id"]]  # newest first
    listed = (await client.list("lip_sync", pageNum=2, pageSize=1)).body["data"]
    assert [t["task_id"] for t in listed] == [by_text["task_id"]]


async def test_virtual_try_on_makes_one_png(sandbox_server, kling, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = kling(server, key)
    task = await client.create_ok("try_on", {"model_name": "kolors-virtual-try-on-v1",
                                             "human_image": png_base64(600, 800),
                                             "cloth_image": "https://example.com/shirt.png"})
    check_task(task)
    assert server.credits(name) == 1_000_000 - PRICE_TRY_ON
    done = await client.wait("try_on", task["task_id"])
    assert done["task_status"] == "succeed", done
    [image] = done["task_result"]["images"]
    assert image["index"] == 0 and image["url"].startswith(server.url + "/")
    with Image.open(io.BytesIO(await fetch(http, image["url"]))) as img:
        img.load()
        assert img.format == "PNG" and img.size[0] / img.size[1] == pytest.approx(0.75, abs=0.02)
    assert server.credits(name) == 1_000_000 - PRICE_TRY_ON
    listed = (await client.list("try_on")).body["data"]
    assert [t["task_id"] for t in listed] == [task["task_id"]]


async def test_openapi_documents_the_new_routes(sandbox_server, http):
    async with http.get(f"{sandbox_server.url}/openapi.json") as resp:
        doc = await resp.json()
    for path in ("/kling/v1/videos/video-extend", "/kling/v1/videos/lip-sync",
                 "/kling/v1/images/kolors-virtual-try-on"):
        assert {"post", "get"} <= set(doc["paths"][path]), path
        assert "get" in doc["paths"][path + "/{task_id}"], path
