"""The creates that work on something already made (kling.md §4.3): `video-extend` and `lip-sync`
refer to a Kling video of this key, and `kolors-virtual-try-on` dresses a person's photo in a garment.

A video is referred to by the id gengate showed for it (`task_result.videos[].id`), looked up among
the calling key's own results only: another key's video does not exist (Kling's 1203, as for an
unknown id). It is sent upstream as Kling's own video id, and the new task is pinned to the upstream
account that made the video, the only one that holds it.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gengate.core.adaptor import Parent, Resolver
from gengate.core.errors import ReferenceNotFound
from gengate.providers.kling import rules

EXTEND_SECONDS = 5  # Kling adds 4-5 s to a video and bills it as one 5 s clip
MAX_EXTENDED_SECONDS = 180  # an extended video may not pass 3 minutes
LIP_SYNC_MODEL = "kling-lip-sync"  # lip-sync takes no model_name: this name routes and permits it
LIP_SYNC_MAX_SECONDS = 60  # the longest video lip-sync takes; a video given by URL is reserved as this
# long (its length is unknown before it is made) and settled on what was made
LIP_SYNC_MODES = ("text2video", "audio2video")
LIP_SYNC_TEXT_MAX = 120
VOICE_LANGUAGES = ("zh", "en")
VOICE_SPEED = (0.8, 2.0)
AUDIO_MAX_BYTES = 5 * 1024 * 1024
TRY_ON_MODEL = "kolors-virtual-try-on-v1"


@dataclass(frozen=True)
class Checked:
    """A validated create: its model, what it is priced on, the concurrency slots it holds and, for a
    task on a video, the parent it is pinned to and the fields of the upstream body that carry Kling's
    own ids instead of gengate's."""

    model: str
    units: dict[str, float]
    slots: int = 1
    parent: Parent | None = None
    upstream: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Video:
    """A video of this key, as a create may refer to it."""

    parent: Parent
    upstream_id: str
    seconds: float | None
    model: str
    pro: bool


async def video_of(video_id: Any, resolver: Resolver, name: str) -> Video:
    if not isinstance(video_id, str) or not video_id.strip():
        raise rules.bad(f"{name} is required")
    found = await resolver.output(video_id.strip(), "kling", "video")
    if found is None or not found[1]:
        raise ReferenceNotFound(f"video {video_id} not found")
    parent, upstream_id, meta = found
    assert upstream_id is not None
    return Video(parent=parent, upstream_id=upstream_id, seconds=seconds_of(meta.get("duration")),
                 model=str(meta.get("model") or "kling-v1"), pro=meta.get("mode") == "pro")


async def video_extend(body: Mapping[str, Any], resolver: Resolver) -> Checked:
    """`video_id`, `prompt`, `negative_prompt`, `cfg_scale`: the new task runs on the video's model and
    account, and is priced as one 5 s clip of the video's mode."""
    rules.text(body, "prompt")
    rules.text(body, "negative_prompt")
    rules.fraction(body, "cfg_scale")
    video = await video_of(body.get("video_id"), resolver, "video_id")
    if video.seconds is not None and video.seconds + EXTEND_SECONDS > MAX_EXTENDED_SECONDS:
        raise rules.bad(f"video_id: a video of {video.seconds:g} s cannot be extended past "
                        f"{MAX_EXTENDED_SECONDS} s")
    units = {"extend": 1.0, "pro": 1.0 if video.pro else 0.0}
    return Checked(model=video.model, units=units, parent=video.parent, upstream={"video_id": video.upstream_id})


async def lip_sync(body: Mapping[str, Any], resolver: Resolver) -> Checked:
    """`input`: the video (`video_id` of this key, or `video_url`) and either a text spoken by a voice
    (`mode: text2video`) or an audio (`mode: audio2video`, a base64 file or a URL). Priced per second
    of the video: its own length, or for a URL the longest a video may be, settled on what was made."""
    spec = body.get("input")
    if not isinstance(spec, dict):
        raise rules.bad("input is required and must be an object")
    video_id, video_url = spec.get("video_id"), spec.get("video_url")
    if video_id not in (None, "") and video_url not in (None, ""):
        raise rules.bad("input.video_id and input.video_url cannot be used together")
    if video_id in (None, "") and video_url in (None, ""):
        raise rules.bad("input.video_id or input.video_url is required")
    if video_url not in (None, ""):
        _url(video_url, "input.video_url")
    mode = spec.get("mode")
    if mode not in LIP_SYNC_MODES:
        raise rules.bad("input.mode must be text2video or audio2video")
    if mode == "text2video":
        _speech(spec)
    else:
        _audio(spec)
    if video_id in (None, ""):
        return Checked(model=LIP_SYNC_MODEL, units={"lip_sync_seconds": float(LIP_SYNC_MAX_SECONDS)})
    video = await video_of(video_id, resolver, "input.video_id")
    seconds = video.seconds if video.seconds is not None else float(LIP_SYNC_MAX_SECONDS)
    if seconds > LIP_SYNC_MAX_SECONDS:
        raise rules.bad(f"input.video_id: lip-sync takes a video of at most {LIP_SYNC_MAX_SECONDS} s "
                        f"(this one is {seconds:g} s)")
    return Checked(model=LIP_SYNC_MODEL, units={"lip_sync_seconds": seconds}, parent=video.parent,
                   upstream={"input": {**spec, "video_id": video.upstream_id}})


def virtual_try_on(body: Mapping[str, Any]) -> Checked:
    """`model_name` (default kolors-virtual-try-on-v1), `human_image` and `cloth_image` (each a URL or
    bare base64 JPEG/PNG): one image."""
    model = rules.model_of(body, TRY_ON_MODEL)
    for name in ("human_image", "cloth_image"):
        if body.get(name) in (None, ""):
            raise rules.bad(f"{name} is required")
        rules.image_input(body[name], name)
    return Checked(model=model, units={"try_on": 1.0})


def _speech(spec: Mapping[str, Any]) -> None:
    text = spec.get("text")
    if not isinstance(text, str) or not text.strip():
        raise rules.bad("input.text is required with mode text2video")
    if len(text) > LIP_SYNC_TEXT_MAX:
        raise rules.bad(f"input.text must be at most {LIP_SYNC_TEXT_MAX} characters")
    voice = spec.get("voice_id")
    if not isinstance(voice, str) or not voice.strip():
        raise rules.bad("input.voice_id is required with mode text2video")
    if spec.get("voice_language") is not None and spec["voice_language"] not in VOICE_LANGUAGES:
        raise rules.bad("input.voice_language must be zh or en")
    speed = spec.get("voice_speed")
    low, high = VOICE_SPEED
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, int | float)
                              or not math.isfinite(speed) or not low <= speed <= high):
        raise rules.bad(f"input.voice_speed must be a number from {low} to {high}")


def _audio(spec: Mapping[str, Any]) -> None:
    kind = spec.get("audio_type")
    if kind not in ("file", "url"):
        raise rules.bad("input.audio_type must be file or url with mode audio2video")
    if kind == "url":
        _url(spec.get("audio_url"), "input.audio_url")
        return
    data = spec.get("audio_file")
    if not isinstance(data, str) or not data:
        raise rules.bad("input.audio_file is required with audio_type file")
    if data.startswith("data:"):
        raise rules.bad("input.audio_file: send the base64 text without a data: prefix")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise rules.bad("input.audio_file is not valid base64") from None
    if not raw:
        raise rules.bad("input.audio_file is empty")
    if len(raw) > AUDIO_MAX_BYTES:
        raise rules.bad("input.audio_file must be at most 5 MB")


def _url(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise rules.bad(f"{name} must be an http(s) URL")


def seconds_of(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None
