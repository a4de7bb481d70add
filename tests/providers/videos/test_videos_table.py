"""The `/v1/videos` model table and request translation, without a server: rounding of `seconds`,
`size` to an aspect ratio, placeholders, and models that need an image."""

from __future__ import annotations

import asyncio

import pytest

from gengate.core.adaptor import OutputView, TaskView
from gengate.core.errors import InvalidRequest
from gengate.core.states import TaskState
from gengate.providers.videos.adaptor import VideoView
from gengate.providers.videos.table import MODELS, Call, Route, VideoModel
from gengate.providers.videos.translate import aspect_of, fill, pick_call, read_request, round_seconds

IMAGE_ONLY = VideoModel("img-only", (5, 10), (Route(
    provider="x", text=None,
    image=Call("image_to_video", {"promptImage": "$image_url", "ratio": "$ratio", "duration": "$seconds",
                                  "b64": "$image_b64", "name": "$model", "d": "$seconds_str", "keep": "$other",
                                  "luma": "$seconds_s", "size": "$size", "raw": ["$image"]}),
    video_fields=("video",), ratios={"16:9": "1280:720", "9:16": "720:1280"}),))


@pytest.mark.parametrize(("asked", "offered", "expected"), [
    ("4", (5,), 5), ("8", (5,), 5), ("12", (5, 10), 10), ("4", (4, 8), 4), ("5", (4, 8), 8), ("4.5", (4, 8), 8),
    (3, (5, 10), 5), ("16", (5, 10), 10), ("1", (2, 4, 6), 2),
])
def test_seconds_round_up_to_an_offered_duration(asked, offered, expected):
    assert round_seconds(asked, offered) == expected


@pytest.mark.parametrize("bad", ["", "abc", "0", "-4", "nan", "inf", None, True, [4]])
def test_bad_seconds_are_400_on_seconds(bad):
    with pytest.raises(InvalidRequest) as err:
        round_seconds(bad, (5,))
    assert err.value.param == "seconds"


@pytest.mark.parametrize(("size", "aspect"), [
    ("1280x720", "16:9"), ("720x1280", "9:16"), ("1024x1792", "9:16"), ("1792x1024", "16:9"), ("1024x1024", "1:1"),
    ("960X960", "1:1"),
])
def test_size_maps_to_the_aspect_ratio(size, aspect):
    assert aspect_of(size) == aspect


@pytest.mark.parametrize("size", ["big", "1280*720", "0x720", "x", "1280x"])
def test_bad_size_is_400_on_size(size):
    with pytest.raises(InvalidRequest) as err:
        aspect_of(size)
    assert err.value.param == "size"


def test_a_model_that_needs_an_image_refuses_a_prompt_alone():
    req = read_request({"prompt": "p"}, IMAGE_ONLY)
    with pytest.raises(InvalidRequest) as err:
        pick_call(IMAGE_ONLY.routes[0], req)
    assert err.value.param == "input_reference"


def test_placeholders_are_filled():
    req = read_request({"prompt": "p", "seconds": "8", "size": "720x1280",
                        "input_reference": "data:image/png;base64,iVBORw0KGgo="}, IMAGE_ONLY)
    route = IMAGE_ONLY.routes[0]

    async def host(data_url: str) -> str:
        return "https://gengate.example/files/x.png"

    body = asyncio.run(fill(pick_call(route, req).body, req, route, host))
    assert body == {"promptImage": "https://gengate.example/files/x.png", "ratio": "720:1280", "duration": 10,
                    "b64": "iVBORw0KGgo=", "name": "img-only", "d": "10", "keep": "$other", "luma": "10s",
                    "size": "720x1280", "raw": ["data:image/png;base64,iVBORw0KGgo="]}


def test_viduq1_routes_prefer_the_platform_format():
    entry = MODELS["viduq1"]
    assert entry.durations == (5,)
    assert [r.provider for r in entry.routes] == ["vidu-ent", "vidu"]
    req = read_request({"prompt": "p", "size": "720x1280"}, entry)
    body = asyncio.run(fill(pick_call(entry.routes[0], req).body, req, entry.routes[0], None))  # type: ignore[arg-type]
    assert body == {"model": "viduq1", "prompt": "p", "duration": 5, "aspect_ratio": "9:16"}


def view(state: TaskState, **kw: object) -> TaskView:
    base: dict[str, object] = dict(
        public_id="video_x", provider="x", action="image_to_video", model="img-only", state=state,
        upstream_state=None, progress=None, request={"_video": {"prompt": "p", "seconds": 10, "size": "720x1280"}},
        upstream_reply=None, outputs=(), error_code=None, error_message=None, created_at=100.0, updated_at=150.0,
        reserved=1, settled=None)
    base.update(kw)
    return TaskView(**base)  # type: ignore[arg-type]


def test_the_video_object(monkeypatch):
    monkeypatch.setitem(MODELS, "img-only", VideoModel("img-only", (5, 10), (
        Route("x", None, None, ("video",), duration_path=("duration",)),)))
    v = VideoView()
    queued = v.render(view(TaskState.QUEUED))
    assert queued["status"] == "queued" and queued["progress"] == 0 and queued["seconds"] == "10"
    assert queued["completed_at"] is None and queued["error"] is None and queued["size"] == "720x1280"
    assert v.render(view(TaskState.RUNNING, upstream_state="queueing"))["status"] == "queued"
    running = v.render(view(TaskState.RUNNING, upstream_state="processing", progress=40))
    assert running["status"] == "in_progress" and running["progress"] == 40
    out = OutputView("o", "video", {"video": "http://gw/f"}, {"duration": "9.8"})
    done = v.render(view(TaskState.SUCCEEDED, outputs=(out,)))
    assert done["status"] == "completed" and done["progress"] == 100 and done["seconds"] == "9.8"
    assert done["completed_at"] == 150
    failed = v.render(view(TaskState.FAILED, error_code="Blocked", error_message="no"))
    assert failed["status"] == "failed" and failed["error"] == {"code": "Blocked", "message": "no"}
    assert v.render(view(TaskState.CANCELLED))["status"] == "failed"
    assert v.provider_state(view(TaskState.REHOSTING)) == "in_progress"
