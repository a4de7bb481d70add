"""`POST /runway/v1/character_performance` (`act_two`) through the official `runwayml` SDK: client →
gengate → HTTP → a standalone Runway emulator. 20 s are reserved at 5 credits a second (1,000,000
gengate credits: the contract's cap), the settlement follows the reported cost (the reference's
length); a bad body is Runway's 400, nothing charged or sent; a task failed upstream is refunded."""

from __future__ import annotations

import base64

import pytest
from harness.runway import RunwayRaw, assert_runway_error, download, png_data_uri, probe_mp4, runway_gateway, sdk
from runwayml.lib import polling
from runwayml.types.task_retrieve_response import Failed, Succeeded

from gengate.emulator.media import MediaSpec, render

pytestmark = pytest.mark.timeout(180)

CREDIT = 10_000


def mp4_data_uri(seconds: float) -> str:
    return "data:video/mp4;base64," + base64.b64encode(render(MediaSpec("mp4", "ref", 160, 90, seconds, 8))).decode()


def act(**over: object) -> dict[str, object]:
    return {"model": "act_two", "character": {"type": "image", "uri": png_data_uri()},
            "reference": {"type": "video", "uri": "https://cdn.example.com/me.mp4"}, **over}


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    yield from runway_gateway(make_server, emulator, "rw-act", "act_two")


async def test_a_character_performs_for_the_references_length(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=10_000_000)
    created = await sdk(server.url, key).character_performance.create(
        model="act_two", character={"type": "image", "uri": png_data_uri()},
        reference={"type": "video", "uri": mp4_data_uri(4)}, ratio="960:960", body_control=True,
        expression_intensity=4, seed=3)
    assert created.estimated_cost.credits == 100  # 20 s at 5 credits a second, reserved (the contract's cap)
    task = await created.wait_for_task_output(timeout=60)
    assert isinstance(task, Succeeded) and task.cost.credits == 20, task  # the reference's 4 s
    width, height, seconds = probe_mp4(await download(http, task.output[0]))
    assert width == height and abs(seconds - 4) <= 0.3, (width, height, seconds)
    assert server.credits(name) == 10_000_000 - 20 * CREDIT
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize(("body", "path"), [
    (act(character=None), ["character"]),
    (act(character={"type": "audio", "uri": png_data_uri()}), ["character", "type"]),
    (act(reference={"type": "image", "uri": png_data_uri()}), ["reference", "type"]),
    (act(reference={"type": "video"}), ["reference", "uri"]),
    (act(ratio="1920:1080"), ["ratio"]),
    (act(expressionIntensity=6), ["expressionIntensity"]),
    (act(bodyControl="yes"), ["bodyControl"]),
    (act(model="act_one"), ["model"]),
])
async def test_bad_character_performance_bodies_are_runway_400s(setup, http, body, path):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(secret, "runway")
    assert_runway_error(await RunwayRaw(http, server.url, key).create(body, action="character_performance"), 400,
                        issue_path=path)
    assert server.credits(name) == 1_000_000 and server.upstream.creates(secret, "runway") == before


async def test_a_failed_performance_is_refunded(setup, fast_polls):
    server, secret = setup
    name, key = server.make_named_key(credits=10_000_000)
    server.upstream.fault(provider="runway", kind="fail_task", count=1, secret=secret)
    created = await sdk(server.url, key).character_performance.create(
        model="act_two", character={"type": "image", "uri": png_data_uri()},
        reference={"type": "video", "uri": "https://cdn.example.com/me.mp4"})
    with pytest.raises(polling.TaskFailedError) as err:
        await created.wait_for_task_output(timeout=60)
    assert isinstance(err.value.task_details, Failed) and err.value.task_details.cost.credits == 0
    assert server.credits(name) == 10_000_000
