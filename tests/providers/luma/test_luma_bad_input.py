"""Bad requests on the Luma routes, end to end: each is Luma's `{"detail"}` with the status Luma's own
validation gives (422 for a field, 400 for a body that is not JSON, 401, 402, 404, 405), never a 5xx;
nothing is saved, reserved or sent upstream, and no traceback reaches the log."""

from __future__ import annotations

from typing import Any

import lumaai
import pytest
from harness.luma import LUMA_PATH, assert_luma_error, luma_sdk

pytestmark = pytest.mark.timeout(180)


def nothing_happened(server: Any, name: str, credits: int, creates_before: int) -> None:
    rows = server.db_query("SELECT (SELECT COUNT(*) FROM tasks t WHERE t.key_id = k.id) AS tasks, "
                           "(SELECT COUNT(*) FROM ledger_entries l WHERE l.key_id = k.id AND l.kind = 'reserve') "
                           "AS entries "
                           f"FROM keys k WHERE k.name = '{name}'")
    assert rows == [{"tasks": 0, "entries": 0}], rows
    assert server.credits(name) == credits
    assert server.upstream.creates(server.secret, "luma") == creates_before
    assert "Traceback" not in server.log_text()


VIDEO_422: list[tuple[str, dict[str, Any], str]] = [
    ("no-model", {"prompt": "a boat"}, "model"),
    ("bad-aspect", {"model": "ray-2", "prompt": "a boat", "aspect_ratio": "5:4"}, "aspect_ratio"),
    ("bad-duration", {"model": "ray-2", "prompt": "a boat", "duration": "7s"}, "duration"),
    ("int-duration", {"model": "ray-2", "prompt": "a boat", "duration": 5}, "duration"),
    ("bad-resolution", {"model": "ray-2", "prompt": "a boat", "resolution": "8k"}, "resolution"),
    ("loop-string", {"model": "ray-2", "prompt": "a boat", "loop": "yes"}, "loop"),
    ("no-prompt", {"model": "ray-2"}, "prompt"),
    ("prompt-number", {"model": "ray-2", "prompt": 5}, "prompt"),
    ("keyframe-type", {"model": "ray-2", "keyframes": {"frame0": {"type": "video", "url": "https://x/y"}}},
     "keyframes.frame0.type"),
    ("keyframe-name", {"model": "ray-2", "keyframes": {"frame2": {"type": "image", "url": "https://x/y"}}},
     "frame2"),
    ("keyframe-url", {"model": "ray-2", "keyframes": {"frame0": {"type": "image", "url": "file:///etc/passwd"}}},
     "url"),
    ("concepts", {"model": "ray-2", "prompt": "a", "concepts": ["dolly_zoom"]}, "concept"),
    ("unknown-model", {"model": "ray-9", "prompt": "a boat"}, "ray-9"),
    ("image-type", {"model": "ray-2", "prompt": "a", "generation_type": "image"}, "generation_type"),
    ("array", [1, 2], "object"),  # type: ignore[list-item]
]


async def test_video_validation_is_422(sandbox_server, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret, "luma")
    for case, body, needle in VIDEO_422:
        async with http.post(f"{server.url}{LUMA_PATH}/generations/video", json=body,
                             headers={"Authorization": f"Bearer {key}"}) as resp:
            text = await resp.text()
            assert resp.status == 422, (case, resp.status, text)
            detail = (await resp.json())["detail"]
        assert isinstance(detail, str) and needle.lower() in detail.lower(), (case, detail)
    nothing_happened(server, name, 1_000_000, before)


async def test_image_validation_is_422_through_the_sdk(sandbox_server):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = luma_sdk(server.url, key)
    before = server.upstream.creates(server.secret, "luma")
    cases: list[dict[str, Any]] = [
        {"model": "photon-1"},  # no prompt
        {"model": "photon-1", "prompt": "a kite", "format": "gif"},
        {"model": "photon-1", "prompt": "a kite", "image_ref": [{"weight": 0.5}]},
        {"model": "photon-1", "prompt": "a kite", "image_ref": [{"url": "https://x/1.jpg", "weight": 3}]},
        {"model": "ray-2", "prompt": "a kite"},  # a video model on the image route: not an image model
    ]
    for body in cases:
        with pytest.raises(lumaai.UnprocessableEntityError) as err:
            await client.generations.image.create(**body)
        assert_luma_error(err.value, 422)
    with pytest.raises(lumaai.UnprocessableEntityError) as err:
        await client.generations.create(model="ray-2", prompt="x", aspect_ratio="2:1")  # type: ignore[arg-type]
    assert_luma_error(err.value, 422, "aspect_ratio")
    nothing_happened(server, name, 1_000_000, before)


NOT_JSON = [b'{"model": "ray-2", "prompt": "a', b'{"model": "ray-2", "prompt": NaN}',
            b'{"model": "ray-2", "prompt": "\\ud800"}', b"\xff\xfe", b'{"prompt": 1e999}']


async def test_a_body_that_is_not_json_is_400(sandbox_server, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret, "luma")
    for raw in NOT_JSON:
        async with http.post(f"{server.url}{LUMA_PATH}/generations", data=raw,
                             headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as resp:
            assert resp.status == 400, (raw, await resp.text())
            assert set(await resp.json()) == {"detail"}
    nothing_happened(server, name, 1_000_000, before)


async def test_auth_credits_and_unknown_paths(sandbox_server, http):
    server = sandbox_server
    for key in ("sk-not-a-key", ""):
        with pytest.raises(lumaai.AuthenticationError) as err:
            await luma_sdk(server.url, key or "x").generations.list()
        assert_luma_error(err.value, 401)
    async with http.get(f"{server.url}{LUMA_PATH}/generations") as resp:  # no Authorization at all
        assert resp.status == 401 and set(await resp.json()) == {"detail"}

    name, key = server.make_named_key(credits=10)  # less than any generation costs
    before = server.upstream.creates(server.secret, "luma")
    with pytest.raises(lumaai.APIStatusError) as err:
        await luma_sdk(server.url, key).generations.create(model="ray-2", prompt="a boat")
    assert_luma_error(err.value, 402)
    nothing_happened(server, name, 10, before)

    client = luma_sdk(server.url, key)
    assert (await client.get("/ping", cast_to=object)) == {"message": "pong"}
    headers = {"Authorization": f"Bearer {key}"}
    async with http.get(f"{server.url}{LUMA_PATH}/no/such/path", headers=headers) as resp:
        assert resp.status == 404 and set(await resp.json()) == {"detail"}
    async with http.put(f"{server.url}{LUMA_PATH}/generations", headers=headers) as resp:
        assert resp.status == 405 and set(await resp.json()) == {"detail"}
    async with http.get(f"{server.url}{LUMA_PATH}/generations", params={"limit": "0"}, headers=headers) as resp:
        assert resp.status == 422 and "limit" in (await resp.json())["detail"]
    async with http.get(f"{server.url}{LUMA_PATH}/generations/not-a-uuid", headers=headers) as resp:
        assert resp.status == 404 and set(await resp.json()) == {"detail"}
