"""`POST /runway/v1/video_to_video` (`gen4_aleph`) through the official `runwayml` SDK: client (SDK) →
gengate → HTTP → a standalone Runway emulator. 5 s (the most Aleph edits) are reserved at 15 credits
a second and the settlement follows the cost Runway reports; a bad body is Runway's 400 with `issues`,
nothing saved, charged or sent; a task that fails upstream is refunded."""

from __future__ import annotations

import base64

import pytest
from harness.runway import RunwayRaw, assert_runway_error, download, png_data_uri, probe_mp4, runway_gateway, sdk
from runwayml.lib import polling
from runwayml.types.task_retrieve_response import Failed, Succeeded

from gengate.emulator.media import MediaSpec, render

pytestmark = pytest.mark.timeout(180)

CREDIT = 10_000


def mp4_data_uri(width: int, height: int, seconds: float) -> str:
    return "data:video/mp4;base64," + base64.b64encode(render(MediaSpec("mp4", "input", width, height, seconds,
                                                                         8))).decode()


def v2v(**over: object) -> dict[str, object]:
    return {"model": "gen4_aleph", "videoUri": "https://cdn.example.com/street.mp4", "promptText": "make it snow",
            "ratio": "1280:720", **over}


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    yield from runway_gateway(make_server, emulator, "rw-v2v", "gen4_aleph")


async def test_an_edited_video_is_a_playable_mp4_billed_for_the_seconds_runway_reports(setup, http, fast_polls):
    server, secret = setup
    name, key = server.make_named_key(credits=10_000_000)
    before = server.upstream.creates(secret, "runway")
    created = await sdk(server.url, key).video_to_video.create(
        model="gen4_aleph", video_uri=mp4_data_uri(320, 180, 3), prompt_text="make it snow", ratio="1280:720",
        references=[{"type": "image", "uri": png_data_uri()}], seed=7,
        content_moderation={"public_figure_threshold": "low"})
    assert created.estimated_cost.credits == 75  # 5 s at 15 credits a second, reserved
    # Reserved, unless the (fast) emulator's task was already settled: a loaded machine is slow to ask.
    assert server.credits(name) in (10_000_000 - 75 * CREDIT, 10_000_000 - 45 * CREDIT)
    task = await created.wait_for_task_output(timeout=60)
    assert isinstance(task, Succeeded), task
    assert task.cost.credits == 45, task  # the input's 3 s
    width, height, seconds = probe_mp4(await download(http, task.output[0]))
    assert width * 720 == height * 1280 and abs(seconds - 3) <= 0.3, (width, height, seconds)
    assert server.credits(name) == 10_000_000 - 45 * CREDIT
    assert server.upstream.creates(secret, "runway") == before + 1
    assert "Traceback" not in server.log_text()


async def test_a_video_behind_a_url_is_edited_for_five_seconds(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=1_000_000)
    created = await sdk(server.url, key).video_to_video.create(
        model="gen4_aleph", video_uri="https://cdn.example.com/street.mp4", prompt_text="at night", ratio="720:1280")
    task = await created.wait_for_task_output(timeout=60)
    assert task.status == "SUCCEEDED" and task.cost.credits == 75, task
    width, height, _ = probe_mp4(await download(http, task.output[0]))
    assert width < height
    assert server.credits(name) == 1_000_000 - 75 * CREDIT


@pytest.mark.parametrize(("body", "path"), [
    (v2v(videoUri=None), ["videoUri"]),
    (v2v(videoUri=png_data_uri()), ["videoUri"]),
    (v2v(videoUri="http://cdn.example.com/a.mp4"), ["videoUri"]),
    (v2v(promptText=None), ["promptText"]),
    (v2v(ratio="1920:1080"), ["ratio"]),
    (v2v(ratio=None), ["ratio"]),
    (v2v(model="gen4_turbo"), ["model"]),
    (v2v(references=[{"type": "video", "uri": "https://cdn.example.com/a.png"}]), ["references", 0, "type"]),
    (v2v(references=[{"type": "image"}]), ["references", 0, "uri"]),
    (v2v(references=[{"type": "image", "uri": png_data_uri()}] * 2), ["references"]),
    (v2v(seed=-1), ["seed"]),
])
async def test_bad_video_to_video_bodies_are_runway_400s_and_cost_nothing(setup, http, body, path):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(secret, "runway")
    reply = await RunwayRaw(http, server.url, key).create(body, action="video_to_video")
    assert_runway_error(reply, 400, issue_path=path)
    assert server.credits(name) == 1_000_000
    assert server.upstream.creates(secret, "runway") == before
    assert server.db_query(f"SELECT COUNT(*) AS n FROM tasks t JOIN keys k ON k.id = t.key_id "
                           f"WHERE k.name = '{name}'") == [{"n": 0}]


async def test_a_failed_video_to_video_is_refunded(setup, fast_polls):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.fault(provider="runway", kind="fail_task", count=1, secret=secret)
    created = await sdk(server.url, key).video_to_video.create(**{
        "model": "gen4_aleph", "video_uri": "https://cdn.example.com/street.mp4", "prompt_text": "make it snow",
        "ratio": "1280:720"})
    with pytest.raises(polling.TaskFailedError) as err:
        await created.wait_for_task_output(timeout=60)
    failed = err.value.task_details
    assert isinstance(failed, Failed) and failed.cost.credits == 0 and failed.failure_code, failed
    assert server.credits(name) == 1_000_000
