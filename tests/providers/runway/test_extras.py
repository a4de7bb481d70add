"""Runway end to end on `gengate serve --sandbox` (SQLite): inline images of several MB, the 5 MB
data-URI limit, Idempotency-Key, unknown upstream states, and the OpenAPI document."""

from __future__ import annotations

import asyncio

import pytest
from harness.runway import RunwayRaw, assert_runway_error, i2v, noisy_png_data_uri, sdk

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server(make_server):
    return make_server()


async def test_an_inline_image_of_several_mb_goes_upstream_but_not_into_the_task_row(server, fast_polls):
    big = noisy_png_data_uri(1300)  # about 3 MB of base64: above the 1 MiB JSON limit of other routes
    assert 2_000_000 < len(big) < 5_000_000
    client = sdk(server.url, server.make_key())
    before = server.upstream.creates(server.secret, "runway")
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=big, ratio="960:960", duration=5)
    assert (await created.wait_for_task_output(timeout=60)).status == "SUCCEEDED"
    assert server.upstream.creates(server.secret, "runway") == before + 1
    rows = server.db_query(f"SELECT length(request) AS r, length(upstream_request) AS u FROM tasks "
                           f"WHERE public_id = '{created.id}'")
    assert rows and rows[0]["r"] < 10_000 and rows[0]["u"] < 10_000, rows


async def test_a_data_uri_over_5_mb_is_refused(server, http):
    huge = "data:image/png;base64," + "A" * (7 * 1024 * 1024)
    reply = await RunwayRaw(http, server.url, server.make_key()).create(i2v(promptImage=huge))
    assert_runway_error(reply, 400, issue_path=["promptImage"])


async def test_a_body_over_the_media_limit_is_413(server, http):
    huge = "data:image/png;base64," + "A" * (21 * 1024 * 1024)
    assert_runway_error(await RunwayRaw(http, server.url, server.make_key()).create(i2v(promptImage=huge)), 413)


async def test_idempotency_key_replays_the_same_task(server, http):
    raw = RunwayRaw(http, server.url, server.make_key())
    before = server.upstream.creates(server.secret, "runway")
    body = i2v()
    first = await raw.create(body, headers={"Idempotency-Key": "lantern-1"})
    again = await raw.create(body, headers={"Idempotency-Key": "lantern-1"})
    assert first.status == again.status == 200, (first.text, again.text)
    assert first.body["id"] == again.body["id"]
    other = await raw.create(i2v(duration=10), headers={"Idempotency-Key": "lantern-1"})
    assert_runway_error(other, 422)
    await asyncio.sleep(0.5)
    assert server.upstream.creates(server.secret, "runway") == before + 1


async def test_unknown_upstream_states_keep_the_task_polling(server, fast_polls):
    server.upstream.fault(provider="runway", op="poll", kind="unknown_state", count=3, secret=server.secret)
    client = sdk(server.url, server.make_key())
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=noisy_png_data_uri(8),
                                                 ratio="1280:720", duration=5)
    task = await created.wait_for_task_output(timeout=60)
    assert task.status == "SUCCEEDED"
    assert "unknown upstream state 'MYSTERY_STATE'" in server.log_text()


async def test_openapi_documents_the_runway_routes(server, http):
    async with http.get(f"{server.url}/openapi.json") as resp:
        doc = await resp.json()
    paths = doc["paths"]
    assert "post" in paths["/runway/v1/image_to_video"] and "post" in paths["/runway/v1/text_to_image"]
    assert {"get", "delete"} <= set(paths["/runway/v1/tasks/{task_id}"])
    assert "requestBody" in paths["/runway/v1/image_to_video"]["post"]
    for action in ("text_to_video", "image_upscale", "video_upscale", "video_to_video", "character_performance",
                   "text_to_speech", "sound_effect", "speech_to_speech", "voice_dubbing", "voice_isolation",
                   "video_to_audio"):
        assert "requestBody" in paths[f"/runway/v1/{action}"]["post"], action
    assert "get" in paths["/runway/v1/organization"] and "post" in paths["/runway/v1/organization/usage"]
    assert "requestBody" in paths["/runway/v1/uploads"]["post"] and "post" in paths["/runway/v1/uploads/form"]
    assert not paths["/runway/v1/uploads/form"]["post"].get("security")  # the signed fields are the credential


async def test_a_task_survives_a_restart_of_the_sandbox_server(server, fast_polls):
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.hold(True, provider="runway")
    try:
        created = await sdk(server.url, key).image_to_video.create(
            model="gen4_turbo", prompt_image=noisy_png_data_uri(8), ratio="1280:720", duration=5)
        server.restart()
    finally:
        server.upstream.hold(False, provider="runway")
    task = await sdk(server.url, key).tasks.retrieve(created.id)
    assert task.status in ("PENDING", "RUNNING", "SUCCEEDED"), task
    for _ in range(100):
        task = await sdk(server.url, key).tasks.retrieve(created.id)
        if task.status == "SUCCEEDED":
            break
        await asyncio.sleep(0.2)
    assert task.status == "SUCCEEDED", task
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [{"credits": 750_000}]
