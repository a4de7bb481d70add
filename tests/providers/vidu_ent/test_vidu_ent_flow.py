"""The Vidu platform format (`/vidu/ent/v2`) end to end, on SQLite and PostgreSQL.

client (aiohttp) → `gengate serve --sandbox` (subprocess) → HTTP → the in-process platform emulator.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re

import pytest
from harness.durability import balance
from harness.vidu import assert_vidu_error
from harness.vidu_ent import ViduEntClient, probe_mp4
from PIL import Image

pytestmark = pytest.mark.timeout(180)

DIGITS18 = re.compile(r"^\d{18,}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PRICE_Q1 = 75_000  # viduq1: 5 s at 1080p, 15,000 credits a second (shipped prices)
IMAGE = "https://example.com/frame.png"


def png_data_url(color: tuple[int, int, int] = (10, 120, 200)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def shared_key(sandbox_server) -> tuple[str, str]:
    """One funded key for the tests that only check that nothing was charged."""
    return sandbox_server.make_named_key(credits=5_000_000)


@pytest.fixture
def ent(http):
    def make(server, key, scheme: str = "Token") -> ViduEntClient:
        return ViduEntClient(http, server.url, key, scheme)

    return make


async def download(http, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with http.get(url, headers=headers or {}, allow_redirects=False) as resp:
        return resp.status, await resp.read()


async def test_text2video_create_poll_download(sandbox_server, ent, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    c = ent(server, key)
    created = await c.create_ok("text2video", {"model": "viduq1", "prompt": "a paper boat", "payload": "mine",
                                               "aspect_ratio": "16:9", "extra_field": {"kept": True}})
    assert DIGITS18.match(created["task_id"]), created
    assert created["state"] in ("created", "queueing", "processing")
    assert ISO_Z.match(created["created_at"])
    # The reply echoes the request, known and unknown fields, and the defaults the platform fills in.
    assert created["model"] == "viduq1" and created["prompt"] == "a paper boat" and created["payload"] == "mine"
    assert created["extra_field"] == {"kept": True}
    assert created["duration"] == 5 and created["resolution"] == "1080p" and created["images"] == []
    assert "credits" in created
    assert balance(server, name) == 1_000_000 - PRICE_Q1  # reserved

    done = await c.wait(created["task_id"])
    assert done["state"] == "success", done
    assert done["id"] == created["task_id"] and done["err_code"] == "" and done["payload"] == "mine"
    [creation] = done["creations"]
    assert DIGITS18.match(creation["id"]) and creation["id"] != created["task_id"]
    for f in ("url", "cover_url", "watermarked_url"):
        assert creation[f].startswith(server.url + "/"), creation
    status, data = await download(http, creation["url"])
    assert status == 200
    width, height, seconds = probe_mp4(data)
    assert width > height and abs(seconds - 5) < 0.3, (width, height, seconds)
    status, cover = await download(http, creation["cover_url"])
    with Image.open(io.BytesIO(cover)) as img:
        assert img.format == "JPEG"
    status, part = await download(http, creation["url"], {"Range": "bytes=0-9"})
    assert status == 206 and part == data[:10]

    async with http.get(f"{server.url}/v1/tasks/{created['task_id']}",
                        headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        unified = await resp.json()
    assert unified["provider"] == "vidu-ent" and unified["model"] == "viduq1", unified
    assert unified["cost"] == {"reserved": PRICE_Q1, "settled": PRICE_Q1}
    assert balance(server, name) == 1_000_000 - PRICE_Q1


async def test_every_generation_action(sandbox_server, ent, http):
    server = sandbox_server
    c = ent(server, server.make_key(), scheme="Bearer")  # Bearer works as well as Token
    bodies = {
        "img2video": {"model": "viduq1", "images": [png_data_url()], "prompt": "it moves"},
        "start-end2video": {"model": "viduq1", "images": [IMAGE, png_data_url((1, 2, 3))]},
        "reference2video": {"model": "viduq1", "images": [IMAGE, IMAGE, IMAGE], "prompt": "three friends",
                            "aspect_ratio": "9:16"},
    }
    created = await asyncio.gather(*(c.create_ok(a, b) for a, b in bodies.items()))
    for body, task in zip(bodies.values(), created, strict=True):
        assert task["images"] == body["images"], task
    done = await asyncio.gather(*(c.wait(t["task_id"]) for t in created))
    assert [d["state"] for d in done] == ["success"] * 3, done
    _, data = await download(http, done[2]["creations"][0]["url"])
    width, height, _ = probe_mp4(data)
    assert height > width  # 9:16


async def test_upscales_of_a_creation_and_of_a_url(sandbox_server, ent, http):
    server = sandbox_server
    key, other_key = server.make_key(), server.make_key()
    c = ent(server, key)
    parent = await c.wait((await c.create_ok("text2video", {"model": "viduq1", "prompt": "p"}))["task_id"])
    creation = parent["creations"][0]
    _, data = await download(http, creation["url"])
    width, height, _ = probe_mp4(data)

    legacy = await c.create_ok("upscale", {"model": "vidu1.0", "creation_id": creation["id"]})
    assert legacy["creation_id"] == creation["id"] and legacy["model"] == "vidu1.0", legacy
    new = await c.create_ok("upscale-new", {"video_creation_id": creation["id"], "upscale_resolution": "2K"})
    by_url = await c.create_ok("upscale-new", {"video_url": "https://example.com/clip.mp4"})
    done = await asyncio.gather(*(c.wait(t["task_id"]) for t in (legacy, new, by_url)))
    assert [d["state"] for d in done] == ["success"] * 3, done
    for d in done[:2]:
        _, up = await download(http, d["creations"][0]["url"])
        w, h, _ = probe_mp4(up)
        assert w > width and h > height, (w, h, width, height)

    # Another key does not own the creation: it does not exist for it.
    other = ent(server, other_key)
    reply = await other.create("upscale", {"model": "vidu1.0", "creation_id": creation["id"]})
    assert_vidu_error(reply, 404, "CreationNotFound")
    reply = await c.create("upscale-new", {"video_creation_id": "123456789012345678"})
    assert_vidu_error(reply, 404, "CreationNotFound")


async def test_cancel_refunds_and_shows_user_cancelled(sandbox_server, ent):
    server = sandbox_server
    name, key = server.make_named_key(credits=500_000)
    c = ent(server, key)
    server.upstream.hold(True, provider="vidu-ent")
    try:
        task = await c.create_ok("text2video", {"model": "viduq1", "prompt": "to be cancelled"})
        before = server.upstream.counters(server.secret, "vidu-ent")["cancels"]
        reply = await c.cancel(task["task_id"])
        assert reply.status == 200 and reply.body == {}, reply.text
        assert server.upstream.counters(server.secret, "vidu-ent")["cancels"] == before + 1
    finally:
        server.upstream.hold(False, provider="vidu-ent")
    got = (await c.creations(task["task_id"])).body
    assert got["state"] == "failed" and got["err_code"] == "UserCancelled", got
    assert balance(server, name) == 500_000
    assert_vidu_error(await c.cancel(task["task_id"]), 400)
    assert_vidu_error(await c.cancel("999999999999999999"), 404, "TaskNotFound")


async def test_auth_ownership_and_list(sandbox_server, ent):
    server = sandbox_server
    key, other_key = server.make_key(), server.make_key()
    c = ent(server, key)
    task = await c.create_ok("text2video", {"model": "viduq1", "prompt": "mine"})
    assert_vidu_error(await ent(server, None).creations(task["task_id"]), 401, "Unauthorized")
    assert_vidu_error(await ent(server, "sk-wrong").creations(task["task_id"]), 401, "Unauthorized")
    other = ent(server, other_key)
    assert_vidu_error(await other.creations(task["task_id"]), 404, "TaskNotFound")
    assert_vidu_error(await other.cancel(task["task_id"]), 404, "TaskNotFound")

    second = await c.create_ok("text2video", {"model": "viduq1", "prompt": "mine too"})
    listed = await c.request("GET", "/tasks", params={"pager.pagesz": "1"})
    assert listed.status == 200, listed.text
    assert [t["task_id"] for t in listed.body["tasks"]] == [second["task_id"]]
    assert listed.body["next_page_token"]
    page2 = await c.request("GET", "/tasks", params={"pager.pagesz": "1",
                                                     "pager.page_token": listed.body["next_page_token"]})
    assert [t["task_id"] for t in page2.body["tasks"]] == [task["task_id"]]
    assert (await other.request("GET", "/tasks")).body["tasks"] == []


@pytest.mark.parametrize(("action", "body", "reason"), [
    ("text2video", {"model": "viduq1"}, "FieldLacking"),
    ("text2video", {"prompt": "no model"}, "FieldLacking"),
    ("text2video", {"model": "viduq1", "prompt": "p", "duration": 8}, "FieldInvalid"),
    ("text2video", {"model": "viduq1", "prompt": "p", "resolution": "720p"}, "FieldInvalid"),
    ("text2video", {"model": "viduq1", "prompt": "p", "aspect_ratio": "2:1"}, "FieldInvalid"),
    ("text2video", {"model": "viduq1", "prompt": "p", "images": [IMAGE]}, "FieldUnwanted"),
    ("img2video", {"model": "viduq1", "images": [IMAGE, IMAGE]}, "FieldItemCountOutOfRange"),
    ("start-end2video", {"model": "viduq1", "images": [IMAGE]}, "FieldItemCountOutOfRange"),
    ("reference2video", {"model": "viduq1", "images": [IMAGE] * 8, "prompt": "p"}, "FieldItemCountOutOfRange"),
    ("reference2video", {"model": "viduq1", "images": [IMAGE]}, "FieldLacking"),
    ("img2video", {"model": "viduq1", "images": ["not an image"]}, "ImageFormatInvalid"),
    ("upscale", {"model": "vidu1.0"}, "FieldLacking"),
    ("upscale-new", {"upscale_resolution": "16K", "video_url": "https://example.com/v.mp4"}, "FieldInvalid"),
    ("upscale-new", {}, "FieldLacking"),
    ("text2video", {"model": "viduq1", "prompt": "p", "payload": 5}, "FieldInvalid"),
    ("text2video", ["not", "an", "object"], "BadRequest"),
])
async def test_bad_input_is_refused_and_free(sandbox_server, shared_key, ent, action, body, reason):
    server = sandbox_server
    name, key = shared_key
    credits = balance(server, name)
    before = server.upstream.counters(server.secret, "vidu-ent")["creates"]
    reply = await ent(server, key).create(action, body)
    assert_vidu_error(reply, 400, reason)
    assert server.upstream.counters(server.secret, "vidu-ent")["creates"] == before
    assert balance(server, name) == credits


async def test_unknown_model_bad_json_and_paths(sandbox_server, shared_key, ent):
    server = sandbox_server
    c = ent(server, shared_key[1])
    assert_vidu_error(await c.create("text2video", {"model": "vidu2.0", "prompt": "p"}), 400, "ModelUnavailable")
    assert_vidu_error(await c.request("POST", "/text2video", data=b'{"model": NaN}'), 400)
    assert_vidu_error(await c.request("POST", "/nothing", json_body={}), 404, "NotFound")
    assert_vidu_error(await c.request("GET", "/text2video"), 405)
    assert_vidu_error(await c.request("GET", "/tasks", params={"pager.pagesz": "1000"}), 400)


async def test_out_of_credit_is_credit_insufficient(sandbox_server, ent):
    server = sandbox_server
    c = ent(server, server.make_key(credits=10))
    assert_vidu_error(await c.create("text2video", {"model": "viduq1", "prompt": "p"}), 400, "CreditInsufficient")


async def test_upstream_failure_refunds(sandbox_server, ent):
    server = sandbox_server
    name, key = server.make_named_key(credits=300_000)
    c = ent(server, key)
    server.upstream.fault(provider="vidu-ent", op="create", kind="fail_task", count=1, secret=server.secret,
                          err_code="CreationPolicyViolation")
    task = await c.create_ok("text2video", {"model": "viduq1", "prompt": "refused later"})
    done = await c.wait(task["task_id"])
    assert done["state"] == "failed" and done["err_code"] == "CreationPolicyViolation", done
    assert done["creations"] == []
    assert balance(server, name) == 300_000
