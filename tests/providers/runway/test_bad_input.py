"""Bad input on `/runway/v1`, raw HTTP against `gengate serve --sandbox` (SQLite): Runway's 400
`{"error": "Validation of body failed", "issues": [...]}` before anything is saved, charged or sent
upstream; auth, unknown paths and methods in Runway's body; an upstream refusal passed on with its
issues and refunded; `X-Runway-Version` from the client is ignored."""

from __future__ import annotations

from typing import Any

import pytest
from harness.runway import RunwayRaw, assert_runway_error, i2v, png_data_uri

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server(make_server):
    return make_server()


@pytest.fixture(scope="module")
def payer(server):
    """One key with 1,000,000 credits for the many bad bodies: none of them may touch it."""
    return server.make_named_key(credits=1_000_000)


def nothing_happened(server: Any, name: str, credits: int, creates_before: int) -> None:
    rows = server.db_query("SELECT (SELECT COUNT(*) FROM tasks t WHERE t.key_id = k.id) AS tasks, "
                           "(SELECT COUNT(*) FROM ledger_entries l WHERE l.key_id = k.id AND l.kind = 'reserve') "
                           "AS entries "
                           f"FROM keys k WHERE k.name = '{name}'")
    assert rows == [{"tasks": 0, "entries": 0}], rows
    assert server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'") == [{"credits": credits}]
    assert server.upstream.creates(server.secret, "runway") == creates_before
    assert "Traceback" not in server.log_text()


BIG_PROMPT = "x" * 1001


@pytest.mark.parametrize(("action", "body", "path"), [
    ("image_to_video", i2v(ratio="1920:1080"), ["ratio"]),
    ("image_to_video", i2v(ratio=None), ["ratio"]),
    ("image_to_video", i2v(duration=7), ["duration"]),
    ("image_to_video", i2v(duration="5"), ["duration"]),
    ("image_to_video", i2v(promptImage=None), ["promptImage"]),
    ("image_to_video", i2v(promptImage="http://example.com/cat.png"), ["promptImage"]),
    ("image_to_video", i2v(promptImage="https://93.184.216.34/cat.png"), ["promptImage"]),
    ("image_to_video", i2v(promptImage="data:image/png;base64,@@not-base64@@"), ["promptImage"]),
    ("image_to_video", i2v(promptImage="data:text/plain;base64,aGVsbG8="), ["promptImage"]),
    ("image_to_video", i2v(promptImage=[{"uri": png_data_uri(), "position": "last"}]), ["promptImage", 0, "position"]),
    ("image_to_video", i2v(promptImage=[{"position": "first"}]), ["promptImage", 0, "uri"]),
    ("image_to_video", i2v(promptText=BIG_PROMPT), ["promptText"]),
    ("image_to_video", i2v(promptText="😀" * 501), ["promptText"]),  # 1002 UTF-16 code units
    ("image_to_video", i2v(seed=-1), ["seed"]),
    ("image_to_video", i2v(seed=4294967296), ["seed"]),
    ("image_to_video", i2v(model="gen9_ultra"), ["model"]),
    ("image_to_video", i2v(model="gen4_image"), ["model"]),  # an image model on the video route
    ("image_to_video", i2v(contentModeration={"publicFigureThreshold": "none"}),
     ["contentModeration", "publicFigureThreshold"]),
    ("image_to_video", i2v(model={"name": "gen4_turbo"}), ["model"]),
    ("image_to_video", i2v(ratio=["1280:720"]), ["ratio"]),
    ("image_to_video", i2v(duration=[5]), ["duration"]),
    ("image_to_video", i2v(duration=5.5), ["duration"]),
    ("image_to_video", i2v(promptImage=42), ["promptImage"]),
    ("image_to_video", i2v(promptImage=["https://example.com/a.png"]), ["promptImage", 0]),
    ("image_to_video", i2v(promptImage=[]), ["promptImage"]),
    ("image_to_video", i2v(contentModeration="low"), ["contentModeration"]),
    ("text_to_image", {"model": ["gen4_image"], "promptText": "a fox", "ratio": "1920:1080"}, ["model"]),
    ("text_to_image", {"model": "gen4_image", "promptText": "a fox", "ratio": {"w": 1}}, ["ratio"]),
    ("text_to_image", {"model": "gen4_image", "promptText": "a fox", "ratio": "1920:1080",
                       "referenceImages": "https://example.com/a.png"}, ["referenceImages"]),
    ("text_to_image", {"model": "gen4_image", "promptText": 7, "ratio": "1920:1080"}, ["promptText"]),
    ("text_to_image", {"model": "gen4_image", "ratio": "1920:1080"}, ["promptText"]),
    ("text_to_image", {"model": "gen4_image", "promptText": "a fox", "ratio": "1280:768"}, ["ratio"]),
    ("text_to_image", {"model": "gen4_image_turbo", "promptText": "a fox", "ratio": "1920:1080"},
     ["referenceImages"]),
    ("text_to_image", {"model": "gen4_image", "promptText": "a fox", "ratio": "1920:1080",
                       "referenceImages": [{"uri": png_data_uri(), "tag": "x"}]}, ["referenceImages", 0, "tag"]),
    ("text_to_image", {"model": "gen4_turbo", "promptText": "a fox", "ratio": "1920:1080"}, ["model"]),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_invalid_body_is_runways_400_and_nothing_happens(server, payer, http, action, body, path):
    name, key = payer
    before = server.upstream.creates(server.secret, "runway")
    body = {k: v for k, v in body.items() if v is not None}
    reply = await RunwayRaw(http, server.url, key).create(body, action)
    got = assert_runway_error(reply, 400, issue_path=path)
    assert reply.headers.get("x-should-retry") == "false"  # the SDK must not repeat it
    assert got["docUrl"].startswith("https://")
    nothing_happened(server, name, 1_000_000, before)


@pytest.mark.parametrize("raw", [b"{not json", b'{"model": NaN}', b'{"promptText": "\\ud800"}', b"[]", b""],
                         ids=["garbled", "nan", "lone-surrogate", "array", "empty"])
async def test_a_body_that_is_not_a_json_object_is_400(server, payer, http, raw):
    name, key = payer
    before = server.upstream.creates(server.secret, "runway")
    reply = await RunwayRaw(http, server.url, key).request("POST", "/v1/image_to_video", data=raw)
    assert_runway_error(reply, 400)
    nothing_happened(server, name, 1_000_000, before)


async def test_auth_paths_and_methods_answer_in_runways_shape(server, http):
    reply = await RunwayRaw(http, server.url, None).create(i2v())
    assert_runway_error(reply, 401)
    reply = await RunwayRaw(http, server.url, "sk-unknown-" + "a" * 32).get("0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13")
    assert_runway_error(reply, 401)
    raw = RunwayRaw(http, server.url, server.make_key())
    assert_runway_error(await raw.get("0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13"), 404)
    assert_runway_error(await raw.get("not-a-uuid"), 404)
    assert_runway_error(await raw.request("GET", "/v1/no_such_thing"), 404)
    reply = await raw.request("PUT", "/v1/tasks/0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13")
    assert_runway_error(reply, 405)
    assert "DELETE" in reply.headers["Allow"]
    assert_runway_error(await raw.request("GET", "/v1/image_to_video"), 405)


async def test_too_few_credits_is_runways_credit_error(server, http):
    name, key = server.make_named_key(credits=10)
    before = server.upstream.creates(server.secret, "runway")
    body = assert_runway_error(await RunwayRaw(http, server.url, key).create(i2v()), 400)
    assert "enough credits" in body["error"]
    nothing_happened(server, name, 10, before)


async def test_a_model_the_key_may_not_use_is_a_validation_error(server, http):
    name, key = server.make_named_key(credits=1_000_000, models="gen4_image")
    before = server.upstream.creates(server.secret, "runway")
    assert_runway_error(await RunwayRaw(http, server.url, key).create(i2v()), 400, issue_path=["model"])
    nothing_happened(server, name, 1_000_000, before)


async def test_an_upstream_refusal_keeps_its_issues_and_is_refunded(server, http):
    """gengate cannot know that an HTTPS asset is missing: Runway says so (the emulator's `.invalid`
    hosts answer 404), and the client gets that 400 with nothing charged."""
    name, key = server.make_named_key(credits=1_000_000)
    reply = await RunwayRaw(http, server.url, key).create(i2v(promptImage="https://assets.example.invalid/cat.png"))
    body = assert_runway_error(reply, 400, issue_path=[])
    assert "Failed to fetch asset" in body["issues"][0]["message"], body
    assert server.credits(name) == 1_000_000


@pytest.mark.parametrize("version", ["2024-11-06", "1999-01-01", None])
async def test_the_clients_runway_version_is_ignored(server, http, version):
    raw = RunwayRaw(http, server.url, server.make_key(), version=version)
    reply = await raw.create(i2v())
    assert reply.status == 200, reply.text
    assert set(reply.body) == {"id", "estimatedCost"}, reply.body
    assert (await raw.get(reply.body["id"])).status == 200
