"""`POST /runway/v1/text_to_video` through the official `runwayml` SDK (5.24.0): client (SDK) → gengate
→ HTTP → a standalone Runway emulator (a channel serving every model; the sandbox serves only
gen4_turbo and gen4_image). gen4.5 (12 Runway credits a second), veo3.1 / veo3.1_fast (with and
without audio), Runway's 400 with `issues` before anything is saved, charged or sent."""

from __future__ import annotations

import openai
import pytest
import runwayml
from harness.runway import RunwayRaw, assert_runway_error, download, probe_mp4, runway_gateway, sdk
from runwayml.lib import polling
from runwayml.types.task_retrieve_response import Failed, Succeeded

pytestmark = pytest.mark.timeout(180)

CREDIT = 10_000  # gengate credits in one Runway credit


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    yield from runway_gateway(make_server, emulator, "rw-all")


async def test_gen45_text_to_video_is_a_playable_mp4_billed_per_second(setup, http, fast_polls):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(secret, "runway")
    client = sdk(server.url, key)
    created = await client.text_to_video.create(model="gen4.5", prompt_text="a paper boat on a rainy street",
                                                ratio="720:1280", duration=3)
    assert created.estimated_cost.credits == 36  # 12 credits a second
    assert server.credits(name) == 1_000_000 - 36 * CREDIT  # reserved at once
    task = await created.wait_for_task_output(timeout=60)
    assert isinstance(task, Succeeded), task
    assert task.cost.credits == 36 and isinstance(task.to_dict()["cost"]["credits"], int)
    assert task.output[0].startswith(server.url + "/"), task.output
    width, height, seconds = probe_mp4(await download(http, task.output[0]))
    assert width * 1280 == height * 720, (width, height)
    assert abs(seconds - 3) <= 0.3, seconds
    assert server.credits(name) == 1_000_000 - 36 * CREDIT
    assert server.upstream.creates(secret, "runway") == before + 1
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize(("model", "audio", "duration", "credits"), [
    ("veo3.1_fast", False, 4, 40),  # 10 a second without sound
    ("veo3.1_fast", None, None, 100),  # sound by default (15 a second), 8 s by default: 120, capped
    ("veo3.1", True, 6, 100),  # 40 a second with sound: 240, capped (interface.md: no shipped price
])                              # exceeds 1,000,000 gengate credits, 100 Runway credits, per request
async def test_veo_prices_follow_duration_and_audio(setup, http, fast_polls, model, audio, duration, credits):
    server, _ = setup
    name, key = server.make_named_key(credits=5_000_000)
    extra = {k: v for k, v in {"audio": audio, "duration": duration}.items() if v is not None}
    created = await sdk(server.url, key).text_to_video.create(model=model, prompt_text="waves at dusk",
                                                              ratio="1920:1080", **extra)
    assert created.estimated_cost.credits == credits
    task = await created.wait_for_task_output(timeout=60)
    assert task.status == "SUCCEEDED" and task.cost.credits == credits
    width, height, seconds = probe_mp4(await download(http, task.output[0]))
    assert width * 1080 == height * 1920 and abs(seconds - (duration or 8)) <= 0.3, (width, height, seconds)
    assert server.credits(name) == 5_000_000 - credits * CREDIT


@pytest.mark.parametrize(("body", "path"), [
    ({"model": "gen4.5", "promptText": "x", "ratio": "1280:720"}, ["duration"]),  # required for gen4.5
    ({"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 11}, ["duration"]),
    ({"model": "gen4.5", "promptText": "x", "ratio": "1920:1080", "duration": 5}, ["ratio"]),
    ({"model": "veo3.1", "promptText": "x", "ratio": "1280:720", "duration": 5}, ["duration"]),
    ({"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5, "audio": True}, ["audio"]),
    ({"model": "veo3.1", "promptText": "x", "ratio": "1280:720", "audio": "yes"}, ["audio"]),
    ({"model": "gen4_turbo", "promptText": "x", "ratio": "1280:720", "duration": 5}, ["model"]),
    ({"model": "veo3.1_fast", "ratio": "1280:720"}, ["promptText"]),
    ({"model": "veo3.1_fast", "promptText": "x" * 1001, "ratio": "1280:720"}, ["promptText"]),
    ({"model": "veo3.1_fast", "promptText": "x", "ratio": "1280:720", "seed": -1}, ["seed"]),
])
async def test_bad_text_to_video_bodies_are_runway_400s_and_cost_nothing(setup, http, body, path):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(secret, "runway")
    reply = await RunwayRaw(http, server.url, key).create(body, action="text_to_video")
    assert_runway_error(reply, 400, issue_path=path)
    assert reply.headers.get("x-should-retry") == "false"
    assert server.credits(name) == 1_000_000
    assert server.db_query(f"SELECT COUNT(*) AS n FROM tasks t JOIN keys k ON k.id = t.key_id "
                           f"WHERE k.name = '{name}'") == [{"n": 0}]
    assert server.upstream.creates(secret, "runway") == before


async def test_the_sdk_raises_its_bad_request_error_with_the_issues(setup):
    server, _ = setup
    with pytest.raises(runwayml.BadRequestError) as err:
        await sdk(server.url, server.make_key()).text_to_video.create(model="veo3.1", prompt_text="x",
                                                                      ratio="1280:720", duration=5)
    assert isinstance(err.value.body, dict) and err.value.body["issues"][0]["path"] == ["duration"]


async def test_a_failed_text_to_video_is_refunded(setup, fast_polls):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.fault(provider="runway", kind="fail_task", count=1, secret=secret)
    created = await sdk(server.url, key).text_to_video.create(model="gen4.5", prompt_text="a storm",
                                                              ratio="1280:720", duration=2)
    with pytest.raises(polling.TaskFailedError) as err:
        await created.wait_for_task_output(timeout=60)
    failed = err.value.task_details
    assert isinstance(failed, Failed) and failed.cost.credits == 0 and failed.failure_code, failed
    assert server.credits(name) == 1_000_000


@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
async def test_v1_videos_serves_the_text_to_video_models(setup):
    """The `/v1/videos` table's Runway text-to-video entries, with the `openai` SDK: seconds rounded up
    to the model's durations, the size's ratio, a playable MP4, a Runway task with Runway's price."""
    server, _ = setup
    name, key = server.make_named_key(credits=5_000_000)
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=30)
    video = await client.videos.create(model="veo3.1_fast", prompt="a lighthouse at night", seconds="5",
                                       size="720x1280")
    assert video.seconds == "6" and video.model == "veo3.1_fast", video
    done = await client.videos.poll(video.id, poll_interval_ms=200)
    assert done.status == "completed", done
    width, height, seconds = probe_mp4((await client.videos.download_content(video.id)).content)
    assert width * 1280 == height * 720 and abs(seconds - 6) <= 0.3, (width, height, seconds)
    assert server.credits(name) == 5_000_000 - 6 * 15 * CREDIT  # with sound, as Runway's default
    with pytest.raises(openai.BadRequestError):  # text only: no input_reference
        await client.videos.create(model="gen4.5", prompt="x", seconds="4",
                                   input_reference=("f.png", b"\x89PNG\r\n\x1a\n", "image/png"))
