"""The Suno adaptor on recorded proxy replies (no server): submit outcomes, batch-fetch parsing, the
TaskDto it renders, and what it keeps out of replies (upstream ids and URLs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gengate.core.adaptor import Account, HttpReply, Outcome, OutputView, TaskRef, TaskView
from gengate.core.errors import InvalidRequest, ReferenceNotFound
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.suno.adaptor import PRICES, SunoAdaptor

S = TaskState
A = SunoAdaptor()


def reply(status: int, body: Any) -> HttpReply:
    return HttpReply(status, json.dumps(body).encode() if not isinstance(body, bytes) else body, {})


def ref(upstream_id: str, action: str = "MUSIC") -> TaskRef:
    return TaskRef(upstream_id=upstream_id, action=action, model="chirp-v3-0", upstream_request={}, marker="m")


def clip(cid: str, status: str = "complete", **extra: Any) -> dict[str, Any]:
    return {"id": cid, "status": status, "title": "Moon", "audio_url": f"https://cdn.up/{cid}.mp3",
            "image_url": f"https://cdn.up/{cid}.jpg", "video_url": "", "user_id": "upstream-user",
            "metadata": {"duration": 9.5, "history": [{"id": "upstream-parent"}], "error_message": None}, **extra}


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (200, {"code": "success", "message": "", "data": "up-1"}, Outcome.ACCEPTED),
    (200, {"code": "fail", "message": "prompt rejected", "data": None}, Outcome.REFUSED),
    (400, {"code": "invalid_request", "message": "prompt_empty", "data": None}, Outcome.REFUSED),
    (403, {"code": "quota_not_enough", "message": "no credit", "data": None}, Outcome.NO_CREDIT),
    (401, {"code": "unauthorized", "message": "bad key", "data": None}, Outcome.AUTH),
    (429, {"code": "too_many_requests", "message": "slow down", "data": None}, Outcome.RETRY),
    (502, b"<html>bad gateway</html>", Outcome.RETRY),
])
def test_parse_submit(status, body, outcome):
    sub = A.parse_submit(reply(status, body), ref(""))
    assert sub.outcome is outcome
    if outcome is Outcome.ACCEPTED:
        assert sub.upstream_id == "up-1"


def test_batch_fetch_parses_every_task_and_fails_the_absent():
    rows = [
        {"task_id": "t1", "action": "MUSIC", "status": "SUCCESS", "progress": "100%",
         "data": [clip("c1"), clip("c2")]},
        {"task_id": "t2", "action": "MUSIC", "status": "IN_PROGRESS", "progress": "40%",
         "data": [clip("c3", "streaming")]},
        {"task_id": "t3", "action": "MUSIC", "status": "FAILURE", "fail_reason": "",
         "data": [clip("c4", "error", metadata={"error_message": "policy"})]},
        {"task_id": "t4", "action": "LYRICS", "status": "UNKNOWN", "data": None},
        {"task_id": "t5", "action": "LYRICS", "status": "SUCCESS",
         "data": {"id": "l1", "status": "complete", "title": "T", "text": "[Verse]"}},
    ]
    refs = [ref("t1"), ref("t2"), ref("t3"), ref("t4", "LYRICS"), ref("t5", "LYRICS"), ref("gone")]
    call = A.build_poll_many(Account("http://up", "proxy-key"), refs)
    assert (call.method, call.path) == ("POST", "/suno/fetch")
    assert call.headers == {"Authorization": "Bearer proxy-key"}
    assert call.json_body == {"ids": ["t1", "t2", "t3", "t4", "t5", "gone"]}
    got = A.parse_poll_many(reply(200, {"code": "success", "message": "", "data": rows}), refs)
    assert got["t1"].state is S.SUCCEEDED and len(got["t1"].outputs) == 2
    out = got["t1"].outputs[0]
    assert out.upstream_id == "c1" and out.kind == "audio"
    assert set(out.urls) == {"audio_url", "image_url"}  # empty URLs are not downloaded
    assert "user_id" not in out.meta and "history" not in out.meta["metadata"]
    assert got["t2"].state is S.RUNNING and got["t2"].progress == 40 and got["t2"].upstream_state == "IN_PROGRESS"
    assert got["t3"].state is S.FAILED and got["t3"].error_message == "policy"
    assert got["t4"].state is S.RUNNING and not got["t4"].known  # UNKNOWN keeps polling
    assert got["t5"].state is S.SUCCEEDED and got["t5"].outputs[0].meta["text"] == "[Verse]"
    assert got["gone"].state is S.FAILED


def test_success_without_audio_keeps_polling():
    rows = [{"task_id": "t1", "status": "SUCCESS", "data": [clip("c1", audio_url="")]}]
    got = A.parse_poll_many(reply(200, {"code": "success", "data": rows}), [ref("t1")])
    assert got["t1"].state is S.RUNNING and not got["t1"].known


def view(state: TaskState, action: str = "MUSIC", outputs: tuple[OutputView, ...] = (), **kw: Any) -> TaskView:
    base: dict[str, Any] = dict(public_id="6d1f0c2a-0000-4000-8000-000000000001", provider="suno", action=action,
                                model="chirp-v3-0", state=state, upstream_state=None, progress=None,
                                request={"prompt": "x"}, upstream_reply=None, outputs=outputs, error_code=None,
                                error_message=None, created_at=1_731_200_000.5, updated_at=1_731_200_071.2,
                                reserved=100_000, settled=None)
    base.update(kw)
    return TaskView(**base)


def test_render_task_dto():
    queued = A.render(view(S.QUEUED))
    assert queued == {"task_id": "6d1f0c2a-0000-4000-8000-000000000001", "action": "MUSIC", "status": "NOT_START",
                      "fail_reason": "", "submit_time": 1_731_200_000, "start_time": 0, "finish_time": 0,
                      "progress": "0%", "data": []}
    running = A.render(view(S.RUNNING, upstream_state="QUEUED", progress=15,
                            upstream_reply={"start_time": 1_731_200_004}))
    assert (running["status"], running["progress"], running["start_time"]) == ("QUEUED", "15%", 1_731_200_004)
    outs = (OutputView("gg-clip", "audio", {"audio_url": "https://gw/files/a.mp3"},
                       {"title": "Moon", "status": "complete", "metadata": {"duration": 9.5}}),)
    done = A.render(view(S.SUCCEEDED, outputs=outs, request={"prompt": "x", "continue_clip_id": "gg-parent",
                                                              "continue_at": 3, "task_id": "gg-task"}))
    assert done["status"] == "SUCCESS" and done["finish_time"] == 1_731_200_071 and done["progress"] == "100%"
    [c] = done["data"]
    assert c["id"] == "gg-clip" and c["audio_url"] == "https://gw/files/a.mp3" and c["video_url"] == ""
    assert c["metadata"]["history"] == [{"id": "gg-parent", "continue_at": 3, "type": "gen", "source": "web"}]
    failed = A.render(view(S.FAILED, error_code="FAILURE", error_message="policy"))
    assert (failed["status"], failed["fail_reason"], failed["data"]) == ("FAILURE", "policy", [])
    lyrics = A.render(view(S.SUCCEEDED, "LYRICS", (OutputView("gg-lyrics", "lyrics", {},
                                                              {"status": "complete", "title": "T", "text": "v"}),)))
    assert lyrics["data"] == {"id": "gg-lyrics", "status": "complete", "title": "T", "text": "v"}
    assert A.render(view(S.RUNNING, "LYRICS"))["data"] is None


class NoRefs:
    async def output(self, public_id: str) -> None:
        return None

    async def task(self, public_id: str, provider: str | None = None) -> None:
        return None

    async def stash(self, value: str) -> str:
        return value


async def test_prepare_modes_and_prices():
    prices = PriceTable([PRICES], {"suno:music:chirp-v3-5": 150_000})
    inspiration = await A.prepare({"gpt_description_prompt": "a song", "continue_clip_id": "c",
                                   "task_id": "t", "callback_url": "https://example.com/h"}, NoRefs())
    assert inspiration.model == "chirp-v3-0" and inspiration.parent is None
    assert "continue_clip_id" not in inspiration.upstream_request and "task_id" not in inspiration.upstream_request
    assert "callback_url" not in inspiration.upstream_request and inspiration.callback_url == "https://example.com/h"
    assert A.price(inspiration.units, prices) == 100_000
    custom = await A.prepare({"prompt": "[Verse]", "mv": "chirp-v3-5", "extra": {"k": 1}}, NoRefs())
    assert custom.upstream_request == {"prompt": "[Verse]", "mv": "chirp-v3-5", "extra": {"k": 1}}
    assert A.price(custom.units, prices) == 150_000
    lyrics = await A.for_action("LYRICS").prepare({"prompt": "words"}, NoRefs())
    assert (lyrics.action, lyrics.model, A.price(lyrics.units, prices)) == ("LYRICS", "suno_lyrics", 10_000)
    with pytest.raises(ReferenceNotFound):
        await A.prepare({"prompt": "x", "continue_clip_id": "c", "continue_at": 1, "task_id": "t"}, NoRefs())
    with pytest.raises(InvalidRequest, match="task id is empty"):
        await A.prepare({"prompt": "x", "continue_clip_id": "c", "continue_at": 1}, NoRefs())
