"""Large inline media on a Vidu create (interface.md "Bad requests": routes that take inline media
accept up to GENGATE_MAX_MEDIA_BODY_BYTES): a base64 image of several MB is accepted, kept out of
the stored request, sent upstream whole, and echoed as a media URL of gengate's own."""

from __future__ import annotations

import base64
import io
import json

import aiohttp
from PIL import Image


def png_base64(megabytes: float) -> str:
    """A real PNG of about `megabytes` (noise compresses badly), as a data URL."""
    import os

    side = int((megabytes * 1024 * 1024 / 3) ** 0.5)
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=0)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def test_a_several_mb_base64_image_is_stashed_not_stored(sandbox_server, vidu):
    server = sandbox_server
    key = server.make_key(credits=10_000_000)
    image = png_base64(3)
    assert len(image) > 3 * 1024 * 1024  # far above the 1 MiB of routes without media
    body = {"type": "img2video", "input": {"prompts": [{"type": "image", "content": image},
                                                       {"type": "text", "content": "it moves"}]},
            "settings": {"duration": 4, "model_version": "1.5"}}
    before = server.upstream.creates(server.secret)
    task = await vidu(server, key).create_ok(body)
    assert server.upstream.creates(server.secret) == before + 1
    echoed = task["input"]["prompts"][0]["content"]
    assert echoed.startswith(server.url + "/files/"), echoed[:200]
    row = server.db_query(f"SELECT request, upstream_request FROM tasks WHERE public_id = '{task['id']}'")[0]
    assert len(row["request"]) < 4096 and len(row["upstream_request"]) < 4096, row
    async with aiohttp.ClientSession() as http, http.get(echoed) as resp:  # the media URL needs no auth
        assert resp.status == 200
        assert (await resp.read()).decode() == image
    done = await vidu(server, key).wait(task["id"], timeout=60)
    assert done["state"] == "success", done
    assert json.dumps(done).count("base64") == 0


async def test_over_the_media_limit_is_413(sandbox_server, vidu, assert_vidu_error):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    big = json.dumps({"type": "img2video", "input": {"prompts": [
        {"type": "image", "content": "data:image/png;base64," + "A" * (20 * 1024 * 1024)}]}}).encode()
    reply = await vidu(server, key).create(data=big)
    assert_vidu_error(reply, 413)
    assert server.credits(name) == 1_000_000


async def test_a_client_string_in_the_stash_form_is_refused(sandbox_server, vidu, assert_vidu_error):
    """Only gengate writes stash references: one sent by a client (pointing anywhere in storage) is
    a 400 before anything is saved or charged."""
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    for content in ("gengate-inline:inline/" + "0" * 64, "gengate-inline:../gengate.db"):
        body = {"type": "img2video", "input": {"prompts": [{"type": "image", "content": content},
                                                           {"type": "text", "content": "it moves"}]},
                "settings": {"duration": 4, "model_version": "1.5"}}
        reply = await vidu(server, key).create(body)
        assert_vidu_error(reply, 400)
    assert server.credits(name) == 1_000_000
    assert server.db_query(f"SELECT count(*) AS n FROM tasks t JOIN keys k ON k.id = t.key_id "
                           f"WHERE k.name = '{name}'")[0]["n"] == 0
