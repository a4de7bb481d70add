"""`POST /runway/v1/image_upscale` through the official `runwayml` SDK (5.24.0): client (SDK) → gengate
→ HTTP → a standalone Runway emulator. One image at 10 Runway credits, the PNG `scaleFactor` times the
input's size, Runway's 400 with `issues` for a bad body before anything is saved, charged or sent."""

from __future__ import annotations

import pytest
from harness.runway import RunwayRaw, assert_runway_error, download, png_data_uri, probe_png, runway_gateway, sdk
from runwayml.types.task_retrieve_response import Succeeded

pytestmark = pytest.mark.timeout(180)

CREDIT = 10_000


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    yield from runway_gateway(make_server, emulator, "rw-upscale", "magnific_precision_upscaler_v2")


@pytest.mark.parametrize(("scale", "size"), [(None, (128, 72)), (4, (256, 144))])
async def test_an_upscaled_png_is_the_scale_times_the_input(setup, http, fast_polls, scale, size):
    server, _ = setup
    name, key = server.make_named_key(credits=1_000_000)
    extra = {"scale_factor": scale} if scale else {}
    created = await sdk(server.url, key).image_upscale.create(
        model="magnific_precision_upscaler_v2", image_uri=png_data_uri(64, 36), flavor="photo", sharpen=20, **extra)
    assert created.estimated_cost.credits == 10
    task = await created.wait_for_task_output(timeout=60)
    assert isinstance(task, Succeeded) and task.cost.credits == 10, task
    assert task.output[0].startswith(server.url + "/"), task.output
    assert probe_png(await download(http, task.output[0])) == size
    assert server.credits(name) == 1_000_000 - 10 * CREDIT
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize(("body", "path"), [
    ({"model": "magnific_precision_upscaler_v2"}, ["imageUri"]),
    ({"model": "upscale_v1", "imageUri": "https://example.com/a.png"}, ["model"]),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "http://example.com/a.png"}, ["imageUri"]),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "https://10.0.0.1/a.png"}, ["imageUri"]),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "data:text/plain;base64,aGk="}, ["imageUri"]),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "https://example.com/a.png", "scaleFactor": 3},
     ["scaleFactor"]),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "https://example.com/a.png", "flavor": "anime"},
     ["flavor"]),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "https://example.com/a.png", "sharpen": 101},
     ["sharpen"]),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "https://example.com/a.png", "ultraDetail": "x"},
     ["ultraDetail"]),
])
async def test_bad_upscale_bodies_are_runway_400s_and_cost_nothing(setup, http, body, path):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(secret, "runway")
    reply = await RunwayRaw(http, server.url, key).create(body, action="image_upscale")
    assert_runway_error(reply, 400, issue_path=path)
    assert server.credits(name) == 1_000_000
    assert server.upstream.creates(secret, "runway") == before


async def test_an_asset_runway_cannot_fetch_is_refused_upstream_and_refunded(setup, http):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(secret, "runway")
    reply = await RunwayRaw(http, server.url, key).create(
        {"model": "magnific_precision_upscaler_v2", "imageUri": "https://missing.invalid/a.png"},
        action="image_upscale")
    body = assert_runway_error(reply, 400, issue_path=[])
    assert "Failed to fetch asset" in body["issues"][0]["message"], body
    assert server.upstream.creates(secret, "runway") == before  # the emulator refused it: no job
    assert server.credits(name) == 1_000_000
