"""The Vidu web adaptor on recorded replies (no server): submit outcomes, states, reconcile matching,
prices, rendering."""

from __future__ import annotations

import json
import time

import pytest

from gengate.core.adaptor import Account, HttpReply, Outcome, OutputView, TaskRef, TaskView
from gengate.core.engine.submit import _parse_submit
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.vidu.adaptor import PRICES, ViduWebAdaptor

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
                            "settings": {"duration": 16, "resolution": "1080p", "sample_count": 4}}, NoRefs())
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
