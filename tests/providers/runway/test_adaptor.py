"""The Runway adaptor on recorded replies (no server): what it sends upstream, how it reads each
reply, prices, and that every rendered task parses as the right class of `runwayml`'s union."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness.runway import noisy_png_data_uri, png_data_uri
from runwayml._models import construct_type, validate_type
from runwayml.types import TaskRetrieveResponse
from runwayml.types.task_retrieve_response import Cancelled, Failed, Pending, Running, Succeeded, Throttled

from gengate.core.adaptor import Account, HttpReply, Outcome, OutputSpec, OutputView, TaskRef, TaskView
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.runway.adaptor import PRICES, RunwayAdaptor, failure_code
from gengate.providers.runway.errors import ValidationFailed

A = RunwayAdaptor()
S = TaskState
TABLE = PriceTable([PRICES])
ACCOUNT = Account(base_url="https://api.dev.runwayml.com", secret="key_" + "ab" * 64)
REF = TaskRef(upstream_id="0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13", action="image_to_video", model="gen4_turbo",
              upstream_request={"model": "gen4_turbo"}, marker="m")


def reply(status: int, body: Any) -> HttpReply:
    return HttpReply(status, json.dumps(body).encode() if not isinstance(body, bytes) else body,
                     {"Content-Type": "application/json"})


class NoStash:
    async def stash(self, value: str) -> str:
        return "gengate-inline:inline/x"

    async def output(self, public_id: str) -> None:
        return None

    async def task(self, public_id: str, provider: str | None = None) -> None:
        return None


def view(state: TaskState, **over: Any) -> TaskView:
    fields: dict[str, Any] = {
        "public_id": "0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13", "provider": "runway", "action": "image_to_video",
        "model": "gen4_turbo", "state": state, "upstream_state": None, "progress": None, "request": {},
        "upstream_reply": None, "outputs": (), "error_code": None, "error_message": None,
        "created_at": 1_750_000_000.123, "updated_at": 1_750_000_010.0, "reserved": 250_000, "settled": None}
    fields.update(over)
    return TaskView(**fields)


def test_calls_carry_the_bearer_secret_and_the_channels_version():
    call = A.build_submit(ACCOUNT, REF)
    assert (call.method, call.path) == ("POST", "/v1/image_to_video")
    assert call.headers["Authorization"] == f"Bearer {ACCOUNT.secret}"
    assert call.headers["X-Runway-Version"] == "2024-11-06"
    old = Account(base_url=ACCOUNT.base_url, secret=ACCOUNT.secret, options={"version": "2024-09-13"})
    assert A.build_poll(old, REF).headers["X-Runway-Version"] == "2024-09-13"
    cancel = A.build_cancel(ACCOUNT, REF)
    assert (cancel.method, cancel.path) == ("DELETE", f"/v1/tasks/{REF.upstream_id}")


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (200, {"id": "u-1", "estimatedCost": {"credits": 25}}, Outcome.ACCEPTED),
    (200, {"id": "u-1"}, Outcome.ACCEPTED),  # a missing field is tolerated
    (400, {"error": "You do not have enough credits to run this task."}, Outcome.NO_CREDIT),
    (401, {"error": "Invalid API key"}, Outcome.AUTH),
    (429, {"error": "Too many requests"}, Outcome.RETRY),
    (502, b"<html>bad gateway</html>", Outcome.RETRY),
    (400, {"error": "Validation of body failed", "issues": [{"code": "custom", "path": ["promptImage"],
                                                             "message": "Failed to fetch asset."}]}, Outcome.REFUSED),
])
def test_parse_submit(status, body, outcome):
    sub = A.parse_submit(reply(status, body), REF)
    assert sub.outcome is outcome
    if outcome is Outcome.ACCEPTED:
        assert sub.upstream_id == "u-1"
    if outcome is Outcome.REFUSED:
        assert sub.error_code == "validation" and "promptImage: Failed to fetch asset." in sub.error_message


@pytest.mark.parametrize("body", [{"id": None}, {"id": ""}, {"estimatedCost": {"credits": 1}}, ["u-1"]])
def test_a_2xx_create_reply_without_an_id_is_unreadable(body):
    with pytest.raises((ValueError, KeyError, TypeError)):  # the core treats these as an ambiguous create
        A.parse_submit(reply(200, body), REF)


def test_parse_poll_reads_every_status_and_keeps_polling_unknown_ones():
    running = A.parse_poll(reply(200, {"id": "u", "status": "RUNNING", "progress": 0.35, "extra": 1}), REF)
    assert (running.state, running.progress, running.known) == (S.RUNNING, 35, True)
    throttled = A.parse_poll(reply(200, {"id": "u", "status": "THROTTLED"}), REF)
    assert (throttled.state, throttled.upstream_state) == (S.RUNNING, "THROTTLED")
    odd = A.parse_poll(reply(200, {"id": "u", "status": "WARMING_UP"}), REF)
    assert (odd.state, odd.known) == (S.RUNNING, False)
    empty = A.parse_poll(reply(200, {"id": "u", "status": "SUCCEEDED", "output": []}), REF)
    assert (empty.state, empty.known) == (S.RUNNING, False)  # success without a result: keep polling
    done = A.parse_poll(reply(200, {"id": "u", "status": "SUCCEEDED", "output": ["https://cdn/a.mp4"]}), REF)
    assert done.state is S.SUCCEEDED and done.outputs[0].urls == {"url": "https://cdn/a.mp4"}
    assert done.outputs[0].kind == "video"
    failed = A.parse_poll(reply(200, {"id": "u", "status": "FAILED", "failure": "Prompt flagged",
                                      "failureCode": "SAFETY.INPUT.TEXT"}), REF)
    assert (failed.state, failed.error_code, failed.error_message) == (S.FAILED, "SAFETY.INPUT.TEXT", "Prompt flagged")
    assert A.parse_poll(reply(200, {"id": "u", "status": "CANCELLED"}), REF).state is S.CANCELLED


OUT = OutputView(public_id="o", kind="video", urls={"url": "https://gg.example/m/a.mp4?sig=1"}, meta={"index": 0})


@pytest.mark.parametrize(("task", "cls"), [
    (view(S.QUEUED), Throttled),
    (view(S.SUBMITTING), Pending),
    (view(S.AMBIGUOUS), Pending),
    (view(S.RUNNING, upstream_state="PENDING"), Pending),
    (view(S.RUNNING, upstream_state="THROTTLED"), Throttled),
    (view(S.RUNNING, upstream_state="RUNNING", progress=40), Running),
    (view(S.RUNNING, upstream_state="WARMING_UP"), Running),
    (view(S.REHOSTING, upstream_state="SUCCEEDED", progress=100), Running),
    (view(S.SUCCEEDED, outputs=(OUT,), settled=250_000), Succeeded),
    (view(S.FAILED, error_code="SAFETY.INPUT.TEXT", error_message="Prompt flagged"), Failed),
    (view(S.FAILED, error_code="DeadlineExceeded", error_message="too late"), Failed),
    (view(S.CANCELLED), Cancelled),
])
def test_every_rendered_task_is_the_right_class_of_the_sdks_union(task, cls):
    body = A.render(task)
    assert body["createdAt"] == "2025-06-15T15:06:40.123Z"
    parsed = validate_type(type_=TaskRetrieveResponse, value=body)  # strict: every required field is there
    assert type(parsed) is cls, (body, parsed)
    assert type(construct_type(type_=TaskRetrieveResponse, value=body)) is cls  # what the SDK does
    if "cost" in body:
        assert isinstance(body["cost"]["credits"], int)
    if cls is Running:
        assert 0 <= body["progress"] < 1


def test_costs_are_runway_credits():
    assert A.render(view(S.RUNNING, upstream_state="PENDING"))["estimatedCost"] == {"credits": 25}
    assert A.render(view(S.SUCCEEDED, outputs=(OUT,), settled=250_000))["cost"] == {"credits": 25}
    assert A.render(view(S.FAILED))["cost"] == {"credits": 0}
    assert failure_code("SAFETY.INPUT.TEXT") == "SAFETY.INPUT.TEXT"
    assert failure_code("DeadlineExceeded") == "INTERNAL.DEADLINE_EXCEEDED"
    assert failure_code(None) == "INTERNAL"


async def test_prepare_prices_and_settles():
    video = await A.prepare_action("image_to_video", {"model": "gen4_turbo", "promptImage": png_data_uri(),
                                                      "ratio": "1280:720"}, NoStash())
    assert video.model == "gen4_turbo" and A.price(video.units, TABLE) == 500_000  # Runway's default 10 s
    assert A.price(video.units, TABLE) <= 1_000_000
    five = await A.prepare({"model": "gen4_turbo", "promptImage": png_data_uri(), "ratio": "1280:720",
                            "duration": 5}, NoStash())
    assert five.action == "image_to_video" and A.price(five.units, TABLE) == 250_000
    whole = await A.prepare({"model": "gen4_turbo", "promptImage": png_data_uri(), "ratio": "1280:720",
                             "duration": 5.0, "seed": 7.0}, NoStash())
    assert A.price(whole.units, TABLE) == 250_000  # 5.0 is 5 in JSON
    image = await A.prepare({"model": "gen4_image", "promptText": "a fox", "ratio": "720:720"}, NoStash())
    assert image.action == "text_to_image" and A.price(image.units, TABLE) == 50_000
    big = await A.prepare({"model": "gen4_image", "promptText": "a fox", "ratio": "2112:912"}, NoStash())
    assert A.price(big.units, TABLE) == 80_000
    spec = OutputSpec(kind="image", upstream_id=None, urls={"url": "u"}, meta={})
    assert A.final_price(big.units, (spec,), TABLE) == 80_000
    assert A.final_price(big.units, (), TABLE) == 0
    with pytest.raises(ValidationFailed) as err:
        await A.prepare_action("text_to_image", {"model": "gen4_turbo", "promptText": "a fox",
                                                 "ratio": "1920:1080"}, NoStash())
    assert err.value.issues[0]["path"] == ["model"]


async def test_a_large_data_uri_is_stashed_out_of_the_stored_request():
    big = noisy_png_data_uri(200)
    assert len(big) > 64 * 1024
    prepared = await A.prepare({"model": "gen4_turbo", "promptImage": [{"uri": big, "position": "first"}],
                                "ratio": "960:960", "duration": 5}, NoStash())
    assert prepared.request["promptImage"][0]["uri"].startswith("gengate-inline:")
    assert prepared.upstream_request["promptImage"][0]["uri"].startswith("gengate-inline:")


def test_extra_upstream_fields_pass_through_but_never_urls_or_ids():
    reply = {"id": "u-9", "status": "RUNNING", "progress": 0.5, "queuePosition": 3, "model": "gen4_turbo",
             "previewUrl": "https://cdn.runway.example/u-9.jpg", "parent": {"task": "u-9"}}
    body = A.render(view(S.RUNNING, upstream_state="RUNNING", progress=50, upstream_reply=reply))
    assert body["queuePosition"] == 3 and body["model"] == "gen4_turbo"
    assert "previewUrl" not in body and "parent" not in body
    assert body["id"] == "0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13" and body["progress"] == 0.5
    assert type(validate_type(type_=TaskRetrieveResponse, value=body)) is Running


async def _units(action: str, body: dict[str, Any]) -> dict[str, float]:
    return dict((await A.prepare_action(action, body, NoStash())).units)


async def test_text_to_video_prices_per_second_with_veo_audio_rates():
    gen45 = await _units("text_to_video", {"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 7})
    assert A.price(gen45, TABLE) == 7 * 12 * 10_000
    veo = {"model": "veo3.1", "promptText": "x", "ratio": "1080:1920"}
    assert A.price(await _units("text_to_video", veo), TABLE) == 8 * 40 * 10_000  # sound and 8 s by default
    assert A.price(await _units("text_to_video", {**veo, "audio": False, "duration": 4}), TABLE) == 4 * 20 * 10_000
    fast = await _units("text_to_video", {**veo, "model": "veo3.1_fast", "duration": 6})
    assert A.price(fast, TABLE) == 6 * 15 * 10_000
    # An operator's price for the model without sound does not leak into the rate with sound.
    custom = PriceTable([PRICES], {"runway:video_second:veo3.1_fast": 1})
    assert A.price(fast, custom) == 6 * 15 * 10_000
    assert A.price({**fast, "audio": 0.0}, custom) == 6


async def test_upscales_price_per_image_and_per_reported_second():
    image = await _units("image_upscale", {"model": "magnific_precision_upscaler_v2", "imageUri": png_data_uri(),
                                           "scaleFactor": 16})
    out = (OutputSpec("image", None, {"url": "https://x.example/a.png"}, {"index": 0}),)
    assert A.price(image, TABLE) == A.final_price(image, out, TABLE) == 10 * 10_000
    video = await _units("video_upscale", {"model": "magnific_video_upscaler_creative",
                                           "videoUri": "https://x.example/v.mp4"})
    assert A.price(video, TABLE) == 40 * 10 * 10_000

    def done(credits: Any) -> tuple[OutputSpec, ...]:
        meta = {"index": 0} if credits is None else {"index": 0, "credits": credits}
        return (OutputSpec("video", None, {"url": "https://x.example/v.mp4"}, meta),)

    assert A.final_price(video, done(70), TABLE) == 7 * 10 * 10_000
    assert A.final_price(video, done(71), TABLE) == 8 * 10 * 10_000  # a started second counts
    assert A.final_price(video, done(10_000), TABLE) == 40 * 10 * 10_000  # never above the reservation
    assert A.final_price(video, done(None), TABLE) == 40 * 10 * 10_000
    assert A.final_price(video, done(True), TABLE) == 40 * 10 * 10_000


async def test_video_to_video_reserves_five_seconds_and_settles_on_the_reported_cost():
    units = await _units("video_to_video", {"model": "gen4_aleph", "videoUri": "https://x.example/v.mp4",
                                            "promptText": "snow", "ratio": "1280:720"})
    assert A.price(units, TABLE) == 5 * 15 * 10_000
    out = (OutputSpec("video", None, {"url": "https://x.example/v.mp4"}, {"index": 0, "credits": 30}),)
    assert A.final_price(units, out, TABLE) == 2 * 15 * 10_000


async def test_audio_prices_per_50_characters_or_per_slice_of_seconds():
    voice = {"type": "runway-preset", "presetId": "Maya"}
    speech = await _units("text_to_speech", {"model": "eleven_v3", "promptText": "x" * 101, "voice": voice})
    assert A.price(speech, TABLE) == 3 * 10_000
    sfx = await _units("sound_effect", {"model": "mirelo_sfx_2_0", "promptText": "x", "duration": 7,
                                        "numVariants": 3})
    assert A.price(sfx, TABLE) == 2 * 3 * 10_000
    isolation = await _units("voice_isolation", {"model": "eleven_voice_isolation",
                                                 "audioUri": "https://x.example/a.mp3"})
    assert A.price(isolation, TABLE) == 34 * 10_000  # 200 s in slices of 6 s

    def done(credits: int) -> tuple[OutputSpec, ...]:
        return (OutputSpec("audio", None, {"url": "https://x.example/a.mp3"}, {"index": 0, "credits": credits}),)

    assert A.final_price(isolation, done(3), TABLE) == 3 * 10_000
    assert A.final_price(isolation, done(500), TABLE) == 34 * 10_000  # never above the reservation
    custom = PriceTable([PRICES], {"runway:audio_unit:eleven_voice_isolation": 1})
    assert A.price(isolation, custom) == 34
    act = await _units("character_performance", {
        "model": "act_two", "character": {"type": "image", "uri": "https://x.example/a.png"},
        "reference": {"type": "video", "uri": "https://x.example/v.mp4"}})
    assert A.price(act, TABLE) == 20 * 5 * 10_000
    ref = TaskRef(upstream_id=REF.upstream_id, action="text_to_speech", model="eleven_v3", upstream_request={},
                  marker="m")
    body = {"id": REF.upstream_id, "status": "SUCCEEDED", "createdAt": "2025-06-03T14:00:00.000Z",
            "output": ["https://cdn.example/a.mp3"], "cost": {"credits": 1}}
    assert A.parse_poll(reply(200, body), ref).outputs[0].kind == "audio"


def test_a_succeeded_poll_keeps_runways_cost_for_the_settlement():
    ref = TaskRef(upstream_id=REF.upstream_id, action="video_upscale", model="enhance_frame_rate",
                  upstream_request={}, marker="m")
    body = {"id": REF.upstream_id, "status": "SUCCEEDED", "createdAt": "2025-06-03T14:00:00.000Z",
            "output": ["https://cdn.example/r.mp4"], "cost": {"credits": 14}}
    progress = A.parse_poll(reply(200, body), ref)
    assert progress.outputs[0].kind == "video" and progress.outputs[0].meta["credits"] == 14
    ref_img = TaskRef(upstream_id=REF.upstream_id, action="image_upscale", model="magnific_precision_upscaler_v2",
                      upstream_request={}, marker="m")
    assert A.parse_poll(reply(200, body), ref_img).outputs[0].kind == "image"


@pytest.mark.parametrize(("body", "action"), [
    ({"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5}, "text_to_video"),
    ({"model": "gen4_image", "promptText": "x", "ratio": "1280:720"}, "text_to_image"),
    ({"model": "magnific_precision_upscaler_v2", "imageUri": "https://x.example/a.png"}, "image_upscale"),
    ({"model": "enhance_frame_rate", "videoUri": "https://x.example/a.mp4", "targetFramerate": "30"},
     "video_upscale"),
    ({"model": "gen4_turbo", "promptImage": "https://x.example/a.png", "ratio": "960:960"}, "image_to_video"),
    ({"model": "gen4_aleph", "videoUri": "https://x.example/a.mp4", "promptText": "x", "ratio": "960:960"},
     "video_to_video"),
])
async def test_prepare_without_a_path_takes_the_action_from_the_model(body, action):
    assert (await A.prepare(body, NoStash())).action == action
