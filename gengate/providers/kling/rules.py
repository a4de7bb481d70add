"""What Kling accepts on each create (kling.md §4.1-§4.3), checked before anything is saved: a bad
field is Kling's parameter error (code 1201, HTTP 400) with the field named in the message."""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gengate.core.errors import InvalidRequest

MAX_PROMPT = 2500
VIDEO_ASPECTS = ("16:9", "9:16", "1:1")
IMAGE_ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")
CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_MIN_SIDE = 300
IMAGE_MAX_RATIO = 2.5


@dataclass(frozen=True)
class VideoModel:
    """What one Kling video model offers: durations (whole seconds), cfg_scale, sound."""

    durations: tuple[int, ...] = (5, 10)
    cfg_scale: bool = True
    sound: bool = False


V3 = VideoModel(durations=tuple(range(3, 16)), cfg_scale=False, sound=True)
VIDEO_MODELS: dict[str, VideoModel] = {
    "kling-v1": VideoModel(),
    "kling-v1-5": VideoModel(),
    "kling-v1-6": VideoModel(),
    "kling-v2-master": VideoModel(cfg_scale=False),
    "kling-v2-1": VideoModel(cfg_scale=False),
    "kling-v2-1-master": VideoModel(cfg_scale=False),
    "kling-v2-5-turbo": VideoModel(cfg_scale=False),
    "kling-v2-6": VideoModel(cfg_scale=False, sound=True),
    "kling-v3": V3,
}
IMAGE_TO_VIDEO_ONLY = frozenset({"kling-v1-5", "kling-v2-1"})
IMAGE_MODELS = frozenset({"kling-v1", "kling-v1-5", "kling-v2", "kling-v2-new", "kling-v2-1"})
# A model name gengate cannot place (an operator's alias, a newer model): Kling's widest rules.
ANY_VIDEO_MODEL = V3


def bad(message: str) -> InvalidRequest:
    """Kling's parameter error: code 1201, HTTP 400."""
    return InvalidRequest(message, code="1201")


def model_of(body: Mapping[str, Any], default: str = "kling-v1") -> str:
    """`model_name`, or the legacy `model`, or Kling's default."""
    for name in ("model_name", "model"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise bad(f"{name} must be a non-empty string")
        return value.strip()
    return default


def text(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise bad(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise bad(f"{name} must be a string")
    if required and not value.strip():
        raise bad(f"{name} must not be empty")
    if len(value) > MAX_PROMPT:
        raise bad(f"{name} must be at most {MAX_PROMPT} characters")
    return value


def one_of(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise bad(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def fraction(body: Mapping[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise bad(f"{name} must be a number from 0 to 1")


def duration(body: Mapping[str, Any], model: VideoModel) -> int:
    """Seconds of the clip: a string ("5") as Kling documents it; a whole number is taken too."""
    raw = body.get("duration")
    if raw is None:
        return 5 if 5 in model.durations else model.durations[0]
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        seconds = int(raw.strip())
    elif isinstance(raw, int) and not isinstance(raw, bool):
        seconds = raw
    else:
        seconds = -1
    if seconds not in model.durations:
        offered = model.durations
        text_ = (f'"{offered[0]}" to "{offered[-1]}"' if len(offered) > 2
                 else " or ".join(f'"{d}"' for d in offered))
        raise bad(f"duration must be {text_} for this model")
    return seconds


def camera_control(value: Any) -> None:
    if not isinstance(value, dict):
        raise bad("camera_control must be an object")
    kind = value.get("type")
    if kind not in CAMERA_TYPES:
        raise bad(f"camera_control.type must be one of {', '.join(CAMERA_TYPES)}")
    config = value.get("config")
    if kind != "simple":
        if config is not None:
            raise bad(f"camera_control.config must be empty for type {kind}")
        return
    if not isinstance(config, dict):
        raise bad("camera_control.config is required for type simple")
    moves = 0
    for axis in CAMERA_AXES:
        v = config.get(axis, 0)
        if isinstance(v, bool) or not isinstance(v, int | float) or not -10 <= v <= 10:
            raise bad(f"camera_control.config.{axis} must be a number from -10 to 10")
        moves += v != 0
    if moves != 1:
        raise bad("camera_control.config must move exactly one axis (one non-zero value)")


def image_input(value: Any, name: str) -> None:
    """An image as Kling takes it: an http(s) URL, or bare base64 (no `data:` prefix) of a JPEG or
    PNG of at most 10 MB, each side at least 300 px, width:height within 1:2.5 to 2.5:1."""
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{name} must be an image URL or base64 string")
    if value.startswith(("http://", "https://")):
        return
    if value.startswith("data:"):
        raise bad(f"{name}: send the base64 text without a data: prefix")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{name} is neither an http(s) URL nor valid base64") from None
    if len(raw) > IMAGE_MAX_BYTES:
        raise bad(f"{name} must be at most 10 MB")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            fmt, (width, height) = img.format, img.size
    except (UnidentifiedImageError, OSError, ValueError):
        raise bad(f"{name} is not a readable JPEG or PNG image") from None
    if fmt not in ("JPEG", "PNG"):
        raise bad(f"{name} must be a JPEG or PNG image")
    if min(width, height) < IMAGE_MIN_SIDE:
        raise bad(f"{name} must be at least {IMAGE_MIN_SIDE} px on each side (got {width}x{height})")
    if max(width / height, height / width) > IMAGE_MAX_RATIO:
        raise bad(f"{name} must have a width:height between 1:2.5 and 2.5:1")


def masks(body: Mapping[str, Any]) -> bool:
    """Motion brush (`static_mask`, `dynamic_masks`); True when any is present."""
    static, dynamic = body.get("static_mask"), body.get("dynamic_masks")
    if static is not None and (not isinstance(static, str) or not static):
        raise bad("static_mask must be an image URL or base64 string")
    if dynamic is None:
        return static is not None
    if not isinstance(dynamic, list) or not 1 <= len(dynamic) <= 6:
        raise bad("dynamic_masks must be an array of 1 to 6 masks")
    for i, item in enumerate(dynamic):
        if not isinstance(item, dict) or not isinstance(item.get("mask"), str) or not item["mask"]:
            raise bad(f"dynamic_masks[{i}].mask is required")
        points = item.get("trajectories")
        if not isinstance(points, list) or not 2 <= len(points) <= 77:
            raise bad(f"dynamic_masks[{i}].trajectories must hold 2 to 77 points")
        for p in points:
            if (not isinstance(p, dict) or any(isinstance(p.get(c), bool) or not isinstance(p.get(c), int | float)
                                               for c in ("x", "y"))):
                raise bad(f"dynamic_masks[{i}].trajectories must be points {{x, y}}")
    return True


def count(body: Mapping[str, Any]) -> int:
    raw = body.get("n", 1)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) \
            or raw != int(raw) or not 1 <= raw <= 9:
        raise bad("n must be an integer from 1 to 9")
    return int(raw)


def optional_object(body: Mapping[str, Any], name: str) -> None:
    if body.get(name) is not None and not isinstance(body[name], dict):
        raise bad(f"{name} must be an object")


def optional_string(body: Mapping[str, Any], name: str, limit: int = 2048) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise bad(f"{name} must be a non-empty string of at most {limit} characters")
    return value
