"""The Vidu platform adaptor on recorded replies, no server: what each upstream answer means, prices,
validation and pass-through, and how a listed job is matched to an ambiguous create."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gengate.core.adaptor import INLINE_PREFIX, Account, HttpReply, Outcome, OutputSpec, TaskRef
from gengate.core.errors import InvalidRequest
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.vidu_ent.adaptor import PRICES, ViduEntAdaptor, echoes

A = ViduEntAdaptor()
ACCOUNT = Account("http://up", "vda_secret")
REF = TaskRef(upstream_id="918530044712009728", action="text2video", model="viduq1",
              upstream_request={"model": "viduq1", "prompt": "p"}, marker="m", units={"seconds": 5.0})


def reply(status: int, body: Any) -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status, raw, {})


def err(status: int, reason: str, message: str = "m") -> HttpReply:
    return reply(status, {"code": status, "reason": reason, "message": message, "metadata": {"trace_id": "t"}})


class NoRefs:
    async def output(self, public_id: str) -> None:
        return None

    async def stash(self, value: str) -> str:
        return INLINE_PREFIX + "inline/abc"


def test_calls_use_the_platform_paths_and_token_auth():
    call = A.build_submit(ACCOUNT, REF)
    assert (call.method, call.path, call.json_body) == ("POST", "/ent/v2/text2video", REF.upstream_request)
    assert call.headers == {"Authorization": "Token vda_secret"}
    assert A.build_poll(ACCOUNT, REF).path == "/ent/v2/tasks/918530044712009728/creations"
    cancel = A.build_cancel(ACCOUNT, REF)
    assert (cancel.method, cancel.path, cancel.json_body) == ("POST", "/ent/v2/tasks/918530044712009728/cancel",
                                                              {"id": "918530044712009728"})


@pytest.mark.parametrize(("answer", "outcome"), [
    (reply(200, {"task_id": "1", "state": "created", "new_field": 1}), Outcome.ACCEPTED),
    (err(400, "FieldInvalid"), Outcome.REFUSED),
    (err(400, "CreditInsufficient", "insufficient credits"), Outcome.NO_CREDIT),
    (reply(402, {"code": "CreditInsufficient", "message": "no credit"}), Outcome.NO_CREDIT),
    (err(401, "Unauthorized"), Outcome.AUTH),
    (err(403, "Forbidden"), Outcome.AUTH),
    (err(429, "QuotaExceeded"), Outcome.RETRY),
    (err(500, "InternalServiceFailure"), Outcome.RETRY),
])
def test_create_replies(answer: HttpReply, outcome: Outcome):
    sub = A.parse_submit(answer, REF)
    assert sub.outcome is outcome
    if outcome is Outcome.ACCEPTED:
        assert sub.upstream_id == "1" and sub.upstream_state == "created"
    if outcome is Outcome.REFUSED:
        assert sub.error_code == "FieldInvalid"


def test_poll_states():
    running = A.parse_poll(reply(200, {"id": "1", "state": "processing"}), REF)
    assert running.state is TaskState.RUNNING and running.known and running.progress == 50
    odd = A.parse_poll(reply(200, {"state": "scheduling_v9", "creations": []}), REF)
    assert odd.state is TaskState.RUNNING and not odd.known
    empty = A.parse_poll(reply(200, {"state": "success", "creations": []}), REF)
    assert empty.state is TaskState.RUNNING and not empty.known  # a success without a result: keep polling
    done = A.parse_poll(reply(200, {"state": "success", "creations": [
        {"id": "c1", "url": "http://cdn/v.mp4", "cover_url": "http://cdn/c.jpg", "extra": True}]}), REF)
    assert done.state is TaskState.SUCCEEDED
    [out] = done.outputs
    assert out.upstream_id == "c1" and out.urls == {"url": "http://cdn/v.mp4", "cover_url": "http://cdn/c.jpg"}
    assert out.meta["extra"] is True and out.meta["model"] == "viduq1" and out.meta["duration"] == 5.0
    failed = A.parse_poll(reply(200, {"state": "failed", "err_code": "CreationPolicyViolation"}), REF)
    assert failed.state is TaskState.FAILED and failed.error_code == "CreationPolicyViolation"
    cancelled = A.parse_poll(reply(200, {"state": "failed", "err_code": "UserCancelled"}), REF)
    assert cancelled.state is TaskState.CANCELLED


def test_prices():
    prices = PriceTable([PRICES])
    assert A.price({"seconds": 5.0, "res:1080p": 1.0}, prices) == 75_000
    assert A.price({"seconds": 4.2, "res:720p": 1.0}, prices) == 50_000  # a started second is billed
    assert A.price({"seconds": 5.0, "upscale": 1.0, "res:2K": 1.0}, prices) == 50_000
    assert A.price({"seconds": 0.0, "res:360p": 1.0}, prices) == 5_000  # never below one second
    free = PriceTable([PRICES], {"vidu-ent:video_second:1080p": 0})
    assert A.price({"seconds": 5.0, "res:1080p": 1.0}, free) == 1
    out = OutputSpec("video", "c", {"url": "u"}, {"duration": 4.0})
    assert A.final_price({"seconds": 5.0, "res:1080p": 1.0}, (out,), prices) == 60_000
    assert A.final_price({"seconds": 5.0, "res:1080p": 1.0}, (), prices) == 0


async def test_prepare_passes_unknown_fields_and_keeps_the_callback():
    body = {"model": "viduq2", "prompt": "p", "duration": 8, "resolution": "720p", "voice_id": "v1",
            "callback_url": "https://example.com/hook", "aspect_ratio": "4:3"}
    p = await A.prepare_action("text2video", body, NoRefs())
    assert p.action == "text2video" and p.model == "viduq2" and p.callback_url == "https://example.com/hook"
    assert "callback_url" not in p.request and "callback_url" not in p.upstream_request
    assert p.upstream_request["voice_id"] == "v1"
    assert p.units == {"seconds": 8.0, "res:720p": 1.0}


async def test_large_images_are_stashed():
    big = "data:image/png;base64," + "A" * 70_000
    p = await A.prepare_action("img2video", {"model": "viduq1", "images": [big]}, NoRefs())
    assert p.request["images"] == [INLINE_PREFIX + "inline/abc"] == p.upstream_request["images"]


@pytest.mark.parametrize(("action", "body", "code"), [
    ("text2video", {"model": "viduq2", "prompt": "p", "duration": 11}, "FieldInvalid"),
    ("text2video", {"model": "vidu2.0", "prompt": "p", "aspect_ratio": "4:3"}, "FieldInvalid"),
    ("text2video", {"model": "viduq1", "prompt": "p", "seed": -1}, "FieldInvalid"),
    ("text2video", {"model": "viduq1", "prompt": "p", "wm_position": 5}, "FieldInvalid"),
    ("text2video", {"model": "viduq1", "prompt": "p", "off_peak": "yes"}, "FieldInvalid"),
    ("upscale", {"model": "vidu2.0", "creation_id": "1"}, "FieldInvalid"),
    ("upscale-new", {"video_url": "ftp://x"}, "FieldInvalid"),
])
async def test_prepare_refuses(action: str, body: dict[str, Any], code: str):
    with pytest.raises(InvalidRequest) as info:
        await A.prepare_action(action, body, NoRefs())
    assert info.value.code == code and info.value.status == 400


def test_a_listed_job_matches_what_the_request_sent():
    request = {"model": "viduq1", "prompt": "p", "images": ["https://x/a.png"]}
    listed = {"task_id": "9", "model": "viduq1", "prompt": "p", "images": ["https://x/a.png"], "duration": 5,
              "resolution": "1080p", "created_at": "2026-01-01T00:00:00.000000Z"}
    assert echoes(request, listed)
    assert not echoes(request, {**listed, "prompt": "other"})
    assert not echoes(request, {**listed, "images": []})
    found = A.parse_find(reply(200, {"tasks": [listed, {**listed, "task_id": "8"}], "next_page_token": ""}), REF, 0)
    assert found.upstream_ids == ["8", "9"] and not found.more
