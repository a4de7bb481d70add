"""`POST /runway/v1/video_upscale` through the official `runwayml` SDK (5.24.0): client (SDK) → gengate
→ HTTP → a standalone Runway emulator. The input's length is unknown to gengate: 40 s are reserved and
the settlement follows the cost Runway reports (the emulator reads a data-URI input; it takes a URL as
5 s); Runway's 400 with `issues` for a bad body before anything is saved, charged or sent."""

from __future__ import annotations

import base64

import pytest
from harness.runway import RunwayRaw, assert_runway_error, download, png_data_uri, probe_mp4, runway_gateway, sdk
from runwayml.types.task_retrieve_response import Succeeded

from gengate.emulator.media import MediaSpec, render

pytestmark = pytest.mark.timeout(180)

CREDIT = 10_000


def mp4_data_uri(width: int, height: int, seconds: float) -> str:
    return "data:video/mp4;base64," + base64.b64encode(render(MediaSpec("mp4", "input", width, height, seconds,
                                                                         8))).decode()


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    yield from runway_gateway(make_server, emulator, "rw-vup", "magnific_video_upscaler_creative,enhance_frame_rate")


async def test_an_upscaled_video_is_billed_for_the_seconds_runway_reports(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=10_000_000)
    created = await sdk(server.url, key).video_upscale.create(
        model="magnific_video_upscaler_creative", video_uri=mp4_data_uri(320, 240, 3), resolution="1k",
        creativity=30, flavor="natural")
    assert created.estimated_cost.credits == 100  # 40 s at 10 credits a second, capped at 1,000,000 credits
    reserved = server.db_query("SELECT l.amount FROM ledger_entries l JOIN keys k ON k.id = l.key_id"
                               f" WHERE k.name = '{name}' AND l.kind = 'reserve'")
    assert [r["amount"] for r in reserved] == [100 * CREDIT]  # (the task may already be done: no balance check)
    task = await created.wait_for_task_output(timeout=60)
    assert isinstance(task, Succeeded), task
    assert task.cost.credits == 30, task  # 3 s of input
    width, height, seconds = probe_mp4(await download(http, task.output[0]))
    assert width * 3 == height * 4 and abs(seconds - 3) <= 0.3, (width, height, seconds)
    assert server.credits(name) == 10_000_000 - 30 * CREDIT
    assert "Traceback" not in server.log_text()


async def test_enhance_frame_rate_on_a_url(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=1_000_000)
    created = await sdk(server.url, key).video_upscale.create(
        model="enhance_frame_rate", video_uri="https://cdn.example.com/clip.mp4", target_framerate="60")
    assert created.estimated_cost.credits == 80
    task = await created.wait_for_task_output(timeout=60)
    assert task.status == "SUCCEEDED" and task.cost.credits == 10  # the emulator's 5 s at 2 a second
    probe_mp4(await download(http, task.output[0]))
    assert server.credits(name) == 1_000_000 - 10 * CREDIT


@pytest.mark.parametrize(("body", "path"), [
    ({"model": "enhance_frame_rate", "targetFramerate": "60"}, ["videoUri"]),
    ({"model": "enhance_frame_rate", "videoUri": "https://example.com/v.mp4"}, ["targetFramerate"]),
    ({"model": "enhance_frame_rate", "videoUri": "https://example.com/v.mp4", "targetFramerate": 60},
     ["targetFramerate"]),
    ({"model": "magnific_video_upscaler_creative", "videoUri": png_data_uri()}, ["videoUri"]),
    ({"model": "magnific_video_upscaler_creative", "videoUri": "https://example.com/v.mp4", "resolution": "8k"},
     ["resolution"]),
    ({"model": "magnific_video_upscaler_creative", "videoUri": "https://example.com/v.mp4", "creativity": 101},
     ["creativity"]),
    ({"model": "magnific_video_upscaler_creative", "videoUri": "https://example.com/v.mp4", "fpsBoost": "yes"},
     ["fpsBoost"]),
    ({"model": "upscale_v1", "videoUri": "https://example.com/v.mp4"}, ["model"]),
])
async def test_bad_video_upscale_bodies_are_runway_400s_and_cost_nothing(setup, http, body, path):
    server, secret = setup
    name, key = server.make_named_key(credits=10_000_000)
    before = server.upstream.creates(secret, "runway")
    reply = await RunwayRaw(http, server.url, key).create(body, action="video_upscale")
    assert_runway_error(reply, 400, issue_path=path)
    assert server.credits(name) == 10_000_000
    assert server.upstream.creates(secret, "runway") == before
