"""`POST /runway/v1/uploads` with the official `runwayml` SDK (`uploads.create_ephemeral`): the file is
kept in gengate's storage and its `runway://gengate/...` URI works in the creates of the key that
uploaded it (here through a standalone emulator: a small file reaches the upstream as a data URI, so
the emulator sees its real size and length). Another key's, unknown, forged and non-media uploads are
Runway's 4xx, with nothing charged or sent."""

from __future__ import annotations

import io
import os

import aiohttp
import pytest
import runwayml
from harness.runway import RunwayRaw, assert_runway_error, download, probe_mp4, probe_png, runway_gateway, sdk
from PIL import Image
from runwayml.lib import polling
from runwayml.types.task_retrieve_response import Failed, Succeeded

from gengate.emulator.media import MediaSpec, render

pytestmark = pytest.mark.timeout(180)

CREDIT = 10_000


def png_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    yield from runway_gateway(make_server, emulator, "rw-up")


async def test_an_uploaded_png_animates_with_image_to_video(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    uploaded = await client.uploads.create_ephemeral(file=("cat.png", png_bytes(64, 36)))
    assert uploaded.uri.startswith("runway://"), uploaded
    task = await (await client.image_to_video.create(model="gen4_turbo", prompt_image=uploaded.uri,
                                                     ratio="1280:720", duration=5)).wait_for_task_output(timeout=60)
    assert isinstance(task, Succeeded), task
    probe_mp4(await download(http, task.output[0]))
    assert server.credits(name) == 1_000_000 - 25 * CREDIT
    assert "Traceback" not in server.log_text()


async def test_the_upstream_reads_the_uploaded_bytes(setup, http, fast_polls, tmp_path):
    """The emulator upscales a data-URI image by its real size and edits a data-URI video for its
    real length: an upload that reached it as anything else would come out 512 px wide or 5 s long."""
    server, _ = setup
    _, key = server.make_named_key(credits=10_000_000)
    client = sdk(server.url, key)
    path = tmp_path / "small.png"
    path.write_bytes(png_bytes(100, 50))
    image = await client.uploads.create_ephemeral(file=path)  # a path: the SDK takes the name from it
    task = await (await client.image_upscale.create(model="magnific_precision_upscaler_v2", image_uri=image.uri,
                                                    scale_factor=2)).wait_for_task_output(timeout=60)
    assert probe_png(await download(http, task.output[0])) == (200, 100)
    video = await client.uploads.create_ephemeral(file=("clip.mp4", render(MediaSpec("mp4", "in", 320, 180, 2, 8))))
    task = await (await client.video_to_video.create(model="gen4_aleph", video_uri=video.uri, prompt_text="snow",
                                                     ratio="1280:720")).wait_for_task_output(timeout=60)
    assert task.cost.credits == 30, task  # the upload's 2 s
    _, _, seconds = probe_mp4(await download(http, task.output[0]))
    assert abs(seconds - 2) <= 0.3


async def test_another_keys_or_an_unknown_upload_is_a_400_and_costs_nothing(setup, http):
    server, secret = setup
    _, owner = server.make_named_key(credits=1_000_000)
    name, other = server.make_named_key(credits=1_000_000)
    uri = (await sdk(server.url, owner).uploads.create_ephemeral(file=("a.png", png_bytes(8, 8)))).uri
    before = server.upstream.creates(secret, "runway")
    raw = RunwayRaw(http, server.url, other)
    body = {"model": "gen4_turbo", "ratio": "1280:720", "duration": 5}
    for value in (uri, "runway://gengate/1999999999-AAAAAAAAAAAAAAAAAAAAAA", "runway://elsewhere/x"):
        reply = await raw.create({**body, "promptImage": value})
        assert_runway_error(reply, 400, issue_path=["promptImage"])
    reply = await raw.create({**body, "promptImage": [{"uri": uri, "position": "first"}]})
    assert_runway_error(reply, 400, issue_path=["promptImage", 0, "uri"])
    assert server.credits(name) == 1_000_000
    assert server.upstream.creates(secret, "runway") == before


async def test_a_large_upload_needs_a_public_https_url(setup, http):
    """Above Runway's 5 MB data-URI limit an upload can only reach Runway as a URL, which this server's
    loopback public URL is not: a 400 at create, before anything is charged or sent."""
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    big = b"\x89PNG\r\n\x1a\n" + os.urandom(5 * 1024 * 1024 + 10)
    uri = (await sdk(server.url, key).uploads.create_ephemeral(file=("big.png", big))).uri
    before = server.upstream.creates(secret, "runway")
    reply = await RunwayRaw(http, server.url, key).create({"model": "gen4_turbo", "ratio": "1280:720",
                                                           "promptImage": uri})
    body = assert_runway_error(reply, 400, issue_path=["promptImage"])
    assert "HTTPS" in body["issues"][0]["message"]
    assert server.credits(name) == 1_000_000 and server.upstream.creates(secret, "runway") == before


async def test_the_upload_form_needs_its_signed_fields_and_media(setup, http):
    server, _ = setup
    _, key = server.make_named_key()
    raw = RunwayRaw(http, server.url, key)
    started = await raw.request("POST", "/v1/uploads", json_body={"filename": "a.png", "type": "ephemeral"})
    assert started.status == 200, started.text
    url, fields = started.body["uploadUrl"], started.body["fields"]
    assert url.startswith(server.url) and started.body["runwayUri"].startswith("runway://gengate/")

    async def post(form_fields: dict[str, str], data: bytes) -> tuple[int, str]:
        form = aiohttp.FormData()
        for k, v in form_fields.items():
            form.add_field(k, v)
        form.add_field("file", data, filename="a.png", content_type="image/png")
        async with http.post(url, data=form) as resp:
            return resp.status, await resp.text()

    status, text = await post({**fields, "signature": fields["signature"][:-2] + "AA"}, png_bytes(4, 4))
    assert status == 403 and '"error"' in text, (status, text)
    status, text = await post(fields, b"hello, not an image")
    assert status == 400 and "Traceback" not in text, (status, text)
    assert (await post(fields, png_bytes(4, 4)))[0] == 204
    assert (await post(fields, png_bytes(4, 4)))[0] == 400  # write-once
    bad = await raw.request("POST", "/v1/uploads", json_body={"filename": "", "type": "permanent"})
    assert_runway_error(bad, 400, issue_path=["filename"])
    assert ["type"] in [i["path"] for i in bad.body["issues"]]
    assert_runway_error(await RunwayRaw(http, server.url, None).request(
        "POST", "/v1/uploads", json_body={"filename": "a.png"}), 401)


async def test_the_sdk_raises_on_a_refused_upload(setup):
    server, _ = setup
    with pytest.raises(runwayml.APIStatusError):
        await sdk(server.url, server.make_key()).uploads.create_ephemeral(file=("notes.txt", b"plain text"))


async def test_a_failed_task_on_an_upload_is_refunded(setup, fast_polls):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    uri = (await client.uploads.create_ephemeral(file=("a.png", png_bytes(32, 18)))).uri
    server.upstream.fault(provider="runway", kind="fail_task", count=1, secret=secret)
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=uri, ratio="1280:720", duration=5)
    with pytest.raises(polling.TaskFailedError) as err:
        await created.wait_for_task_output(timeout=60)
    assert isinstance(err.value.task_details, Failed) and err.value.task_details.cost.credits == 0
    assert server.credits(name) == 1_000_000
