"""Which provider serves each `/v1/videos` model, and how an OpenAI video request becomes its create.

One `VideoModel` per model name. Its `routes` are tried in order: the first whose provider has a
channel serving the model takes the request. A route's `text` / `image` call is the provider-native
body as a template: a string value that is exactly one of the placeholders below is replaced (lists
and objects are walked), everything else is sent as written.

    $model        the model the client sent            $prompt       the prompt
    $seconds      whole seconds (int), rounded up to   $seconds_str  the same, as a string ("5")
                  the nearest duration the model offers $seconds_s   the same with an "s" ("5s", Luma)
    $aspect       "16:9" | "9:16" | "1:1" from `size`  $ratio        the route's `ratios[aspect]`
    $size         the size as sent ("1280x720")
    $image        the input_reference as given: an https URL or a data:image/...;base64 URL
    $image_b64    bare base64 (an https URL is kept as it is)
    $image_url    an https URL (an uploaded image is stored by gengate and given as a signed URL)

A call's `action` is the provider action when one adaptor serves several create paths (Vidu platform,
Kling); the adaptor then offers `prepare_action(action, body, resolver)`. `None`: the body alone says
what it is (Vidu web `type`, Runway, Luma), and `prepare(body, resolver)` is called (also when the
adaptor has no `prepare_action`: its `prepare` must then tell the action from the body).

Adding a model is adding an entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    action: str | None
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Route:
    provider: str
    text: Call | None  # None: the model needs an input_reference (400 with param input_reference)
    image: Call | None  # None: the model takes no input_reference
    video_fields: tuple[str, ...]  # output URL fields holding the video, first present wins
    thumbnail_fields: tuple[str, ...] = ()  # output URL fields holding a still image (variant=thumbnail)
    duration_path: tuple[str, ...] = ()  # where an output's meta says how long the produced clip is (a
    # number or a numeric string, e.g. Kling's "5.1"); without it the object shows the rounded request
    ratios: Mapping[str, str] = field(default_factory=dict)  # aspect -> the provider's `$ratio` value


@dataclass(frozen=True)
class VideoModel:
    name: str
    durations: tuple[int, ...]  # the clip lengths the model offers, ascending
    routes: tuple[Route, ...]
    default_size: str = "1280x720"  # the size shown when the client sends none (the provider's default)


def _vidu_platform(action_text: str = "text2video", action_image: str = "img2video") -> Route:
    common = {"model": "$model", "prompt": "$prompt", "duration": "$seconds"}
    return Route(
        provider="vidu-ent",
        text=Call(action_text, {**common, "aspect_ratio": "$aspect"}),
        image=Call(action_image, {**common, "images": ["$image"]}),
        video_fields=("url", "watermarked_url"), thumbnail_fields=("cover_url",), duration_path=("duration",))


def _vidu_web() -> Route:
    settings = {"model": "$model", "duration": "$seconds"}
    text = [{"type": "text", "content": "$prompt"}]
    return Route(
        provider="vidu",
        text=Call(None, {"type": "text2video", "input": {"prompts": text},
                         "settings": {**settings, "aspect_ratio": "$aspect"}}),
        image=Call(None, {"type": "img2video",
                          "input": {"prompts": [*text, {"type": "image", "content": "$image"}]},
                          "settings": settings}),
        video_fields=("nomark_uri", "uri", "download_uri"), thumbnail_fields=("cover_uri",),
        duration_path=("video", "duration"))


def _kling() -> Route:
    common = {"model_name": "$model", "prompt": "$prompt", "duration": "$seconds_str"}
    return Route(
        provider="kling",
        text=Call("text2video", {**common, "aspect_ratio": "$aspect"}),
        image=Call("image2video", {**common, "image": "$image_b64"}),
        video_fields=("url",), duration_path=("duration",))


def _runway() -> Route:
    return Route(
        provider="runway", text=None,
        image=Call("image_to_video", {"model": "$model", "promptText": "$prompt", "promptImage": "$image",
                                      "ratio": "$ratio", "duration": "$seconds"}),
        video_fields=("url",), ratios={"16:9": "1280:720", "9:16": "720:1280", "1:1": "960:960"})


def _runway_text() -> Route:
    return Route(
        provider="runway",
        text=Call("text_to_video", {"model": "$model", "promptText": "$prompt", "ratio": "$ratio",
                                    "duration": "$seconds"}),
        image=None, video_fields=("url",), ratios={"16:9": "1280:720", "9:16": "720:1280"})


def _luma() -> Route:
    common = {"model": "$model", "prompt": "$prompt", "duration": "$seconds_s", "aspect_ratio": "$aspect"}
    return Route(
        provider="luma",
        text=Call(None, common),
        image=Call(None, {**common, "keyframes": {"frame0": {"type": "image", "url": "$image_url"}}}),
        video_fields=("video",), thumbnail_fields=("image",))


def _zhipu() -> Route:
    common = {"model": "$model", "prompt": "$prompt", "duration": "$seconds", "size": "$size"}
    return Route(
        provider="zhipu",
        text=Call(None, common),
        image=Call(None, {**common, "image_url": "$image"}),
        video_fields=("url",), thumbnail_fields=("cover_image_url",))


MODELS: dict[str, VideoModel] = {m.name: m for m in (
    # Vidu Q1: 5 s clips. The platform format is its own; a web-format channel serves it too.
    VideoModel("viduq1", (5,), (_vidu_platform(), _vidu_web())),
    # Kling: text2video / image2video by path; durations "5" | "10" as strings, image as bare base64.
    VideoModel("kling-v1", (5, 10), (_kling(),)),
    # Runway gen4_turbo animates an image (no text-only create); ratios in pixels.
    VideoModel("gen4_turbo", (5, 10), (_runway(),)),
    # Runway text to video (no input_reference; 16:9 or 9:16): gen4.5 2-10 s, veo 4, 6 or 8 s.
    VideoModel("gen4.5", tuple(range(2, 11)), (_runway_text(),)),
    VideoModel("veo3.1", (4, 6, 8), (_runway_text(),)),
    VideoModel("veo3.1_fast", (4, 6, 8), (_runway_text(),)),
    # Luma ray-2: "5s" | "9s"; an image becomes the first keyframe; the output's still is the thumbnail.
    VideoModel("ray-2", (5, 9), (_luma(),)),
    # Zhipu CogVideoX-3: 5 or 10 s; an image (URL or base64) animates it; the cover is the thumbnail.
    VideoModel("cogvideox-3", (5, 10), (_zhipu(),), default_size="1920x1080"),
)}
