"""The Luma adaptor on its own, with recorded upstream replies (no server): prices, how create and poll
replies are read, reconciliation matching, and the Generation object it renders."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gengate.core.adaptor import Account, HttpReply, Outcome, OutputView, TaskRef, TaskView
from gengate.core.errors import InvalidRequest, ReferenceNotFound
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.luma.adaptor import PRICES, LumaAdaptor, fingerprint

S = TaskState
ADAPTOR = LumaAdaptor()
TABLE = PriceTable([PRICES])
ACCOUNT = Account("http://up/dream-machine/v1", "luma-secret")


def reply(status: int, body: Any) -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status, raw, {"Content-Type": "application/json"})


def ref(action: str = "video", request: dict[str, Any] | None = None) -> TaskRef:
    return TaskRef(upstream_id="up-1", action=action, model="ray-2",
                   upstream_request=request or {"model": "ray-2", "prompt": "a"}, marker="m")


class NoRefs:
    async def task(self, public_id: str, provider: str | None = None) -> None:
        return None

    async def output(self, public_id: str) -> None:
        return None

    async def stash(self, value: str) -> str:
        return value


def test_prices_stay_within_the_contract():
    units = {"seconds": 9.0, "res:4k": 1.0, "model:ray-2": 1.0}
    assert ADAPTOR.price(units, TABLE) == 990_000  # the dearest shipped task, under 1,000,000
    assert ADAPTOR.price({"seconds": 5.0, "res:720p": 1.0, "model:ray-2": 1.0}, TABLE) == 200_000
    assert ADAPTOR.price({"seconds": 5.0, "res:540p": 1.0, "model:ray-flash-2": 1.0}, TABLE) == 35_000
    # A model the table does not name is priced as ray-2 / photon-1, never 0.
    assert ADAPTOR.price({"seconds": 5.0, "res:1080p": 1.0, "model:ray-3": 1.0}, TABLE) == 400_000
    assert ADAPTOR.price({"image": 1.0, "count": 1.0, "model:photon-9": 1.0}, TABLE) == 15_000
    assert ADAPTOR.price({"image": 1.0, "count": 1.0, "model:photon-flash-1": 1.0}, TABLE) == 4_000
    assert all(v >= 1 for v in PRICES.values())


async def test_prepare_maps_nothing_without_references_and_keeps_local_fields_local():
    body = {"model": "ray-2", "prompt": "a", "duration": "9s", "resolution": "1080p",
            "callback_url": "https://example.com/hook", "extra_field": 1}
    prepared = await LumaAdaptor("video").prepare(body, NoRefs())
    assert prepared.request == body
    assert "callback_url" not in prepared.upstream_request and prepared.upstream_request["extra_field"] == 1
    assert prepared.callback_url == "https://example.com/hook"
    assert ADAPTOR.price(prepared.units, TABLE) == 720_000
    legacy = await LumaAdaptor("generations").prepare({"prompt": "a"}, NoRefs())
    assert legacy.model == "ray-2" and legacy.request == {"prompt": "a"}
    assert legacy.upstream_request == {"prompt": "a", "model": "ray-2"}
    image = await LumaAdaptor("image").prepare({"model": "photon-1", "prompt": "a", "sync": True}, NoRefs())
    assert image.action == "image" and "sync" not in image.upstream_request
    # The registered adaptor (for other views) tells the kinds apart by the body.
    auto_image = await ADAPTOR.prepare({"model": "photon-1", "prompt": "a"}, NoRefs())
    auto_video = await ADAPTOR.prepare({"prompt": "a"}, NoRefs())
    assert (auto_image.action, auto_video.action, auto_video.model) == ("image", "video", "ray-2")
    with pytest.raises(ReferenceNotFound):
        await LumaAdaptor("video").prepare(
            {"model": "ray-2", "keyframes": {"frame0": {"type": "generation", "id": "x"}}}, NoRefs())
    with pytest.raises(InvalidRequest) as err:
        await LumaAdaptor("video").prepare({"prompt": "a"}, NoRefs())
    assert vars(err.value)["status"] == 422


def test_parse_submit_outcomes():
    ok = ADAPTOR.parse_submit(reply(201, {"id": "g1", "state": "queued"}), ref())
    assert (ok.outcome, ok.upstream_id, ok.upstream_state) == (Outcome.ACCEPTED, "g1", "queued")
    assert ADAPTOR.parse_submit(reply(201, {"state": "queued"}), ref()).outcome is Outcome.AMBIGUOUS
    assert ADAPTOR.parse_submit(reply(402, {"detail": "Insufficient credits"}), ref()).outcome is Outcome.NO_CREDIT
    assert ADAPTOR.parse_submit(reply(401, {"detail": "Invalid API key"}), ref()).outcome is Outcome.AUTH
    for status in (429, 500, 503):
        assert ADAPTOR.parse_submit(reply(status, {"detail": "busy"}), ref()).outcome is Outcome.RETRY
    refused = ADAPTOR.parse_submit(reply(422, {"detail": [{"msg": "bad aspect_ratio"}]}), ref())
    assert refused.outcome is Outcome.REFUSED and refused.error_message == "bad aspect_ratio"
    assert ADAPTOR.build_submit(ACCOUNT, ref("image")).path == "/generations/image"
    call = ADAPTOR.build_submit(ACCOUNT, ref())
    assert call.path == "/generations/video" and call.headers["Authorization"] == "Bearer luma-secret"


def test_parse_poll_states():
    for state in ("queued", "dreaming"):
        p = ADAPTOR.parse_poll(reply(200, {"id": "g1", "state": state}), ref())
        assert p.state is S.RUNNING and p.known
    odd = ADAPTOR.parse_poll(reply(200, {"id": "g1", "state": "pondering"}), ref())
    assert odd.state is S.RUNNING and not odd.known  # unknown: keep polling
    empty = ADAPTOR.parse_poll(reply(200, {"id": "g1", "state": "completed", "assets": None}), ref())
    assert empty.state is S.RUNNING and not empty.known  # completed without its asset: keep polling
    done = ADAPTOR.parse_poll(reply(200, {"state": "completed", "assets": {"video": "https://cdn/v.mp4",
                                                                           "image": "https://cdn/t.jpg",
                                                                           "progress_video": None}}), ref())
    assert done.state is S.SUCCEEDED
    assert dict(done.outputs[0].urls) == {"video": "https://cdn/v.mp4", "image": "https://cdn/t.jpg"}
    image = ADAPTOR.parse_poll(reply(200, {"state": "completed", "assets": {"image": "https://cdn/i.jpg"}}),
                               ref("image"))
    assert image.outputs[0].kind == "image" and dict(image.outputs[0].urls) == {"image": "https://cdn/i.jpg"}
    failed = ADAPTOR.parse_poll(reply(200, {"state": "failed", "failure_reason": "moderation"}), ref())
    assert failed.state is S.FAILED and failed.error_message == "moderation"


def test_parse_find_matches_the_echoed_request_oldest_first():
    sent = {"model": "ray-2", "prompt": "a", "aspect_ratio": "16:9"}
    now = time.time()
    iso_now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now))
    iso_old = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - 3600))
    page = {"generations": [
        {"id": "new", "generation_type": "video", "created_at": iso_now, "request": dict(sent)},
        {"id": "other", "generation_type": "video", "created_at": iso_now, "request": {**sent, "prompt": "b"}},
        {"id": "mid", "generation_type": "video", "created_at": iso_now, "request": dict(reversed(sent.items()))},
        {"id": "old", "generation_type": "video", "created_at": iso_old, "request": dict(sent)},
    ], "has_more": True}
    found = ADAPTOR.parse_find(reply(200, page), ref(request=sent), now - 60)
    assert found.upstream_ids == ["mid", "new"] and found.more is False  # an older item ends the search
    assert fingerprint({**sent, "callback_url": "x"}) == fingerprint(sent)
    call = ADAPTOR.build_find(ACCOUNT, ref(), 2)
    assert call.path == "/generations" and call.query == {"limit": "50", "offset": "50"}


def view(state: TaskState, **kw: Any) -> TaskView:
    base: dict[str, Any] = {
        "public_id": "4f6a2d0e-8b3c-4c1e-9d57-1a2b3c4d5e6f", "provider": "luma", "action": "video",
        "model": "ray-2", "state": state, "upstream_state": None, "progress": None,
        "request": {"model": "ray-2", "prompt": "a"}, "upstream_reply": None, "outputs": (), "error_code": None,
        "error_message": None, "created_at": 1_744_453_293.518204, "updated_at": 1_744_453_300.0,
        "reserved": 200_000, "settled": None}
    base.update(kw)
    return TaskView(**base)


def test_render_generation_objects():
    queued = ADAPTOR.render(view(S.QUEUED))
    assert queued == {"id": "4f6a2d0e-8b3c-4c1e-9d57-1a2b3c4d5e6f", "generation_type": "video",
                      "state": "queued", "failure_reason": None, "created_at": "2025-04-12T10:21:33.518204Z",
                      "model": "ray-2", "assets": None, "request": {"model": "ray-2", "prompt": "a"}}
    assert ADAPTOR.render(view(S.RUNNING, upstream_state="queued"))["state"] == "queued"
    assert ADAPTOR.render(view(S.RUNNING, upstream_state="pondering"))["state"] == "dreaming"
    assert ADAPTOR.render(view(S.REHOSTING))["state"] == "dreaming"
    out = OutputView("o1", "video", {"video": "http://gw/v.mp4", "image": "http://gw/t.jpg"}, {})
    done = ADAPTOR.render(view(S.SUCCEEDED, outputs=(out,)))
    assert done["state"] == "completed"
    assert done["assets"] == {"video": "http://gw/v.mp4", "image": "http://gw/t.jpg", "progress_video": None}
    failed = ADAPTOR.render(view(S.FAILED, error_message="moderation"))
    assert (failed["state"], failed["failure_reason"], failed["assets"]) == ("failed", "moderation", None)
    cancelled = ADAPTOR.render(view(S.CANCELLED))
    assert (cancelled["state"], cancelled["failure_reason"]) == ("failed", "The generation was cancelled")
    image = OutputView("o2", "image", {"image": "http://gw/i.jpg"}, {})
    assert ADAPTOR.render(view(S.SUCCEEDED, action="image", outputs=(image,)))["assets"] == {
        "image": "http://gw/i.jpg"}
