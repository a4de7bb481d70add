"""An OpenAI video request (openai.md §8) read and checked, and filled into a route's body template."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gengate.core.errors import InvalidRequest
from gengate.providers.videos.table import Call, Route, VideoModel

MAX_PROMPT = 10_000
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX]\s*(\d{2,5})\s*$")
_DATA_URL = re.compile(r"^data:(image/[a-zA-Z0-9.+-]+);base64,(.+)$", re.DOTALL)
IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp", b"GIF8": "image/gif"}


@dataclass(frozen=True)
class VideoRequest:
    """What the client asked for, checked: the body a route is filled from."""

    model: str
    prompt: str
    seconds: int  # rounded to the model's offered duration
    asked_seconds: str  # as sent, for the record
    size: str
    aspect: str
    image: str | None  # an http(s) URL or a data:image/...;base64 URL


def read_request(body: Mapping[str, Any], entry: VideoModel) -> VideoRequest:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("prompt is required", param="prompt", code="missing_required_parameter")
    if len(prompt) > MAX_PROMPT:
        raise InvalidRequest(f"prompt is at most {MAX_PROMPT} characters", param="prompt")
    asked = body.get("seconds", "4")
    seconds = round_seconds(asked, entry.durations)
    size = body.get("size") or entry.default_size
    if not isinstance(size, str):
        raise InvalidRequest("size must be a string such as 1280x720", param="size")
    image = body.get("input_reference")
    if image is not None and not isinstance(image, str):
        raise InvalidRequest("input_reference must be an image file or {image_url}", param="input_reference")
    return VideoRequest(model=entry.name, prompt=prompt, seconds=seconds, asked_seconds=str(asked),
                        size=size.strip().lower(), aspect=aspect_of(size), image=image)


def round_seconds(raw: Any, offered: tuple[int, ...]) -> int:
    """`seconds` rounded up to the nearest duration the model offers, else its longest."""
    text = str(raw).strip() if isinstance(raw, str | int | float) and not isinstance(raw, bool) else ""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest("seconds must be a positive number of seconds, such as \"4\"", param="seconds")
    return next((d for d in offered if d >= value - 1e-9), offered[-1])


def aspect_of(size: str) -> str:
    match = _SIZE.match(size)
    if match is None:
        raise InvalidRequest("size must be WIDTHxHEIGHT, such as 1280x720 or 720x1280", param="size")
    width, height = int(match.group(1)), int(match.group(2))
    if width == 0 or height == 0:
        raise InvalidRequest("size must be WIDTHxHEIGHT with both sides above zero", param="size")
    ratio = width / height
    return "16:9" if ratio > 1.2 else "9:16" if ratio < 1 / 1.2 else "1:1"


def image_data_url(data: bytes) -> str:
    """An uploaded input_reference as a data URL, refused unless it is an image (the bytes decide its
    type, not the declared one)."""
    kind = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise InvalidRequest("input_reference must be a PNG, JPEG, WebP or GIF image", param="input_reference")
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def check_image(value: str) -> str:
    """An input_reference given as a URL: http(s) or a base64 data URL of an image."""
    if value.startswith(("https://", "http://")):
        return value
    match = _DATA_URL.match(value)
    if match is None:
        raise InvalidRequest("input_reference.image_url must be an https URL or a data:image/...;base64 URL",
                             param="input_reference")
    try:
        base64.b64decode(match.group(2)[:4096 // 4 * 4], validate=True)
    except ValueError:
        raise InvalidRequest("input_reference holds invalid base64", param="input_reference") from None
    return value


def pick_call(route: Route, req: VideoRequest) -> Call:
    if req.image is None:
        if route.text is None:
            raise InvalidRequest(f"{req.model} makes videos from an image: input_reference is required",
                                 param="input_reference", code="missing_required_parameter")
        return route.text
    if route.image is None:
        raise InvalidRequest(f"{req.model} takes no input_reference", param="input_reference")
    return route.image


async def fill(template: Any, req: VideoRequest, route: Route,
               host_image: Callable[[str], Awaitable[str]]) -> Any:
    """The template with its placeholders replaced; `host_image` turns a data URL into an https URL."""
    values: dict[str, Any] = {"$model": req.model, "$prompt": req.prompt, "$seconds": req.seconds,
                              "$seconds_str": str(req.seconds), "$seconds_s": f"{req.seconds}s",
                              "$size": req.size, "$aspect": req.aspect,
                              "$ratio": route.ratios.get(req.aspect, req.aspect)}

    async def value(name: str) -> Any:
        if name in values:
            return values[name]
        image = req.image or ""
        if name == "$image":
            return image
        if name == "$image_b64":
            match = _DATA_URL.match(image)
            return match.group(2) if match else image
        if name == "$image_url":
            return image if image.startswith(("https://", "http://")) else await host_image(image)
        return name

    async def walk(node: Any) -> Any:
        if isinstance(node, str):
            return await value(node) if node.startswith("$") else node
        if isinstance(node, Mapping):
            return {k: await walk(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [await walk(v) for v in node]
        return node

    return await walk(template)
