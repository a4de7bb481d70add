"""The Kling adaptor's creates on existing media, on their own (no server): a video id is this key's
Kling video, mapped to Kling's id and pinned to its parent's account; rules, prices, `parent_video`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from gengate.core.adaptor import OutputSpec, Parent, TaskView
from gengate.core.errors import InvalidRequest, ReferenceNotFound, ReferenceUnavailable
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.kling.adaptor import PRICES, KlingAdaptor
from gengate.providers.kling.errors import kling_error

from .test_edits_flow import png_base64

ADAPTOR = KlingAdaptor()
TABLE = PriceTable([PRICES])
PARENT = Parent(task_id=7, channel_id=2, secret_id=3)


class Resolver:
    """This key's videos: gengate id -> (Kling's id, meta)."""

    def __init__(self, videos: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None) -> None:
        self.videos = dict(videos or {})
        self.asked: list[tuple[str, str | None, str | None]] = []

    async def output(self, public_id: str, provider: str | None = None,
                     kind: str | None = None) -> tuple[Parent, str | None, Mapping[str, Any]] | None:
        self.asked.append((public_id, provider, kind))
        found = self.videos.get(public_id)
        return None if found is None else (PARENT, found[0], found[1])

    async def task(self, public_id: str, provider: str | None = None) -> None:
        return None

    async def task_by_field(self, provider: str, name: str, value: str) -> None:
        return None

    async def stash(self, value: str) -> str:
        return "gengate-inline:inline/abc"


MINE = Resolver({"111111111111111111": ("kling-video-uuid", {"duration": "5.1", "model": "kling-v1-6",
                                                             "mode": "pro"})})


def prepare(action: str, body: Any, resolver: Resolver = MINE) -> Any:
    return asyncio.run(ADAPTOR.bound(action).prepare(body, resolver))


def test_extend_maps_the_video_id_and_pins_the_parent():
    resolver = Resolver(MINE.videos)
    prepared = prepare("video_extend", {"video_id": "111111111111111111", "prompt": "more",
                                        "callback_url": "https://hook"}, resolver)
    assert resolver.asked == [("111111111111111111", "kling", "video")]  # Kling videos of this key only
    assert prepared.parent == PARENT and prepared.model == "kling-v1-6"
    assert prepared.upstream_request == {"video_id": "kling-video-uuid", "prompt": "more"}
    assert prepared.request["video_id"] == "111111111111111111"  # the client's own id stays gengate's
    assert prepared.units == {"extend": 1.0, "pro": 1.0}
    assert ADAPTOR.price(prepared.units, TABLE) == PRICES["kling:video_extend:pro"]


@pytest.mark.parametrize("body", [{}, {"video_id": ""}, {"video_id": 5}, {"video_id": "111111111111111111",
                                                                         "cfg_scale": 2},
                                  {"video_id": "111111111111111111", "prompt": "x" * 2501}])
def test_extend_rules(body):
    with pytest.raises(InvalidRequest) as exc:
        prepare("video_extend", body)
    assert exc.value.code == "1201"


def test_extend_of_an_unknown_or_too_long_video():
    with pytest.raises(ReferenceNotFound):
        prepare("video_extend", {"video_id": "222222222222222222"})
    long = Resolver({"3": ("v", {"duration": "178"})})
    with pytest.raises(InvalidRequest):
        prepare("video_extend", {"video_id": "3"}, long)


def test_lip_sync_rules_per_mode():
    speech = {"video_id": "111111111111111111", "mode": "text2video", "text": "hi", "voice_id": "v1"}
    ok = prepare("lip_sync", {"input": speech})
    assert ok.parent == PARENT and ok.model == "kling-lip-sync"
    assert ok.upstream_request["input"]["video_id"] == "kling-video-uuid"
    assert ok.request["input"]["video_id"] == "111111111111111111"
    assert ok.units == {"lip_sync_seconds": 5.1}
    assert ADAPTOR.price(ok.units, TABLE) == 6 * PRICES["kling:lip_sync_second"]
    by_url = prepare("lip_sync", {"input": {"video_url": "https://x/v.mp4", "mode": "audio2video",
                                            "audio_type": "url", "audio_url": "https://x/a.mp3"}})
    assert by_url.parent is None and by_url.units == {"lip_sync_seconds": 60.0}
    assert ADAPTOR.price(by_url.units, TABLE) <= 1_000_000  # the upper bound, within the shipped cap
    made = (OutputSpec("video", "v", {"url": "u"}, {"duration": "4.9"}),)
    assert ADAPTOR.final_price(by_url.units, made, TABLE) == 5 * PRICES["kling:lip_sync_second"]
    bad = [
        {},
        {"input": "x"},
        {"input": {**speech, "video_url": "https://x/v.mp4"}},
        {"input": {"mode": "text2video", "text": "hi", "voice_id": "v"}},
        {"input": {**speech, "mode": "sing"}},
        {"input": {**speech, "text": ""}},
        {"input": {**speech, "text": "x" * 121}},
        {"input": {**speech, "voice_id": None}},
        {"input": {**speech, "voice_language": "fr"}},
        {"input": {**speech, "voice_speed": 2.5}},
        {"input": {"video_url": "ftp://x", "mode": "audio2video", "audio_type": "url", "audio_url": "https://a"}},
        {"input": {"video_url": "https://x", "mode": "audio2video"}},
        {"input": {"video_url": "https://x", "mode": "audio2video", "audio_type": "file"}},
        {"input": {"video_url": "https://x", "mode": "audio2video", "audio_type": "file", "audio_file": "%%"}},
        {"input": {"video_url": "https://x", "mode": "audio2video", "audio_type": "url", "audio_url": "a.mp3"}},
    ]
    for body in bad:
        with pytest.raises(InvalidRequest) as exc:
            prepare("lip_sync", body)
        assert exc.value.code == "1201", body


def test_lip_sync_of_a_video_longer_than_a_minute():
    long = Resolver({"4": ("v", {"duration": "61"})})
    with pytest.raises(InvalidRequest) as exc:
        prepare("lip_sync", {"input": {"video_id": "4", "mode": "text2video", "text": "hi", "voice_id": "v"}}, long)
    assert "60 s" in exc.value.message


def test_virtual_try_on():
    ok = prepare("virtual_try_on", {"human_image": png_base64(400, 600), "cloth_image": "https://x/c.png"})
    assert ok.model == "kolors-virtual-try-on-v1" and ok.units == {"try_on": 1.0} and ok.parent is None
    assert ADAPTOR.price(ok.units, TABLE) == PRICES["kling:virtual_try_on"]
    for body in ({"cloth_image": "https://x/c.png"}, {"human_image": "https://x/h.png"},
                 {"human_image": png_base64(100, 100), "cloth_image": "https://x/c.png"},
                 {"human_image": "data:image/png;base64,AAAA", "cloth_image": "https://x/c.png"}):
        with pytest.raises(InvalidRequest):
            prepare("virtual_try_on", body)


def test_parent_video_in_task_info_and_the_unavailable_account_error():
    view = TaskView(public_id="999999999999999999", provider="kling", action="video_extend", model="kling-v1",
                    state=TaskState.RUNNING, upstream_state="processing", progress=None,
                    request={"video_id": "111111111111111111", "external_task_id": "e"},
                    upstream_reply={"task_info": {"parent_video": {"id": "kling-video-uuid", "url": "https://cdn/x",
                                                                   "duration": "5.1"}}},
                    outputs=(), error_code=None, error_message=None, created_at=1.0, updated_at=2.0,
                    reserved=1, settled=None)
    info = ADAPTOR.render(view)["task_info"]
    assert info == {"external_task_id": "e", "parent_video": {"id": "111111111111111111", "duration": "5.1"}}
    reply = kling_error(ReferenceUnavailable("gone"))
    assert reply.status_code == 400 and b'"code":1201' in reply.body
