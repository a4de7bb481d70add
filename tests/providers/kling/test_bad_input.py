"""Bad requests on `/kling/v1`, end to end (client → `gengate serve --sandbox` → emulator): each is
Kling's envelope with the code table's HTTP status, nothing saved, reserved or sent upstream, and no
traceback in the log."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from harness.kling import PATHS, assert_kling_error
from PIL import Image

pytestmark = pytest.mark.timeout(180)

GOOD = {"model_name": "kling-v1", "prompt": "a boat", "duration": "5"}
SPEECH = {"video_url": "https://example.com/v.mp4", "mode": "text2video", "text": "hello", "voice_id": "v1"}


def png_base64(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def nothing_happened(server: Any, name: str, credits: int, creates_before: int) -> None:
    rows = server.db_query("SELECT (SELECT COUNT(*) FROM tasks t WHERE t.key_id = k.id) AS tasks, "
                           "(SELECT COUNT(*) FROM ledger_entries l WHERE l.key_id = k.id AND l.kind = 'reserve') "
                           f"AS reserves FROM keys k WHERE k.name = '{name}'")
    assert rows == [{"tasks": 0, "reserves": 0}], rows
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [{"credits": credits}]
    assert server.upstream.creates(server.secret, "kling") == creates_before
    assert "Traceback" not in server.log_text()


CASES: list[tuple[str, str, Any, int]] = [
    ("missing-prompt", "text2video", {"model_name": "kling-v1"}, 1201),
    ("empty-prompt", "text2video", {**GOOD, "prompt": "  "}, 1201),
    ("long-prompt", "text2video", {**GOOD, "prompt": "x" * 2501}, 1201),
    ("duration-7", "text2video", {**GOOD, "duration": "7"}, 1201),
    ("duration-float", "text2video", {**GOOD, "duration": 5.5}, 1201),
    ("mode", "text2video", {**GOOD, "mode": "ultra"}, 1201),
    ("aspect", "text2video", {**GOOD, "aspect_ratio": "4:3"}, 1201),
    ("cfg-scale", "text2video", {**GOOD, "cfg_scale": 1.5}, 1201),
    ("camera-two-axes", "text2video", {**GOOD, "camera_control": {"type": "simple", "config": {"pan": 1, "zoom": 2}}},
     1201),
    ("camera-config-not-simple", "text2video", {**GOOD, "camera_control": {"type": "down_back", "config": {"pan": 1}}},
     1201),
    ("sound-on-v1", "text2video", {**GOOD, "sound": "on"}, 1201),
    ("i2v-only-model", "text2video", {**GOOD, "model_name": "kling-v1-5"}, 1201),
    ("no-image", "image2video", {"prompt": "moves"}, 1201),
    ("data-url", "image2video", {"image": "data:image/png;base64," + png_base64(400, 400)}, 1201),
    ("not-base64", "image2video", {"image": "###"}, 1201),
    ("small-image", "image2video", {"image": png_base64(200, 400)}, 1201),
    ("narrow-image", "image2video", {"image": png_base64(1000, 300)}, 1201),
    ("tail-and-camera", "image2video", {"image": "https://example.com/a.png", "image_tail": "https://example.com/b.png",
                                        "camera_control": {"type": "forward_up"}}, 1201),
    ("n-10", "images", {"prompt": "x", "n": 10}, 1201),
    ("n-zero", "images", {"prompt": "x", "n": 0}, 1201),
    ("resolution", "images", {"prompt": "x", "resolution": "4k"}, 1201),
    ("image-aspect", "images", {"prompt": "x", "aspect_ratio": "5:4"}, 1201),
    ("no-prompt", "images", {"n": 1}, 1201),
    ("external-id-type", "text2video", {**GOOD, "external_task_id": 12}, 1201),
    ("extend-no-video", "extend", {"prompt": "longer"}, 1201),
    ("extend-unknown-video", "extend", {"video_id": "123456789012345678"}, 1203),
    ("extend-cfg-scale", "extend", {"video_id": "123456789012345678", "cfg_scale": 3}, 1201),
    ("lip-sync-no-input", "lip_sync", {"video_id": "123456789012345678"}, 1201),
    ("lip-sync-two-videos", "lip_sync", {"input": {**SPEECH, "video_id": "123456789012345678"}}, 1201),
    ("lip-sync-mode", "lip_sync", {"input": {**SPEECH, "mode": "sing"}}, 1201),
    ("lip-sync-long-text", "lip_sync", {"input": {**SPEECH, "text": "x" * 121}}, 1201),
    ("lip-sync-no-voice", "lip_sync", {"input": {**SPEECH, "voice_id": ""}}, 1201),
    ("lip-sync-language", "lip_sync", {"input": {**SPEECH, "voice_language": "fr"}}, 1201),
    ("lip-sync-no-audio-type", "lip_sync", {"input": {**SPEECH, "mode": "audio2video"}}, 1201),
    ("lip-sync-audio-not-base64", "lip_sync", {"input": {**SPEECH, "mode": "audio2video", "audio_type": "file",
                                                         "audio_file": "not base64!"}}, 1201),
    ("lip-sync-unknown-video", "lip_sync", {"input": {**SPEECH, "video_url": None,
                                                      "video_id": "123456789012345678"}}, 1203),
    ("try-on-no-cloth", "try_on", {"human_image": "https://example.com/h.png"}, 1201),
    ("try-on-small-image", "try_on", {"human_image": png_base64(200, 200), "cloth_image": "https://example.com/c.png"},
     1201),
    ("try-on-unserved-model", "try_on", {"model_name": "kolors-virtual-try-on-v9", "human_image": "https://e.com/h.png",
                                         "cloth_image": "https://example.com/c.png"}, 1203),
    ("not-an-object", "text2video", ["prompt"], 1200),
    ("unknown-model", "text2video", {**GOOD, "model_name": "kling-v9"}, 1203),
    ("unserved-model", "images", {"prompt": "x", "model_name": "kling-v2"}, 1203),
]


@pytest.fixture(scope="module")
def spare_key(sandbox_server: Any) -> tuple[str, str]:
    """One key for the cases below: each refused create must leave it untouched."""
    return sandbox_server.make_named_key(credits=1_000_000)


@pytest.mark.parametrize(("kind", "body", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_invalid_create_is_klings_error_and_nothing_happens(sandbox_server, spare_key, kling, kind, body,
                                                                  code):
    server = sandbox_server
    name, key = spare_key
    before = server.upstream.creates(server.secret, "kling")
    reply = await kling(server, key).create(kind, body)
    assert_kling_error(reply, code)
    nothing_happened(server, name, 1_000_000, before)


async def test_bodies_that_are_not_json_and_auth_errors(sandbox_server, kling, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret, "kling")
    client = kling(server, key)
    for raw in (b"{not json", b'{"prompt": NaN}', b'{"prompt": "a \\ud800"}', b""):
        assert_kling_error(await client.create("text2video", data=raw), 1200)
    assert_kling_error(await kling(server, None).create("text2video", GOOD), 1001)
    assert_kling_error(await kling(server, "sk-not-a-key").create("text2video", GOOD), 1002)
    assert_kling_error(await kling(server, None).list("text2video"), 1001)
    nothing_happened(server, name, 1_000_000, before)


async def test_out_of_credit_is_1102_and_nothing_is_sent(sandbox_server, kling):
    server = sandbox_server
    name, key = server.make_named_key(credits=99_999)  # one credit short of 5 s std
    before = server.upstream.creates(server.secret, "kling")
    reply = await kling(server, key).create("text2video", GOOD)
    assert_kling_error(reply, 1102, 429)
    nothing_happened(server, name, 99_999, before)


async def test_unknown_ids_paths_and_methods(sandbox_server, kling):
    server = sandbox_server
    client = kling(server, server.make_key())
    assert_kling_error(await client.get("text2video", "123456789012345678"), 1203)
    assert_kling_error(await client.request("GET", "/v1/videos/nothing-here"), 1202)
    reply = await client.request("DELETE", PATHS["text2video"])
    assert_kling_error(reply, 1202, 405)
    assert "POST" in reply.headers.get("Allow", "")


async def test_key_restricted_to_other_models_gets_1203(sandbox_server, kling):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000, models="gpt-4o*")
    before = server.upstream.creates(server.secret, "kling")
    assert_kling_error(await kling(server, key).create("text2video", GOOD), 1203)
    nothing_happened(server, name, 1_000_000, before)
