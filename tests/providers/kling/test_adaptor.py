"""The Kling adaptor on its own, with recorded replies: the JWT it signs (and caches), what each upstream
reply proves, states, results, reconcile by marker, prices, and the error envelope. No server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest

from gengate.core.adaptor import Account, HttpReply, Outcome, OutputSpec, TaskRef, TaskView
from gengate.core.errors import AuthError, InsufficientCredits, InvalidRequest, NotFound, UpstreamRefused
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.kling import token
from gengate.providers.kling.adaptor import PRICES, KlingAdaptor
from gengate.providers.kling.errors import kling_error

ADAPTOR = KlingAdaptor()
TABLE = PriceTable([PRICES])


def reply(status: int, body: Any) -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status=status, body=raw, headers={})


def ref(action: str = "text2video", upstream_id: str | None = "871042355120988160") -> TaskRef:
    return TaskRef(upstream_id=upstream_id, action=action, model="kling-v1",
                   upstream_request={"prompt": "x", "duration": "5"}, marker="a1b2c3d4e5f60718")


class Resolver:
    def __init__(self, taken: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.taken = taken

    async def output(self, public_id: str, provider: str | None = None, kind: str | None = None) -> None:
        return None

    async def task(self, public_id: str, provider: str | None = None) -> None:
        return None

    async def task_by_field(self, provider: str, name: str, value: str) -> object | None:
        return object() if value in self.taken else None

    async def stash(self, value: str) -> str:
        return "gengate-inline:inline/x"


def test_the_jwt_is_hs256_with_iss_exp_nbf_and_cached():
    now = time.time()
    first = token.bearer_token("my-ak|my-secret-key-of-32-bytes-long!!", now)
    header = jwt.get_unverified_header(first)
    assert header["alg"] == "HS256" and header["typ"] == "JWT"
    claims = jwt.decode(first, "my-secret-key-of-32-bytes-long!!", algorithms=["HS256"])
    assert claims["iss"] == "my-ak"
    assert claims["exp"] == int(now) + 1800 and claims["nbf"] == int(now) - 5
    assert token.bearer_token("my-ak|my-secret-key-of-32-bytes-long!!", now + 60) == first  # cached
    later = token.bearer_token("my-ak|my-secret-key-of-32-bytes-long!!", now + 1800 - 299)  # near expiry
    assert later != first
    assert jwt.decode(later, "my-secret-key-of-32-bytes-long!!", algorithms=["HS256"],
                      options={"verify_exp": False, "verify_nbf": False})["exp"] == int(now + 1800 - 299) + 1800
    # Another secret key for the same access key is another token.
    assert token.bearer_token("my-ak|another-secret-key-32-bytes-long", now) != later
    assert token.key_pair("plain") == ("plain", "plain")
    assert token.key_pair(" ak | sk ") == ("ak", "sk")


def test_submit_sends_gengates_marker_and_a_jwt():
    call = ADAPTOR.build_submit(Account("http://up", "ak|sk-0123456789abcdef0123456789abcdef"), ref())
    assert call.method == "POST" and call.path == "/v1/videos/text2video"
    assert call.json_body["external_task_id"] == "a1b2c3d4e5f60718"
    assert call.headers["Authorization"].startswith("Bearer ey")
    poll = ADAPTOR.build_poll(Account("http://up", "ak|sk"), ref("image_generation"))
    assert poll.path == "/v1/images/generations/871042355120988160"


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (200, {"code": 0, "message": "SUCCEED", "request_id": "r",
           "data": {"task_id": "1", "task_status": "submitted"}}, Outcome.ACCEPTED),
    (401, {"code": 1004, "message": "expired", "request_id": "r"}, Outcome.AUTH),
    (403, {"code": 1103, "message": "no access", "request_id": "r"}, Outcome.AUTH),
    (429, {"code": 1102, "message": "resource pack used up", "request_id": "r"}, Outcome.NO_CREDIT),
    (429, {"code": 1303, "message": "parallel task over resource pack limit", "request_id": "r"}, Outcome.RETRY),
    (429, {"code": 1302, "message": "rate limit", "request_id": "r"}, Outcome.RETRY),
    (500, {"code": 5000, "message": "internal", "request_id": "r"}, Outcome.RETRY),
    (503, b"<html>bad gateway</html>", Outcome.RETRY),
    (400, {"code": 1201, "message": "prompt is required", "request_id": "r"}, Outcome.REFUSED),
    (400, {"code": 1301, "message": "content safety", "request_id": "r"}, Outcome.REFUSED),
    (404, {"code": 1203, "message": "model not found", "request_id": "r"}, Outcome.REFUSED),
])
def test_what_a_create_reply_proves(status, body, outcome):
    sub = ADAPTOR.parse_submit(reply(status, body), ref())
    assert sub.outcome is outcome
    if outcome is Outcome.REFUSED:
        assert sub.error_code == str(body["code"])


def test_a_garbled_2xx_is_ambiguous_for_the_core():
    for raw in (b'{"code": 0, "data": ', {"code": 0, "message": "SUCCEED", "data": {}}):
        with pytest.raises((ValueError, KeyError, TypeError)):
            ADAPTOR.parse_submit(reply(200, raw), ref())


def test_poll_states_results_and_unknown_states():
    def poll(data: dict[str, Any], action: str = "text2video"):
        return ADAPTOR.parse_poll(reply(200, {"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}),
                                  ref(action))

    assert poll({"task_id": "1", "task_status": "processing"}).state is TaskState.RUNNING
    odd = poll({"task_id": "1", "task_status": "rendering"})
    assert odd.state is TaskState.RUNNING and odd.known is False
    empty = poll({"task_id": "1", "task_status": "succeed", "task_result": {"videos": []}})
    assert empty.state is TaskState.RUNNING and empty.known is False
    done = poll({"task_id": "1", "task_status": "succeed", "task_result": {"videos": [
        {"id": "v-1", "url": "https://cdn/k.mp4", "watermark_url": "", "duration": "5.1"}]}})
    assert done.state is TaskState.SUCCEEDED
    [out] = done.outputs
    assert out.urls == {"url": "https://cdn/k.mp4"} and out.upstream_id == "v-1"
    assert out.meta == {"duration": "5.1", "model": "kling-v1", "mode": "std"}  # model, mode: for an extend
    images = poll({"task_id": "1", "task_status": "succeed", "task_result": {"images": [
        {"index": 0, "url": "https://cdn/0.png"}, {"index": 1, "url": "https://cdn/1.png"}]}}, "image_generation")
    assert [o.kind for o in images.outputs] == ["image", "image"]
    failed = poll({"task_id": "1", "task_status": "failed", "task_status_msg": "content risk detected"})
    assert failed.state is TaskState.FAILED and failed.error_message == "content risk detected"


def test_find_matches_the_marker_only_after_the_submit():
    now = time.time()
    items = [{"task_id": "3", "task_info": {"external_task_id": "other"}, "created_at": int(now * 1000)},
             {"task_id": "2", "task_info": {"external_task_id": "a1b2c3d4e5f60718"}, "created_at": int(now * 1000)},
             {"task_id": "1", "task_info": {"external_task_id": "a1b2c3d4e5f60718"},
              "created_at": int((now - 3600) * 1000)}]
    found = ADAPTOR.parse_find(reply(200, {"code": 0, "message": "SUCCEED", "request_id": "r", "data": items}),
                               ref(), not_before=now - 60)
    assert found.upstream_ids == ["2"] and found.more is False
    call = ADAPTOR.build_find(Account("http://up", "ak|sk"), ref("image2video"), 2)
    assert call.path == "/v1/videos/image2video" and call.query == {"pageNum": "2", "pageSize": "500"}


def test_prices_reserve_the_upper_bound_and_settle_what_was_made():
    assert ADAPTOR.price({"seconds": 5, "pro": 0}, TABLE) == 100_000
    assert ADAPTOR.price({"seconds": 10, "pro": 1}, TABLE) == 600_000
    assert ADAPTOR.price({"seconds": 15, "pro": 1}, TABLE) <= 1_000_000  # v3's longest, still within the cap
    assert ADAPTOR.price({"images": 9, "2k": 1}, TABLE) == 63_000
    two = tuple(OutputSpec("image", str(i), {"url": "u"}, {}) for i in range(2))
    assert ADAPTOR.final_price({"images": 4, "2k": 0}, two, TABLE) == 7_000
    video = (OutputSpec("video", "v", {"url": "u"}, {"duration": "5.1"}),)
    assert ADAPTOR.final_price({"seconds": 5, "pro": 0}, video, TABLE) == 100_000
    assert ADAPTOR.final_price({"seconds": 5, "pro": 0}, (), TABLE) == 0


def test_prepare_binds_the_action_and_keeps_the_marker_out_of_the_request():
    bound = ADAPTOR.bound("image_generation")
    prepared = asyncio.run(bound.prepare({"prompt": "kite", "n": 4, "resolution": "2k",
                                          "external_task_id": "mine", "callback_url": "https://hook"}, Resolver()))
    assert prepared.action == "image_generation" and prepared.slots == 4
    assert prepared.units == {"images": 4.0, "2k": 1.0}
    assert prepared.callback_url == "https://hook" and "callback_url" not in prepared.upstream_request
    assert prepared.request["external_task_id"] == "mine" and "external_task_id" not in prepared.upstream_request
    with pytest.raises(InvalidRequest) as exc:
        asyncio.run(bound.prepare({"prompt": "kite", "external_task_id": "mine"}, Resolver({"mine"})))
    assert exc.value.code == "1201"
    unbound = asyncio.run(ADAPTOR.prepare({"image": "https://example.com/a.png"}, Resolver()))
    assert unbound.action == "image2video"


def view(state: TaskState, **kw: Any) -> TaskView:
    base = dict(public_id="123456789012345678", provider="kling", action="text2video", model="kling-v1",
                state=state, upstream_state=None, progress=None, request={"prompt": "x"}, upstream_reply=None,
                outputs=(), error_code=None, error_message=None, created_at=1760000000.123,
                updated_at=1760000085.41, reserved=100_000, settled=None)
    base.update(kw)
    return TaskView(**base)


def test_render_states_and_timestamps_in_ms():
    queued = ADAPTOR.render(view(TaskState.QUEUED))
    assert queued["task_status"] == "submitted" and queued["created_at"] == 1760000000123
    assert queued["updated_at"] == 1760000085410 and queued["task_info"] == {}
    assert ADAPTOR.render(view(TaskState.RUNNING, upstream_state="processing"))["task_status"] == "processing"
    failed = ADAPTOR.render(view(TaskState.FAILED, error_message="content risk detected"))
    assert failed["task_status"] == "failed" and failed["task_status_msg"] == "content risk detected"


def test_error_envelope_codes_and_statuses():
    def body(exc):
        resp = kling_error(exc)
        return resp.status_code, json.loads(resp.body)

    status, b = body(InvalidRequest("prompt is required", code="1201"))
    assert (status, b["code"]) == (400, 1201) and set(b) == {"code", "message", "request_id"}
    assert body(InvalidRequest("not JSON"))[0:1] == (400,) and body(InvalidRequest("x"))[1]["code"] == 1200
    assert (lambda r: (r[0], r[1]["code"]))(body(AuthError("x", code="1001"))) == (401, 1001)
    assert (lambda r: (r[0], r[1]["code"]))(body(AuthError("x"))) == (401, 1002)
    assert (lambda r: (r[0], r[1]["code"]))(body(InsufficientCredits("x"))) == (429, 1102)
    assert (lambda r: (r[0], r[1]["code"]))(body(NotFound("x"))) == (404, 1203)
    refused = body(UpstreamRefused("content safety", upstream_status=400, upstream_code="1301"))
    assert (refused[0], refused[1]["code"]) == (400, 1301)


def test_durations_modes_and_models_as_kling_validates_them():
    t2v = ADAPTOR.bound("text2video")
    v3 = asyncio.run(t2v.prepare({"model": "kling-v3", "prompt": "x", "duration": "15", "mode": "pro",
                                  "sound": "on"}, Resolver()))
    assert v3.model == "kling-v3" and v3.units == {"seconds": 15.0, "pro": 1.0}
    default = asyncio.run(t2v.prepare({"prompt": "x"}, Resolver()))
    assert default.model == "kling-v1" and default.units == {"seconds": 5.0, "pro": 0.0}
    assert asyncio.run(t2v.prepare({"prompt": "x", "duration": 10}, Resolver())).units["seconds"] == 10.0
    for bad in ({"prompt": "x", "duration": "15"}, {"prompt": "x", "duration": "3"},
                {"model_name": "kling-v3", "prompt": "x", "duration": "16"},
                {"model_name": "kling-v2-master", "prompt": "x", "cfg_scale": 0.5},
                {"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 11}}},
                {"prompt": "x", "duration": True}):
        with pytest.raises(InvalidRequest) as exc:
            asyncio.run(t2v.prepare(bad, Resolver()))
        assert exc.value.code == "1201", bad
    camera = {"type": "simple", "config": {"horizontal": 0, "vertical": 0, "pan": -3, "tilt": 0, "roll": 0,
                                           "zoom": 0}}
    assert asyncio.run(t2v.prepare({"prompt": "x", "camera_control": camera}, Resolver())).action == "text2video"
