"""The emulated Kling's creates on existing media (kling.md §4.3), written from the spec alone:
video-extend and lip-sync take a video this account made (`video_id`; another account's video does not
exist for it), kolors-virtual-try-on takes a person and a garment. Each returns what its task keeps,
in the shape `emulator.py` renders (`path`, `seconds` or `n`, `width`, `height`, `units`)."""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

from gengate.emulator.media import whole_frames
from gengate.emulator.replies import ProviderError

EXTEND_PATH = "/v1/videos/video-extend"
LIP_SYNC_PATH = "/v1/videos/lip-sync"
TRY_ON_PATH = "/v1/images/kolors-virtual-try-on"
TRY_ON_MODELS = frozenset({"kolors-virtual-try-on-v1", "kolors-virtual-try-on-v1-5"})
MAX_EXTENDED = 180.0  # seconds an extended video may reach
URL_VIDEO_SECONDS = 5.0  # a lip-sync video given by URL is not fetched: it is taken as this long
LIP_SYNC_MAX = 60.0  # seconds of the longest video lip-sync takes
TRY_ON_SIZE = (288, 384)  # a garment photo given by URL: a 3:4 portrait

# video id -> the parent video as this account sees it ({id, seconds, width, height, mode}), or None.
FindVideo = Callable[[str], dict[str, Any] | None]


def _bad(message: str) -> ProviderError:
    return ProviderError(400, message, "1201")


def _text(body: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(f"{name} must be a string of at most {limit} characters")
    return value


def _parent(video_id: Any, find: FindVideo) -> dict[str, Any]:
    if not isinstance(video_id, str) or not video_id:
        raise _bad("video_id is required")
    video = find(video_id)
    if video is None:
        raise ProviderError(404, f"video {video_id} not found", "1203")
    return video


def extend(body: Mapping[str, Any], task_id: str, find: FindVideo, fps: int) -> dict[str, Any]:
    """The parent plus 4 to 5 s (drawn from the task id), in the parent's size."""
    _text(body, "prompt", 2500)
    _text(body, "negative_prompt", 2500)
    cfg = body.get("cfg_scale")
    if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1):
        raise _bad("cfg_scale must be a number from 0 to 1")
    parent = _parent(body.get("video_id"), find)
    added = 4 + (int(task_id) % 9) / 8
    if parent["seconds"] + added > MAX_EXTENDED:
        raise _bad("the extended video would be longer than 3 minutes")
    return {"path": EXTEND_PATH, "model": "extend", "seconds": float(whole_frames(parent["seconds"] + added, fps)),
            "width": parent["width"], "height": parent["height"], "mode": parent["mode"],
            "units": 3.5 if parent["mode"] == "pro" else 1, "parent": parent}


def lip_sync(body: Mapping[str, Any], find: FindVideo, fps: int, default_size: tuple[int, int]) -> dict[str, Any]:
    """The video again with the speech laid on it: as long as the video."""
    spec = body.get("input")
    if not isinstance(spec, dict):
        raise _bad("input is required")
    video_id, video_url = spec.get("video_id"), spec.get("video_url")
    if bool(video_id) == bool(video_url):
        raise _bad("exactly one of input.video_id and input.video_url is required")
    mode = spec.get("mode")
    if mode == "text2video":
        _text(spec, "text", 120, required=True)
        _text(spec, "voice_id", 256, required=True)
        if spec.get("voice_language", "zh") not in ("zh", "en"):
            raise _bad("voice_language must be zh or en")
        speed = spec.get("voice_speed", 1.0)
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.8 <= speed <= 2.0:
            raise _bad("voice_speed must be from 0.8 to 2.0")
    elif mode == "audio2video":
        kind = spec.get("audio_type")
        if kind == "file":
            _audio_file(spec.get("audio_file"))
        elif kind == "url":
            url = spec.get("audio_url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _bad("audio_url must be an http(s) URL")
        else:
            raise _bad("audio_type must be file or url")
    else:
        raise _bad("mode must be text2video or audio2video")
    if video_id:
        parent: dict[str, Any] | None = _parent(video_id, find)
        seconds, (width, height) = parent["seconds"], (parent["width"], parent["height"])
        if seconds > LIP_SYNC_MAX:
            raise _bad("the video must be at most 60 s long")
    else:
        if not isinstance(video_url, str) or not video_url.startswith(("http://", "https://")):
            raise _bad("video_url must be an http(s) URL")
        parent, seconds, (width, height) = None, URL_VIDEO_SECONDS, default_size
    data: dict[str, Any] = {"path": LIP_SYNC_PATH, "model": "lip-sync", "seconds": float(whole_frames(seconds, fps)),
                            "width": width, "height": height, "units": math.ceil(seconds / 5) * 0.5}
    if parent is not None:
        data["parent"] = parent
    return data


def try_on(body: Mapping[str, Any]) -> dict[str, Any]:
    """One PNG in the person photo's size (when sent as base64), else a 3:4 portrait."""
    model = body.get("model_name", "kolors-virtual-try-on-v1")
    if model not in TRY_ON_MODELS:
        raise ProviderError(404, f"model_name {model} not found", "1203")
    sizes = [_image(body.get(name), name) for name in ("human_image", "cloth_image")]
    width, height = sizes[0] or TRY_ON_SIZE
    return {"path": TRY_ON_PATH, "model": model, "n": 1, "width": width - width % 2, "height": height - height % 2,
            "units": 1}


def _image(value: Any, name: str) -> tuple[int, int] | None:
    if not isinstance(value, str) or not value:
        raise _bad(f"{name} is required")
    if value.startswith(("http://", "https://")):
        return None
    if value.startswith("data:"):
        raise _bad(f"{name} must be a URL or bare base64")
    try:
        raw = base64.b64decode(value, validate=True)
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as img:
            width, height = img.size
    except (binascii.Error, ValueError, OSError):
        raise _bad(f"{name} is not a readable image") from None
    scale = 384 / max(width, height)  # kept small, as every emulated file is
    return max(2, round(width * scale)), max(2, round(height * scale))


def _audio_file(value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise _bad("audio_file is required")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("audio_file must be base64") from None
    if not raw or len(raw) > 5 * 1024 * 1024:
        raise _bad("audio_file must be at most 5 MB")
