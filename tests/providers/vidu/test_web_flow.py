"""Foundation I acceptance: the Vidu web/app format (`/vidu/v1`) end to end, on SQLite and PostgreSQL.

client (aiohttp) → `gengate serve` (subprocess) → HTTP → emulator (in-process sandbox, or a standalone
`gengate emulate` for stats- and fault-based tests). Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import secrets
import signal
import time
from typing import Any

import aiohttp
import av
import pytest
from PIL import Image

pytestmark = pytest.mark.timeout(180)

PRICE_T2V_4S = 20_000  # 4 s at the default resolution of `model: vidu-1` (shipped price table)
NON_TERMINAL = ("created", "queueing", "preparation", "scheduling", "processing")
STATE_ORDER = {s: i for i, s in enumerate((*NON_TERMINAL, "success"))}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
DIGITS16 = re.compile(r"^\d{16,}$")
TASK_KEYS = {"id", "input", "settings", "type", "state", "creations", "err_code", "created_at"}


def t2v(prompt: str = "a paper boat on a rainy street", **settings: Any) -> dict[str, Any]:
    return {"type": "text2video", "input": {"prompts": [{"type": "text", "content": prompt}]},
            "settings": {"style": "general", "aspect_ratio": "16:9", "duration": 4, "model": "vidu-1",
                         **settings}}


def check_task_object(task: dict[str, Any], task_type: str) -> None:
    assert TASK_KEYS <= set(task), task
    assert DIGITS16.match(task["id"]), task["id"]
    assert task["type"] == task_type
    inp = task["input"]
    assert {"creation_id", "prompts", "lang"} <= set(inp), inp
    assert isinstance(inp["prompts"], list)
    assert inp["lang"] in ("en", "zh")
    assert isinstance(task["settings"], dict)
    assert isinstance(task["creations"], list)
    assert isinstance(task["err_code"], str)
    assert ISO_Z.match(task["created_at"]), task["created_at"]
    if task["state"] != "success":
        assert task["creations"] == []


def check_settings_echoed(sent: dict[str, Any], got: dict[str, Any]) -> None:
    for k, v in sent.items():
        assert got.get(k) == v, (k, sent, got)


async def download(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
                   ) -> tuple[int, bytes, Any]:
    async with http.get(url, headers=headers or {}, allow_redirects=False) as resp:
        # The request that went out carried no Authorization header: the signature is the credential.
        assert "Authorization" not in resp.request_info.headers
        return resp.status, await resp.read(), resp.headers


def probe_mp4(data: bytes) -> tuple[int, int, float, int]:
    """(width, height, duration s, decoded frames) of an MP4, decoded with PyAV."""
    assert data[4:8] == b"ftyp", data[:16]
    assert b"moov" in data
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        if container.duration:
            duration = container.duration / 1_000_000
        else:
            duration = float(stream.duration * stream.time_base)
        return stream.codec_context.width, stream.codec_context.height, duration, frames


async def check_video_creation(http: aiohttp.ClientSession, server: Any, creation: dict[str, Any]) -> bytes:
    assert creation["type"] == "video"
    for f in ("uri", "nomark_uri", "cover_uri"):
        assert creation[f].startswith(server.url + "/"), (f, creation[f])
    status, data, headers = await download(http, creation["uri"])
    assert status == 200, (status, data[:200])
    width, height, duration, frames = probe_mp4(data)
    res = creation["resolution"]
    assert (width, height) == (res["width"], res["height"]), (width, height, res)
    video = creation["video"]
    assert (video["resolution"]["width"], video["resolution"]["height"]) == (width, height)
    assert abs(duration - float(video["duration"])) <= max(0.3, 1.5 / max(video.get("fps") or 1, 1)), (
        duration, video)
    assert frames >= 1
    # A Range request gets 206 with exactly the bytes asked for.
    status, part, headers = await download(http, creation["uri"], {"Range": "bytes=0-99"})
    assert status == 206, status
    assert part == data[:100]
    assert headers["Content-Range"] == f"bytes 0-99/{len(data)}"
    # The cover is a real JPEG.
    status, cover, _ = await download(http, creation["cover_uri"])
    assert status == 200
    with Image.open(io.BytesIO(cover)) as img:
        img.load()
        assert img.format == "JPEG"
    return data


async def check_image_creation(http: aiohttp.ClientSession, server: Any, creation: dict[str, Any]) -> None:
    assert creation["type"] == "image", creation
    assert creation["uri"].startswith(server.url + "/")
    status, data, _ = await download(http, creation["uri"])
    assert status == 200
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.format in ("PNG", "JPEG", "WEBP")
        res = creation["resolution"]
        assert img.size == (res["width"], res["height"])


async def upstream_history(http: aiohttp.ClientSession, server: Any) -> list[dict[str, Any]]:
    """The tasks the upstream account holds (newest first), as the emulator received them."""
    url = server.upstream.provider_url("vidu") + "/vidu/v1/tasks/history/me"
    async with http.get(url, params={"page_no": "1", "page_size": "100"},
                        headers={"Authorization": f"Token {server.secret}"}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["tasks"]


# ------------------------------------------------------------------------------------------- happy path
async def test_text2video_then_seed_upscale(sandbox_server, vidu, http):
    server = sandbox_server
    c = vidu(server, server.make_key())
    body = t2v()
    task = await c.create_ok(body)
    check_task_object(task, "text2video")
    assert task["state"] in NON_TERMINAL, task["state"]
    assert task["input"]["creation_id"] == "0"
    assert task["input"]["prompts"][0]["content"] == body["input"]["prompts"][0]["content"]
    check_settings_echoed(body["settings"], task["settings"])

    done = await c.wait(task["id"])
    assert done["state"] == "success", done
    check_task_object(done, "text2video")
    assert done["id"] == task["id"] and done["created_at"] == task["created_at"]
    assert done["err_code"] == ""
    assert len(done["creations"]) == 1
    parent = done["creations"][0]
    assert DIGITS16.match(parent["id"]) and parent["task_id"] == task["id"]
    await check_video_creation(http, server, parent)

    # The seed's upscale request, byte for byte.
    raw = '{"input":{"creation_id":"CID"},"type":"upscale","settings":{"model":"stable","duration":4}}'.replace(
        "CID", parent["id"])
    reply = await c.create(data=raw)
    assert reply.status == 200, reply.text
    up = reply.body
    check_task_object(up, "upscale")
    assert up["id"] != task["id"]
    assert up["input"]["creation_id"] == parent["id"]
    check_settings_echoed({"model": "stable", "duration": 4}, up["settings"])

    up_done = await c.wait(up["id"])
    assert up_done["state"] == "success", up_done
    check_task_object(up_done, "upscale")
    assert up_done["input"]["creation_id"] == parent["id"]
    [child] = up_done["creations"]
    assert child["id"] != parent["id"] and child["task_id"] == up["id"]
    assert child["resolution"] == {"width": parent["resolution"]["width"] * 2,
                                   "height": parent["resolution"]["height"] * 2}
    await check_video_creation(http, server, child)


OTHER_TYPES: list[tuple[str, list[dict[str, Any]], dict[str, Any], str]] = [
    ("img2video",
     [{"type": "text", "content": "the boat drifts away"},
      {"type": "image", "content": "ssupload:?id=2611000000001234", "src_imgs": ["ssupload:?id=2611000000001234"]}],
     {"duration": 4, "resolution": "720p", "movement_amplitude": "auto", "model_version": "2.0",
      "sample_count": 1, "schedule_mode": "normal"},
     "video"),
    ("character2video",
     [{"type": "text", "content": "the hero waves"},
      {"type": "image", "content": "https://example.com/hero.png"}],
     {"duration": 4, "model_version": "2.0", "aspect_ratio": "16:9"},
     "video"),
    ("headtailimg2video",
     [{"type": "text", "content": "morning turns to night"},
      {"type": "image", "content": "ssupload:?id=2611000000000001"},
      {"type": "image", "content": "ssupload:?id=2611000000000002"}],
     {"duration": 4, "model_version": "2.0"},
     "video"),
    ("text2image",
     [{"type": "text", "content": "海上的红色风筝"}],  # a Chinese prompt: lang "zh"
     {"duration": 0, "model_version": "3.1", "aspect_ratio": "1:1"},
     "image"),
    ("reference2image",
     [{"type": "text", "content": "the same cat, in a garden"},
      {"type": "image", "content": "https://example.com/cat.jpg"}],
     {"duration": 0, "model_version": "3.1", "aspect_ratio": "16:9"},
     "image"),
]


async def test_every_other_type(sandbox_server, vidu, http):
    server = sandbox_server
    c = vidu(server, server.make_key())

    async def one(task_type: str, prompts: list[dict[str, Any]], settings: dict[str, Any], kind: str) -> None:
        body = {"type": task_type, "input": {"prompts": prompts, "enhance": True}, "settings": settings}
        task = await c.create_ok(body)
        check_task_object(task, task_type)
        assert task["input"]["enhance"] is True  # unknown/extra input keys pass through
        check_settings_echoed(settings, task["settings"])
        done = await c.wait(task["id"])
        assert done["state"] == "success", (task_type, done)
        check_task_object(done, task_type)
        chinese = any(re.search("[\u4e00-\u9fff]", p.get("content", "")) for p in prompts if p["type"] == "text")
        assert done["input"]["lang"] == ("zh" if chinese else "en"), done["input"]
        assert done["input"]["prompts"][0]["content"] == prompts[0]["content"]
        assert done["creations"], done
        for creation in done["creations"]:
            assert creation["type"] == kind, (task_type, creation)
            if kind == "image":
                await check_image_creation(http, server, creation)
            else:
                await check_video_creation(http, server, creation)

    await asyncio.gather(*(one(*case) for case in OTHER_TYPES))


async def test_unknown_settings_pass_through(sandbox_server, vidu, http):
    server = sandbox_server
    c = vidu(server, server.make_key())
    marker = secrets.token_hex(8)
    settings = {"model_version": "3.2", "duration": 4, "resolution": "1080p", "transition": "pro",
                "codec": "h265", "use_trial": False, "schedule_mode": "nopeak",
                "x_custom": {"marker": marker, "list": [1, 2.5, "three", None, True]}}
    body = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "waves"}],
                                            "editor_mode": "normal"}, "settings": settings}
    task = await c.create_ok(body)
    assert task["settings"] == settings
    assert task["input"]["editor_mode"] == "normal"
    done = await c.wait(task["id"])
    assert done["state"] == "success"
    assert done["settings"] == settings
    # And upstream received them untouched.
    sent = [t for t in await upstream_history(http, server)
            if (t.get("settings") or {}).get("x_custom", {}).get("marker") == marker]
    assert len(sent) == 1, sent
    assert sent[0]["settings"] == settings


# ------------------------------------------------------------------------------------------- SSE
async def test_sse_from_created_to_success(sandbox_server, vidu):
    server = sandbox_server
    c = vidu(server, server.make_key())
    server.upstream.hold(True)
    try:
        task = await c.create_ok(t2v("sse"))
        stream = asyncio.create_task(c.events(task["id"], timeout=40))
        await asyncio.sleep(2.0)
        assert not stream.done()
    finally:
        server.upstream.hold(False)
    started_release = time.monotonic()
    reply, events, lines = await asyncio.wait_for(stream, 40)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    assert events, lines
    # The first event came at once; while held upstream nothing changed, so nothing else was sent.
    assert events[0][0] < 1.5, events
    assert events[0][1]["state"] in NON_TERMINAL, events
    held = [e for e in events if e[0] < 1.9]
    assert len(held) == 1, events
    states = [e[1]["state"] for e in events]
    assert states[-1] == "success", states
    assert all(s in STATE_ORDER for s in states), states
    # One event per change, in the walk's order.
    payloads = [json.dumps(e[1], sort_keys=True) for e in events]
    assert all(a != b for a, b in itertools.pairwise(payloads)), states
    assert [STATE_ORDER[s] for s in states] == sorted(STATE_ORDER[s] for s in states), states
    for _, event in events:
        assert {"state", "estimated_time_left", "err_code", "queue_wait_time"} <= set(event), event
    # Every line is one `data:` JSON line or an SSE comment.
    assert all(line.startswith(("data:", ":")) for line in lines), lines
    assert time.monotonic() - started_release < 30
    # The task really is finished by then.
    assert (await c.get(task["id"])).body["state"] == "success"

    # A stream on a finished task: one event, then it closes.
    t0 = time.monotonic()
    reply, events, lines = await c.events(task["id"], timeout=10)
    assert reply.status == 200
    assert [e[1]["state"] for e in events] == ["success"], lines
    assert time.monotonic() - t0 < 3


# ------------------------------------------------------------------------------------------- auth
async def test_token_and_bearer_both_work(sandbox_server, vidu):
    server = sandbox_server
    key = server.make_key()
    token, bearer = vidu(server, key, "Token"), vidu(server, key, "Bearer")
    task = await token.create_ok(t2v("token"))
    task2 = await bearer.create_ok(t2v("bearer"))
    for client in (token, bearer):
        for t in (task, task2):
            reply = await client.get(t["id"])
            assert reply.status == 200 and reply.body["id"] == t["id"]
    await asyncio.gather(token.wait(task["id"]), bearer.wait(task2["id"]))
    reply, events, _ = await bearer.events(task["id"])
    assert reply.status == 200 and events[-1][1]["state"] == "success"


async def test_bad_keys_are_401(sandbox_server, vidu, assert_vidu_error):
    server = sandbox_server
    good_name, good = server.make_named_key()
    revoked_name, revoked = server.make_named_key()
    expired = server.make_key(expires="2001-01-01T00:00:00Z")
    task = await vidu(server, good).create_ok(t2v("owned"))
    # The revoked key worked before it was revoked.
    assert (await vidu(server, revoked).get(task["id"])).status == 404
    server.cli("keys", "revoke", revoked_name)
    # A running server sees the revocation within 2 s (interface.md): wait for it, then test it.
    deadline = time.monotonic() + 3
    while (await vidu(server, revoked).get(task["id"])).status != 401:
        assert time.monotonic() < deadline, "the revoked key still works 3 s after the revoke"
        await asyncio.sleep(0.1)

    unknown = "sk-" + secrets.token_urlsafe(32)
    cases = [
        ("missing", vidu(server, None)),
        ("unknown", vidu(server, unknown)),
        ("unknown-bearer", vidu(server, unknown, "Bearer")),
        ("revoked", vidu(server, revoked)),
        ("expired", vidu(server, expired)),
        ("wrong scheme", vidu(server, good, "Basic")),
        ("empty token", vidu(server, "", "Token")),
    ]
    for label, client in cases:
        for reply in (await client.create(t2v("denied")), await client.get(task["id"])):
            assert reply.status == 401, (label, reply.status, reply.text)
            assert_vidu_error(reply, 401, "Unauthorized")
        reply, events, _ = await client.events(task["id"])
        assert reply.status == 401 and not events, (label, reply.status)
        assert_vidu_error(reply, 401, "Unauthorized")
    # Nothing was created by any of them: only the good key's task exists upstream-side... and the
    # good key still works.
    assert (await vidu(server, good).get(task["id"])).status == 200
    assert server.keys()[revoked_name]["revoked"] is True
    assert server.keys()[good_name]["revoked"] is False


# ------------------------------------------------------------------------------------------- credits
async def test_insufficient_credits(ext_server, vidu, assert_vidu_error):
    server = ext_server
    name, key = server.make_named_key(credits=1)
    before = server.upstream.creates(server.secret)
    reply = await vidu(server, key).create(t2v("too expensive"))
    assert_vidu_error(reply, 400, "CreditInsufficient")
    assert server.upstream.creates(server.secret) == before
    assert server.credits(name) == 1


async def test_upstream_failure_is_refunded(ext_server, vidu):
    server = ext_server
    start = 1_000_000
    name, key = server.make_named_key(credits=start)
    c = vidu(server, key)
    server.upstream.fault(provider="vidu", op="create", kind="fail_task", count=1, secret=server.secret)
    before = server.upstream.creates(server.secret)
    task = await c.create_ok(t2v("blocked"))
    assert server.upstream.creates(server.secret) == before + 1
    fine = await c.create_ok(t2v("fine"))  # the fault is used up: this one succeeds and is charged
    done = await c.wait(task["id"])
    assert done["state"] == "failed", done
    assert done["err_code"], done
    assert done["creations"] == []
    _, events, _ = await c.events(task["id"])
    assert [e[1]["state"] for e in events] == ["failed"]
    assert events[0][1]["err_code"]
    ok = await c.wait(fine["id"])
    assert ok["state"] == "success"
    # The failed task was refunded in full; only the successful one is charged.
    assert server.credits(name) == start - PRICE_T2V_4S


# ------------------------------------------------------------------------------------------- ownership
async def test_other_keys_cannot_see_or_reference(ext_server, vidu, assert_vidu_error):
    server = ext_server
    owner = vidu(server, server.make_key())
    other_name, other_key = server.make_named_key(credits=1_000_000)
    other = vidu(server, other_key)
    task = await owner.create_ok(t2v("mine"))
    done = await owner.wait(task["id"])
    assert done["state"] == "success"
    creation_id = done["creations"][0]["id"]

    assert_vidu_error(await other.get(task["id"]), 404, "TaskNotFound")
    reply, events, _ = await other.events(task["id"])
    assert not events
    assert_vidu_error(reply, 404, "TaskNotFound")
    assert_vidu_error(await other.request("DELETE", f"/vidu/v1/tasks/{task['id']}"), 404, "TaskNotFound")
    assert_vidu_error(await other.get("1234567890123456"), 404, "TaskNotFound")

    before = server.upstream.creates(server.secret)
    upscale = {"input": {"creation_id": creation_id}, "type": "upscale",
               "settings": {"model": "stable", "duration": 4}}
    reply = await other.create(upscale)
    assert 400 <= reply.status < 500, reply.text
    assert_vidu_error(reply, reason="CreationNotFound")
    # A task id is not a creation id, even for its owner.
    reply = await owner.create({**upscale, "input": {"creation_id": task["id"]}})
    assert 400 <= reply.status < 500, reply.text
    assert_vidu_error(reply, reason="CreationNotFound")
    assert server.upstream.creates(server.secret) == before
    assert server.credits(other_name) == 1_000_000
    # The owner still sees its task.
    assert (await owner.get(task["id"])).body["state"] == "success"


# ------------------------------------------------------------------------------------------- bad input
def _deep(n: int) -> bytes:
    return b'{"type":"text2video","input":' + b"[" * n + b"]" * n + b"}"


BAD_BODIES: list[tuple[str, bytes]] = [
    ("missing type", json.dumps({"input": {"prompts": [{"type": "text", "content": "x"}]}}).encode()),
    ("input as string", json.dumps({"type": "text2video", "input": "a boat"}).encode()),
    ("duration as string", json.dumps(t2v(duration="4")).encode()),
    ("duration as bool", json.dumps(t2v(duration=True)).encode()),
    ("prompts not a list", json.dumps({"type": "text2video", "input": {"prompts": "a boat"}}).encode()),
    ("prompt not an object", json.dumps({"type": "text2video", "input": {"prompts": ["a boat"]}}).encode()),
    ("prompt type unknown", json.dumps({"type": "text2video",
                                        "input": {"prompts": [{"type": "video", "content": "x"}]}}).encode()),
    ("settings as list", json.dumps({"type": "text2video", "input": {"prompts": []}, "settings": []}).encode()),
    ("unknown type", json.dumps({**t2v(), "type": "text2music"}).encode()),
    ("type not a string", json.dumps({**t2v(), "type": ["text2video"]}).encode()),
    ("no text prompt", json.dumps({"type": "text2video", "input": {"prompts": []}}).encode()),
    ("img2video with aspect_ratio", json.dumps({
        "type": "img2video", "settings": {"aspect_ratio": "16:9"},
        "input": {"prompts": [{"type": "text", "content": "x"}, {"type": "image", "content": "ssupload:?id=1"}]},
    }).encode()),
    ("upscale without creation",
     json.dumps({"type": "upscale", "input": {}, "settings": {"model": "stable"}}).encode()),
    ("upscale of unknown creation", json.dumps({"type": "upscale", "input": {"creation_id": "9999999999999999"},
                                                "settings": {"model": "stable"}}).encode()),
    ("body is an array", b"[]"),
    ("body is null", b"null"),
    ("body is a string", b'"text2video"'),
    ("non-JSON", b"type=text2video&prompt=boat"),
    ("truncated JSON", b'{"type": "text2video", "input": {'),
    ("invalid UTF-8", b'{"type": "text2video\xff\xfe"}'),
    ("empty body", b""),
    ("whitespace body", b"   \n"),
    ("Infinity duration", b'{"type":"text2video","input":{"prompts":[{"type":"text","content":"x"}]},'
                          b'"settings":{"duration":Infinity}}'),
    ("huge integer", b'{"type":"text2video","input":{"prompts":[{"type":"text","content":"x"}]},'
                     b'"settings":{"duration":' + b"9" * 5000 + b"}}"),
    ("deeply nested", _deep(100_000)),
    ("oversized (> 20 MiB, the media routes' limit)", json.dumps(t2v("x" * (20 * 1024 * 1024 + 10))).encode()),
]


async def test_bad_input_is_4xx_in_vidu_envelope(sandbox_server, vidu, http, assert_vidu_error):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    c = vidu(server, key)
    before = server.upstream.creates(server.secret)
    failures = []
    for label, raw in BAD_BODIES:
        reply = await c.create(data=raw)
        try:
            assert 400 <= reply.status < 500, (reply.status, reply.text[:300])
            assert_vidu_error(reply)
        except AssertionError as exc:
            failures.append(f"{label}: {exc}")
    # An oversized body sent chunked (no Content-Length) is refused as well.

    async def chunks():
        piece = b" " * 65536
        yield b'{"type":"text2video","input":{"prompts":[{"type":"text","content":"x"}]},"pad":"'
        for _ in range(330):  # > 20 MiB
            yield piece
        yield b'"}'

    async with http.post(server.url + "/vidu/v1/tasks", data=chunks(),
                         headers={"Authorization": f"Token {key}", "Content-Type": "application/json"}) as resp:
        text = await resp.text()
        if not (400 <= resp.status < 500) or "Traceback" in text:
            failures.append(f"chunked oversized body: {resp.status} {text[:300]}")
    created = server.upstream.creates(server.secret) - before
    if created:
        failures.append(f"{created} job(s) created upstream")
    left = server.credits(name)
    if left != 1_000_000:
        failures.append(f"{1_000_000 - left} credits charged")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_json_number_constants_are_refused(sandbox_server, vidu, constant, assert_vidu_error):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret)
    raw = ('{"type":"text2video","input":{"prompts":[{"type":"text","content":"x"}]},'
           '"settings":{"duration":4,"x_ratio":CONST}}').replace("CONST", constant)
    reply = await vidu(server, key).create(data=raw.encode())
    assert 400 <= reply.status < 500, (reply.status, reply.text)
    assert_vidu_error(reply)
    assert server.upstream.creates(server.secret) == before
    assert server.credits(name) == 1_000_000


async def test_unknown_paths_and_methods(sandbox_server, vidu, assert_vidu_error):
    server = sandbox_server
    c = vidu(server, server.make_key())
    for method, path in [("GET", "/vidu/v1/nothing"), ("GET", "/vidu/v2/tasks"), ("POST", "/vidu/v1/task"),
                         ("GET", "/vidu/v1/tasks/1234567890123456/creations"), ("GET", "/vidu/")]:
        reply = await c.request(method, path)
        assert_vidu_error(reply, 404)
    for method, path in [("GET", "/vidu/v1/tasks"), ("PUT", "/vidu/v1/tasks"), ("DELETE", "/vidu/v1/tasks"),
                         ("PATCH", "/vidu/v1/tasks/1234567890123456"), ("POST", "/vidu/v1/tasks/1234567890123456"),
                         ("POST", "/vidu/v1/tasks/state")]:
        reply = await c.request(method, path, data=b"{}")
        assert_vidu_error(reply, 405)
    # SSE without an id is a 4xx in the envelope too.
    reply = await c.request("GET", "/vidu/v1/tasks/state")
    assert 400 <= reply.status < 500
    assert_vidu_error(reply)


# ------------------------------------------------------------------------------------------- secrets
async def test_client_key_never_stored_or_logged(sandbox_server, vidu, http):
    server = sandbox_server
    key = server.make_key(credits=10_000_000)
    c = vidu(server, key, "Bearer")
    task = await c.create_ok(t2v("leak check"), headers={"Idempotency-Key": "leak-" + secrets.token_hex(4)})
    _, events, _ = await c.events(task["id"], timeout=40)
    assert events[-1][1]["state"] == "success"
    done = await c.wait(task["id"])
    up = await c.wait((await c.create_ok({"input": {"creation_id": done["creations"][0]["id"]},
                                          "type": "upscale", "settings": {"model": "stable"}}))["id"])
    assert up["state"] == "success"
    status, _, _ = await download(http, up["creations"][0]["uri"])
    assert status == 200
    assert (await c.create(data=b"{not json")).status == 400
    # A wrong key is not logged either.
    wrong = "sk-" + secrets.token_urlsafe(32)
    assert (await vidu(server, wrong).get(task["id"])).status == 401

    secret_part = key[3:]
    stored = server.stored_bytes()
    if server.database_url is None:
        assert any(p.endswith("gengate.db") for p in stored), sorted(stored)
    for needle in (key, secret_part, wrong):
        for path, data in stored.items():
            assert needle.encode() not in data, f"client key found in {path}"
        assert needle not in server.log_text(), "client key found in the server log"


# ------------------------------------------------------------------------------------------- restart
async def test_sigterm_restart_finishes_in_flight_tasks(backend, make_server, emulator, vidu):
    server = make_server(database_url=backend.new_database(), sandbox=False, emulator=emulator)
    start = 1_000_000
    name, key = server.make_named_key(credits=start)
    c = vidu(server, key)
    emulator.hold(True)
    try:
        tasks = await asyncio.gather(*(c.create_ok(t2v(f"restart {i}")) for i in range(4)))
        assert len({t["id"] for t in tasks}) == 4
        # Every job was accepted upstream and is being polled when the server stops.
        for _ in range(100):
            if emulator.creates(server.secret) >= 4:
                break
            await asyncio.sleep(0.1)
        assert emulator.creates(server.secret) == 4
        for t in tasks:
            assert (await c.get(t["id"])).body["state"] in NON_TERMINAL
        assert server.credits(name) == start - 4 * PRICE_T2V_4S  # reserved
        t0 = time.monotonic()
        shutdowns = server.log_text().count("Application shutdown complete")
        # uvicorn re-raises the signal once it has shut down: the exit is 0 or "killed by SIGTERM".
        assert server.stop(signal.SIGTERM, timeout=20) in (0, -signal.SIGTERM)
        assert time.monotonic() - t0 < 15
        assert server.log_text().count("Application shutdown complete") == shutdowns + 1  # graceful
        server.start()
    finally:
        emulator.hold(False)
    done = await asyncio.gather(*(c.wait(t["id"], timeout=60) for t in tasks))
    assert [d["state"] for d in done] == ["success"] * 4, done
    assert all(d["creations"] for d in done)
    assert emulator.creates(server.secret) == 4  # no job was sent twice
    await asyncio.sleep(1.0)  # nothing more may be charged after success either
    assert server.credits(name) == start - 4 * PRICE_T2V_4S
    for d in done:
        status, data, _ = await download(c.http, d["creations"][0]["uri"])
        assert status == 200 and data[4:8] == b"ftyp"


# ------------------------------------------------------------------------------------------- idempotency
async def test_idempotency_key(ext_server, vidu, assert_vidu_error):
    server = ext_server
    start = 1_000_000
    name, key = server.make_named_key(credits=start)
    a = vidu(server, key)
    b = vidu(server, server.make_key())
    value = "idem-" + secrets.token_hex(6)
    hdr = {"Idempotency-Key": value}
    body = t2v("idempotent")
    before = server.upstream.creates(server.secret)

    first = await a.create_ok(body, headers=hdr)
    again = await a.create_ok(body, headers=hdr)
    assert again["id"] == first["id"]
    assert set(again) == set(first) and again["type"] == first["type"] and again["settings"] == first["settings"]
    assert server.upstream.creates(server.secret) == before + 1

    reply = await a.create(t2v("another body"), headers=hdr)
    assert_vidu_error(reply, 422)

    theirs = await b.create_ok(body, headers=hdr)
    assert theirs["id"] != first["id"]
    assert server.upstream.creates(server.secret) == before + 2
    assert_vidu_error(await b.get(first["id"]), 404, "TaskNotFound")

    done = await a.wait(first["id"])
    assert done["state"] == "success"
    replay = await a.create_ok(body, headers=hdr)  # after completion too
    assert replay["id"] == first["id"] and replay["state"] == "success"
    assert server.upstream.creates(server.secret) == before + 2
    await b.wait(theirs["id"])
    assert server.credits(name) == start - PRICE_T2V_4S
