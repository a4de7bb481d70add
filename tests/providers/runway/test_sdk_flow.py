"""Runway through the official `runwayml` SDK (pinned 5.24.0) against `gengate serve --sandbox`, on
SQLite and PostgreSQL: client (SDK) → gengate → HTTP → the Runway emulator. Nothing is mocked.

The SDK's `wait_for_task_output` sleeps 4.5-7.5 s before each poll; one test keeps that, the others
shorten it (the SDK reads `runwayml.lib.polling.POLL_TIME` at each poll)."""

from __future__ import annotations

import asyncio

import pytest
import runwayml
from harness.runway import ISO_MS, UUID4, download, png_data_uri, probe_mp4, probe_png, sdk, sync_sdk
from runwayml.lib import polling
from runwayml.types.task_retrieve_response import Cancelled, Failed, Pending, Running, Succeeded

pytestmark = pytest.mark.timeout(180)

GEN4_TURBO_5S = 5 * 5 * 10_000  # 5 Runway credits a second, 10,000 gengate credits per Runway credit
GEN4_IMAGE_1080P = 8 * 10_000


async def test_image_to_video_waits_for_gengate_urls(sandbox_server, http):
    """The SDK's own polling rhythm, unchanged: create, wait, download a playable MP4 from gengate."""
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(), ratio="1280:720",
                                                 duration=5, prompt_text="a paper lantern sways in the wind")
    assert UUID4.match(created.id), created.id
    assert created.estimated_cost.credits == 25
    task = await created.wait_for_task_output(timeout=60)
    assert isinstance(task, Succeeded), task
    assert task.id == created.id and task.status == "SUCCEEDED"
    assert task.cost.credits == 25 and isinstance(task.to_dict()["cost"]["credits"], int)
    assert len(task.output) == 1 and task.output[0].startswith(server.url + "/"), task.output
    width, height, seconds = probe_mp4(await download(http, task.output[0]))
    assert width * 720 == height * 1280, (width, height)  # the ratio asked for
    assert abs(seconds - 5) <= 0.3, seconds
    assert server.credits(name) == 1_000_000 - GEN4_TURBO_5S
    async with http.get(f"{server.url}/runway/v1/tasks/{task.id}", headers={"Authorization": f"Bearer {key}"}) as resp:
        raw = await resp.json()
    assert ISO_MS.match(raw["createdAt"]), raw
    assert set(raw) == {"id", "status", "createdAt", "output", "cost"}, raw
    # The unified task API sees the same task by the same id.
    async with http.get(f"{server.url}/v1/tasks/{task.id}", headers={"Authorization": f"Bearer {key}"}) as resp:
        unified = await resp.json()
    assert unified["id"] == task.id and unified["status"] == "succeeded" and unified["provider"] == "runway"
    assert unified["cost"] == {"reserved": GEN4_TURBO_5S, "settled": GEN4_TURBO_5S}
    assert "Traceback" not in server.log_text()


async def test_text_to_image_with_the_sync_client(sandbox_server, http, fast_polls):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = sync_sdk(server.url, key)

    def run() -> Succeeded:
        created = client.text_to_image.create(model="gen4_image", prompt_text="a red bicycle at dawn",
                                              ratio="1920:1080")
        assert created.estimated_cost.credits == 8
        return created.wait_for_task_output(timeout=60)

    task = await asyncio.to_thread(run)
    assert task.status == "SUCCEEDED" and task.cost.credits == 8
    assert probe_png(await download(http, task.output[0])) == (1920, 1080)
    assert server.credits(name) == 1_000_000 - GEN4_IMAGE_1080P
    again = await asyncio.to_thread(client.tasks.retrieve, task.id)
    assert isinstance(again, Succeeded) and again.output[0].startswith(server.url + "/")


async def test_retrieve_shows_live_states_with_the_fields_the_union_needs(sandbox_server):
    server = sandbox_server
    key = server.make_key()
    client = sdk(server.url, key)
    server.upstream.hold(True, provider="runway")
    try:
        created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(),
                                                     ratio="960:960")
        assert created.estimated_cost.credits == 50  # no duration: Runway's default, 10 s
        task = await client.tasks.retrieve(created.id)
        assert isinstance(task, Pending | Running), task
        assert task.estimated_cost.credits == 50
        assert task.created_at is not None
    finally:
        server.upstream.hold(False, provider="runway")
    for _ in range(100):
        task = await client.tasks.retrieve(created.id)
        if task.status == "SUCCEEDED":
            break
        assert isinstance(task, Pending | Running), task
        if isinstance(task, Running):
            assert 0 <= task.progress <= 1
        await asyncio.sleep(0.2)
    assert isinstance(task, Succeeded), task


async def test_delete_cancels_a_live_task_refunds_it_and_then_it_is_gone(sandbox_server):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    before = server.upstream.counters(server.secret, "runway")["cancels"]
    server.upstream.hold(True, provider="runway")
    try:
        created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(),
                                                     ratio="720:1280", duration=10)
        assert server.credits(name) == 1_000_000 - 2 * GEN4_TURBO_5S  # reserved
        assert await client.tasks.delete(created.id) is None
    finally:
        server.upstream.hold(False, provider="runway")
    with pytest.raises(runwayml.NotFoundError) as err:
        await client.tasks.retrieve(created.id)
    assert isinstance(err.value.body, dict) and err.value.body.get("error")
    with pytest.raises(runwayml.NotFoundError):
        await client.tasks.delete(created.id)
    assert server.credits(name) == 1_000_000  # refunded once
    assert server.upstream.counters(server.secret, "runway")["cancels"] == before + 1  # aborted upstream too
    assert "Traceback" not in server.log_text()


async def test_delete_of_a_finished_task_keeps_its_charge(sandbox_server, fast_polls):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(), ratio="1280:720",
                                                 duration=5)
    await created.wait_for_task_output(timeout=60)
    await client.tasks.delete(created.id)
    with pytest.raises(runwayml.NotFoundError):
        await client.tasks.retrieve(created.id)
    assert server.credits(name) == 1_000_000 - GEN4_TURBO_5S


async def test_upstream_failure_is_failed_and_refunded(sandbox_server, fast_polls):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    server.upstream.fault(provider="runway", kind="fail_task", count=1, secret=server.secret,
                          err_code="SAFETY.INPUT.IMAGE", err_msg="The input image was flagged")
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(), ratio="1280:720",
                                                 duration=5)
    with pytest.raises(polling.TaskFailedError) as err:
        await created.wait_for_task_output(timeout=60)
    task = err.value.task_details
    assert isinstance(task, Failed), task
    assert task.failure == "The input image was flagged" and task.failure_code == "SAFETY.INPUT.IMAGE"
    assert task.cost.credits == 0
    assert server.credits(name) == 1_000_000


async def test_another_key_sees_404(sandbox_server, fast_polls):
    server = sandbox_server
    client = sdk(server.url, server.make_key())
    stranger = sdk(server.url, server.make_key())
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(), ratio="1280:720",
                                                 duration=5)
    with pytest.raises(runwayml.NotFoundError):
        await stranger.tasks.retrieve(created.id)
    with pytest.raises(runwayml.NotFoundError):
        await stranger.tasks.delete(created.id)
    assert (await created.wait_for_task_output(timeout=60)).status == "SUCCEEDED"


async def test_cancel_through_the_unified_api_shows_cancelled(sandbox_server, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    server.upstream.hold(True, provider="runway")
    try:
        created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(),
                                                     ratio="1280:720", duration=5)
        async with http.post(f"{server.url}/v1/tasks/{created.id}/cancel",
                             headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 200, await resp.text()
    finally:
        server.upstream.hold(False, provider="runway")
    task = await client.tasks.retrieve(created.id)
    assert isinstance(task, Cancelled) and task.cost.credits == 0, task
    assert server.credits(name) == 1_000_000


async def test_a_wrong_key_is_401_in_runways_shape(sandbox_server):
    client = sdk(sandbox_server.url, "sk-" + "x" * 40)
    with pytest.raises(runwayml.AuthenticationError) as err:
        await client.tasks.retrieve("0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13")
    assert isinstance(err.value.body, dict) and isinstance(err.value.body.get("error"), str)
