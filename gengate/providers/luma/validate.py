"""Checking a Luma create body (luma.md §3) the way Luma's own validation does: a field of the wrong
type or outside its enum is a 422; a keyframe naming a generation this key does not have is a 400.

`generation` keyframes are the one reference a Luma create makes: they are resolved for the calling
key only and mapped to the upstream's id, and the new task is pinned to the account that made them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gengate.core.adaptor import Parent, Resolver
from gengate.core.errors import InvalidRequest, ReferenceNotFound
from gengate.core.states import TaskState

ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
DURATIONS = {"5s": 5.0, "9s": 9.0}
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
IMAGE_FORMATS = ("jpg", "png")
DEFAULT_VIDEO_MODEL = "ray-2"  # what `POST /generations` (lumaai 1.0, no `model`) gets
DEFAULT_RESOLUTION = "720p"
# Not sent upstream: gengate delivers the callback itself, and waits for a `sync` image itself.
LOCAL_FIELDS = ("callback_url", "sync", "sync_timeout")


def invalid(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, status=422, param=param)


@dataclass
class Checked:
    """A valid create: what the client sent, what goes upstream, and what it costs."""

    action: str  # video | image
    model: str
    request: dict[str, Any]
    upstream: dict[str, Any]
    units: dict[str, float]
    parent: Parent | None = None
    callback_url: str | None = None


def _typed(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise invalid(f"{name} must be {what}", name)
    return value


def _enum(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}", name)
    return str(value)


def _model(body: Mapping[str, Any], family: str, default: str | None) -> str:
    """The model named (or the path's default): Luma's video models are `ray-*`, its image models
    `photon-*`; whether a channel serves it is the router's question."""
    model = body.get("model")
    if model is None:
        if default is None:
            raise invalid("model: field required", "model")
        return default
    if not isinstance(model, str) or not model.startswith(family + "-"):
        raise invalid(f"model must be a {family} model (e.g. {family}-{'2' if family == 'ray' else '1'})",
                      "model")
    return model


def _common(body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    _typed(body, "prompt", str, "a string")
    _typed(body, "callback_url", str, "a string")
    if body.get("generation_type") not in (None, kind):
        raise invalid(f"generation_type must be {kind}", "generation_type")
    return body


async def check_video(body: Any, resolver: Resolver, *, model_required: bool) -> Checked:
    body = _common(body, "video")
    model = _model(body, "ray", None if model_required else DEFAULT_VIDEO_MODEL)
    _enum(body, "aspect_ratio", ASPECTS, "16:9")
    _typed(body, "loop", bool, "a boolean")
    duration = _enum(body, "duration", tuple(DURATIONS), "5s")
    resolution = _enum(body, "resolution", RESOLUTIONS, DEFAULT_RESOLUTION)
    concepts = _typed(body, "concepts", list, "a list")
    for concept in concepts or []:
        if not isinstance(concept, dict) or not isinstance(concept.get("key"), str):
            raise invalid("each concept must be {\"key\": string}", "concepts")
    keyframes = _typed(body, "keyframes", dict, "an object") or {}
    for name, frame in keyframes.items():
        _check_keyframe(name, frame)
    prompt = body.get("prompt")
    if not (prompt and prompt.strip()) and not keyframes:
        raise invalid("prompt: a prompt or keyframes are required", "prompt")

    request = copy.deepcopy(body)
    upstream = {k: v for k, v in copy.deepcopy(body).items() if k not in LOCAL_FIELDS}
    upstream["model"] = model
    parent = await _resolve_generations(upstream.get("keyframes") or {}, resolver)
    units = {"seconds": DURATIONS[duration], "res:" + resolution: 1.0, "model:" + model: 1.0}
    return Checked("video", model, request, upstream, units, parent, body.get("callback_url"))


def _check_keyframe(name: str, frame: Any) -> None:
    if name not in ("frame0", "frame1"):
        raise invalid(f"keyframes.{name} is not a keyframe: use frame0 or frame1", "keyframes")
    if not isinstance(frame, dict):
        raise invalid(f"keyframes.{name} must be an object", f"keyframes.{name}")
    kind = frame.get("type")
    if kind == "image":
        url = frame.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid(f"keyframes.{name}.url must be a public http(s) URL", f"keyframes.{name}.url")
    elif kind == "generation":
        if not isinstance(frame.get("id"), str) or not frame["id"].strip():
            raise invalid(f"keyframes.{name}.id must be a generation id", f"keyframes.{name}.id")
    else:
        raise invalid(f"keyframes.{name}.type must be image or generation", f"keyframes.{name}.type")


async def _resolve_generations(keyframes: dict[str, Any], resolver: Resolver) -> Parent | None:
    """Map each `generation` keyframe (this key's completed video) to its upstream id, in place.
    Every referenced generation must live on one upstream account: the new task goes there."""
    parent: Parent | None = None
    for name, frame in keyframes.items():
        if frame.get("type") != "generation":
            continue
        owned = await resolver.task(frame["id"], "luma")
        if owned is None:
            raise ReferenceNotFound(f"keyframes.{name}: generation {frame['id']} not found")
        if owned.action != "video":
            raise InvalidRequest(f"keyframes.{name}: generation {frame['id']} is not a video")
        if owned.state is not TaskState.SUCCEEDED or owned.upstream_id is None:
            raise InvalidRequest(f"keyframes.{name}: generation {frame['id']} is not completed")
        if parent is not None and parent.secret_id != owned.parent.secret_id:
            raise InvalidRequest("keyframes refer to generations that cannot be combined")
        parent = owned.parent
        frame["id"] = owned.upstream_id
    return parent


async def check_image(body: Any) -> Checked:
    body = _common(body, "image")
    model = _model(body, "photon", None)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("prompt: field required", "prompt")
    _enum(body, "aspect_ratio", ASPECTS, "16:9")
    _enum(body, "format", IMAGE_FORMATS, "jpg")
    for name in ("image_ref", "style_ref"):
        refs = _typed(body, name, list, "a list") or []
        if len(refs) > 4:
            raise invalid(f"{name} takes at most 4 images", name)
        for ref in refs:
            _check_ref(ref, name)
    modify = _typed(body, "modify_image_ref", dict, "an object")
    if modify is not None:
        _check_ref(modify, "modify_image_ref")
    character = _typed(body, "character_ref", dict, "an object")
    for identity, value in (character or {}).items():
        images = value.get("images") if isinstance(value, dict) else None
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise invalid(f"character_ref.{identity}.images must be a list of URLs", "character_ref")
    _typed(body, "sync", bool, "a boolean")
    timeout = _typed(body, "sync_timeout", (int, float), "a number of seconds")
    if timeout is not None and not 0 < timeout <= 600:
        raise invalid("sync_timeout must be between 0 and 600 seconds", "sync_timeout")

    request = copy.deepcopy(body)
    upstream = {k: v for k, v in copy.deepcopy(body).items() if k not in LOCAL_FIELDS}
    units = {"count": 1.0, "image": 1.0, "model:" + model: 1.0}
    return Checked("image", model, request, upstream, units, None, body.get("callback_url"))


def _check_ref(ref: Any, name: str) -> None:
    if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
        raise invalid(f"{name} must be {{\"url\": string, \"weight\": number}}", name)
    weight = ref.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)
                               or not 0 <= weight <= 1):
        raise invalid(f"{name} weight must be a number from 0 to 1", name)
