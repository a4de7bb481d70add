"""The Vidu web adaptor on recorded replies (no server): submit outcomes, states, reconcile matching,
prices, rendering."""

from __future__ import annotations

import json
import time

import pytest

from gengate.core.adaptor import Account, HttpReply, Outcome, OutputSpec, OutputView, TaskRef, TaskView
from gengate.core.engine.submit import _parse_submit
from gengate.core.errors import InvalidRequest
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.vidu.adaptor import PRICES, ViduWebAdaptor, generation_of, parse_version

A = ViduWebAdaptor()
ACCOUNT = Account(base_url="http://up", secret="tok")


def ref(upstream_request: dict[str, object] | None = None, upstream_id: str | None = "1") -> TaskRef:
    return TaskRef(upstream_id=upstream_id, action="text2video", model="vidu-1",
                   upstream_request=upstream_request or {}, marker="m")


def reply(status: int, body: object, headers: dict[str, str] | None = None) -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status=status, body=raw, headers=headers or {})


def envelope(status: int, reason: str, message: str = "") -> dict[str, object]:
    return {"code": status, "reason": reason, "message": message, "metadata": {"trace_id": "abc"}}


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (200, {"id": "2381774400112233", "state": "created"}, Outcome.ACCEPTED),
    (400, envelope(400, "FieldInvalid", "bad"), Outcome.REFUSED),
    (404, envelope(404, "CreationNotFound"), Outcome.REFUSED),
    (401, envelope(401, "Unauthorized"), Outcome.AUTH),
    (403, {"message": "insufficient credits"}, Outcome.NO_CREDIT),
    (400, envelope(400, "CreditInsufficient", "insufficient credits"), Outcome.NO_CREDIT),
    (429, envelope(429, "QuotaExceeded"), Outcome.RETRY),
    (500, envelope(500, "InternalServiceFailure"), Outcome.RETRY),
    (502, b"<html>bad gateway</html>", Outcome.RETRY),
    (200, b"{not json", Outcome.AMBIGUOUS),
])
def test_submit_outcomes(status: int, body: object, outcome: Outcome) -> None:
    sub = _parse_submit(A, reply(status, body, {"Retry-After": "7"} if status == 429 else None), ref())
    assert sub.outcome is outcome
    if status == 429:
        assert sub.retry_after == 7.0
    if outcome is Outcome.ACCEPTED:
        assert sub.upstream_id == "2381774400112233"


def test_poll_states() -> None:
    for raw, state in [("created", TaskState.RUNNING), ("scheduling", TaskState.RUNNING),
                       ("failed", TaskState.FAILED), ("canceled", TaskState.CANCELLED)]:
        p = A.parse_poll(reply(200, {"id": "1", "state": raw, "err_code": "X" if raw == "failed" else ""}), ref())
        assert p.state is state and p.known
    unknown = A.parse_poll(reply(200, {"id": "1", "state": "mystery_state"}), ref())
    assert unknown.state is TaskState.RUNNING and not unknown.known
    empty = A.parse_poll(reply(200, {"id": "1", "state": "success", "creations": []}), ref())
    assert empty.state is TaskState.RUNNING  # success without a result keeps polling
    done = A.parse_poll(reply(200, {"id": "1", "state": "success", "creations": [
        {"id": "9", "type": "video", "uri": "http://cdn/a.mp4", "nomark_uri": "http://cdn/b.mp4",
         "cover_uri": "http://cdn/c.jpg", "video": {"duration": 4, "fps": 8}}]}), ref())
    assert done.state is TaskState.SUCCEEDED
    assert list(done.outputs[0].urls) == ["nomark_uri", "uri", "cover_uri"]
    assert done.outputs[0].upstream_id == "9"


def test_reconcile_matches_the_echoed_task_only() -> None:
    sent = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a boat"}]},
            "settings": {"duration": 4, "x-unknown": 1}}
    now = time.time()
    echoed = {"id": "111", "type": "text2video", "created_at": "2099-01-01T00:00:00.000000Z",
              "input": {"creation_id": "0", "lang": "en", "prompts": [
                  {"type": "text", "content": "a boat", "negative": False, "enhance": False, "recaption": ""}]},
              "settings": {"duration": 4, "x-unknown": 1}}
    other = dict(echoed, id="222", settings={"duration": 8, "x-unknown": 1})
    found = A.parse_find(reply(200, {"tasks": [other, echoed]}), ref(sent), now - 60)
    assert found.upstream_ids == ["111"] and found.more
    old = dict(echoed, created_at="2001-01-01T00:00:00.000000Z")
    found = A.parse_find(reply(200, {"tasks": [old]}), ref(sent), now - 60)
    assert found.upstream_ids == [] and not found.more


async def test_prices() -> None:
    prices = PriceTable([PRICES])

    class NoRefs:
        async def output(self, public_id: str) -> None:
            return None

    p = await A.prepare({"type": "text2video", "input": {"prompts": [{"type": "text", "content": "x"}]},
                         "settings": {"duration": 8, "resolution": "1080p", "sample_count": 2}}, NoRefs())
    assert A.price(p.units, prices) == 8 * 15_000 * 2
    img = await A.prepare({"type": "text2image", "input": {"prompts": [{"type": "text", "content": "x"}]},
                           "settings": {"resolution": "4K"}}, NoRefs())
    assert A.price(img.units, prices) == 40_000
    most = await A.prepare({"type": "text2video", "input": {"prompts": [{"type": "text", "content": "x"}]},
                            "settings": {"duration": 16, "resolution": "1080p", "sample_count": 4,
                                         "model_version": "3.2"}}, NoRefs())
    assert A.price(most.units, prices) <= 1_000_000  # the contract's ceiling for one request


def test_render_rewrites_ids_and_urls_only() -> None:
    view = TaskView(public_id="5000000000000001", provider="vidu", action="text2video", model="vidu-1",
                    state=TaskState.SUCCEEDED, upstream_state="success", progress=100,
                    request={"type": "text2video", "input": {"prompts": [{"type": "text", "content": "x"}]},
                             "settings": {"duration": 4, "weird": [1, 2]}},
                    upstream_reply={"input": {"lang": "en"}},
                    outputs=(OutputView(public_id="6000000000000001", kind="video",
                                        urls={"nomark_uri": "http://gw/files/a", "uri": "http://gw/files/b"},
                                        meta={"grade": "draft", "video": {"duration": 4}}),),
                    error_code=None, error_message=None, created_at=1.0, updated_at=2.0, reserved=10, settled=10)
    out = A.render(view)
    assert out["settings"] == {"duration": 4, "weird": [1, 2]}
    assert out["state"] == "success" and out["err_code"] == ""
    c = out["creations"][0]
    assert c["id"] == "6000000000000001" and c["task_id"] == "5000000000000001"
    assert c["uri"] == "http://gw/files/b" and c["nomark_uri"] == "http://gw/files/a"
    assert out["input"]["creation_id"] == "0" and out["created_at"].endswith("Z")


class NoRefs:
    async def output(self, public_id: str) -> None:
        return None


class ParentOf:
    """A resolver that owns one creation, produced with `seconds` of video."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def output(self, public_id: str) -> tuple[object, str, dict[str, object]]:
        return object(), "up-creation", {"video": {"duration": self.seconds}}


def t2v(**settings: object) -> dict[str, object]:
    return {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "x"}]}, "settings": settings}


@pytest.mark.parametrize(("settings", "param"), [
    ({"duration": 0.0001}, "settings.duration"),
    ({"duration": 0}, "settings.duration"),
    ({"duration": 4.5}, "settings.duration"),
    ({"duration": 5}, "settings.duration"),  # vidu-1 offers 4 or 8
    ({"duration": -4}, "settings.duration"),
    ({"duration": 17, "model_version": "3.2"}, "settings.duration"),  # Q3: 1-16
    ({"duration": 1, "model_version": "3.1"}, "settings.duration"),  # Q2: 2-8
    ({"duration": 9, "model_version": "3.1"}, "settings.duration"),
    ({"duration": 4, "model_version": "q1"}, "settings.duration"),  # Q1: 5 s only
    ({"duration": 8, "model": "viduq1"}, "settings.duration"),
    ({"duration": 4, "model_version": "2.0", "resolution": "2160p"}, "settings.resolution"),
    ({"duration": 5, "model_version": "q1", "resolution": "720p"}, "settings.resolution"),  # Q1: 1080p only
    ({"duration": 4, "model_version": "two"}, "settings.model_version"),
    ({"duration": 4, "model_version": True}, "settings.model_version"),
    ({"duration": 4, "sample_count": 0}, "settings.sample_count"),
    ({"duration": 4, "sample_count": 5}, "settings.sample_count"),
])
async def test_settings_vidu_does_not_offer_are_field_invalid(settings: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        await A.prepare(t2v(**settings), NoRefs())
    assert info.value.status == 400 and info.value.code == "FieldInvalid" and info.value.param == param


@pytest.mark.parametrize("settings", [
    {"duration": 4}, {"duration": 8.0}, {"duration": 4, "model_version": "1.5", "resolution": "512"},
    {"duration": 8, "model_version": "2.0", "resolution": "1080p"}, {"duration": 5, "model_version": "q1"},
    {"duration": 5, "model": "viduq1", "resolution": "1080p"}, {"duration": 2, "model_version": "3.1"},
    {"duration": 1, "model_version": "3.2"}, {"duration": 16, "model_version": "3.2", "resolution": "1080p"},
    {"duration": 16, "model": "some-mapped-model"}, {"model_version": "10", "duration": 12},
])
async def test_settings_vidu_offers_are_accepted(settings: dict[str, object]) -> None:
    prepared = await A.prepare(t2v(**settings), NoRefs())
    assert prepared.units["seconds"] == float(settings.get("duration", prepared.units["seconds"]))


async def test_images_take_duration_0_and_their_own_resolutions() -> None:
    img = {"type": "text2image", "input": {"prompts": [{"type": "text", "content": "x"}]}}
    for settings in ({}, {"duration": 0, "resolution": "2K"}, {"model_version": "3.1", "resolution": "4k"}):
        await A.prepare({**img, "settings": settings}, NoRefs())
    for settings in ({"duration": 4}, {"resolution": "720p"}):
        with pytest.raises(InvalidRequest, match="settings"):
            await A.prepare({**img, "settings": settings}, NoRefs())


def test_versions_compare_as_numbers() -> None:
    assert parse_version("2.0") == (2, 0) and parse_version("10") == (10,) and parse_version("1.5") == (1, 5)
    assert parse_version("q1") == (3, 0) and parse_version("Q3") == (3, 2) and parse_version("viduq2") == (3, 1)
    assert parse_version("vidu2.0") == (2, 0) and parse_version("") is None and parse_version("2.x") is None
    names = {"1.0": "1.0", "1.5": "1.5", "2.0": "2.0", "2": "2.0", "3.0": "q1", "q1": "q1", "3.1": "q2",
             "q2": "q2", "3.2": "q3", "10": "q3", "10.0": "q3"}
    for version, generation in names.items():
        assert generation_of({"model_version": version}).name == generation, version
    models = {"vidu-1": "1.0", "vidu-high-quality": "1.0", "vidu1.5": "1.5", "vidu2.0": "2.0",
              "viduq1": "q1", "viduq2-pro": "q2", "viduq3-turbo": "q3", "stable": "any"}
    for model, generation in models.items():
        assert generation_of({"model": model}).name == generation, model


async def test_version_10_is_not_priced_as_540p() -> None:
    prices = PriceTable([PRICES])
    ten = await A.prepare(t2v(model_version="10", duration=4), NoRefs())
    two = await A.prepare(t2v(model_version="2.0", duration=4), NoRefs())
    one = await A.prepare(t2v(model_version="1.0", duration=4), NoRefs())
    assert "res:720p" in ten.units and "res:720p" in two.units and "res:540p" in one.units
    assert A.price(ten.units, prices) == 4 * prices["vidu:video_second:720p"]
    assert A.price(one.units, prices) == 4 * prices["vidu:video_second:540p"]


async def test_prices_round_up_to_whole_seconds_and_are_never_0() -> None:
    prices = PriceTable([PRICES], {"vidu:video_second:720p": 1, "vidu:upscale_second": 3})
    default = await A.prepare(t2v(model_version="3.2"), NoRefs())  # no duration: Vidu's default clip, 5 s
    assert default.units["seconds"] == 5 and A.price(default.units, prices) == 5
    up = await A.prepare({"type": "upscale", "input": {"creation_id": "c1"}, "settings": {"model": "stable"}},
                         ParentOf(3.85))
    assert A.price(up.units, prices) == 4 * 3  # 3.85 s is billed as 4 whole seconds
    free = PriceTable([PRICES], {"vidu:video_second:720p": 0})
    assert A.price(default.units, free) == 1  # a task never costs 0 credits
    out = OutputSpec(kind="video", upstream_id="c", urls={}, meta={"video": {"duration": 0.3}})
    assert A.final_price(default.units, (out,), prices) == 1  # 0.3 s produced: one billable second
    longer = OutputSpec(kind="video", upstream_id="c", urls={}, meta={"video": {"duration": 4.2}})
    assert A.final_price(default.units, (longer,), prices) == 5
    assert A.final_price(default.units, (), prices) == 0  # nothing produced: nothing settled (refund)
