"""What Runway accepts in a create body (runway.md §3), checked before anything is saved or sent.

Every refusal is a `ValidationFailed` carrying Runway's `issues` (`code`, `path`, `message`/`values`),
so the client sees the same 400 the provider would give. Only the models gengate prices are known:
any other model name is an `invalid_value` on `model`, as Runway's own union refuses it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gengate.providers.runway.errors import ValidationFailed

MAX_PROMPT_UNITS = 1000  # UTF-16 code units
MAX_DATA_URI_BYTES = 5 * 1024 * 1024
MAX_SEED = 4_294_967_295
DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp|gif);base64,", re.IGNORECASE)
VIDEO_DATA_URI = re.compile(r"^data:video/(mp4|quicktime|webm);base64,", re.IGNORECASE)
AUDIO_DATA_URI = re.compile(r"^data:audio/(mpeg|mp3|wav|x-wav|wave|ogg|flac|aac|mp4|webm);base64,", re.IGNORECASE)
TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,15}$")
THRESHOLDS = ("auto", "low")


@dataclass(frozen=True)
class VideoModel:
    name: str
    ratios: tuple[str, ...]
    durations: tuple[int, ...]
    default_duration: int
    positions: tuple[str, ...]  # where a prompt image may go: ("first",) or ("first", "last")


@dataclass(frozen=True)
class ImageModel:
    name: str
    ratios_720p: tuple[str, ...]
    ratios_1080p: tuple[str, ...]
    needs_references: bool

    def resolution(self, ratio: str) -> str:
        return "720p" if ratio in self.ratios_720p else "1080p"


VIDEO_MODELS: dict[str, VideoModel] = {m.name: m for m in (
    VideoModel("gen4_turbo", ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"), (5, 10), 10,
               ("first",)),
    VideoModel("gen3a_turbo", ("1280:768", "768:1280"), (5, 10), 10, ("first", "last")),
)}
_IMAGE_720P = ("1280:720", "720:1280", "720:720", "960:720", "720:960", "1680:720")
_IMAGE_1080P = ("1920:1080", "1080:1920", "1024:1024", "1360:768", "1080:1080", "1168:880", "1440:1080", "1080:1440",
                "1808:768", "2112:912")
IMAGE_MODELS: dict[str, ImageModel] = {m.name: m for m in (
    ImageModel("gen4_image", _IMAGE_720P, _IMAGE_1080P, needs_references=False),
    ImageModel("gen4_image_turbo", _IMAGE_720P, _IMAGE_1080P, needs_references=True),
)}


@dataclass(frozen=True)
class Checked:
    model: str
    units: dict[str, float]


class _Issues:
    """Collects every problem of a body, as Runway reports them all at once."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, path: Sequence[str | int], message: str, code: str = "custom", **extra: Any) -> None:
        self.items.append({"code": code, "path": list(path), "message": message, **extra})

    def invalid_value(self, path: Sequence[str | int], values: Sequence[Any], message: str) -> None:
        self.add(path, message, "invalid_value", values=list(values))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def _body(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed([{"code": "invalid_type", "expected": "object", "path": [],
                                 "message": "Expected object"}])
    return body


def _model(body: Mapping[str, Any], known: Mapping[str, Any], issues: _Issues) -> str | None:
    model = body.get("model")
    if model is None:
        issues.add(["model"], "Required", "invalid_type", expected="string")
    elif not isinstance(model, str) or model not in known:
        issues.invalid_value(["model"], sorted(known), f"Invalid input: expected one of {', '.join(sorted(known))}")
    else:
        return str(model)
    return None


def _is_int(value: Any) -> bool:
    """A whole number: JSON does not tell 5 from 5.0, and neither does Runway (a JavaScript API)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or value.is_integer()


def _prompt_text(body: Mapping[str, Any], issues: _Issues, required: bool) -> None:
    text = body.get("promptText")
    if text is None:
        if required:
            issues.add(["promptText"], "Required", "invalid_type", expected="string")
        return
    if not isinstance(text, str):
        issues.add(["promptText"], "Expected string", "invalid_type", expected="string")
    elif not text.strip():
        issues.add(["promptText"], "promptText must be a non-empty string", "too_small")
    elif len(text.encode("utf-16-le")) // 2 > MAX_PROMPT_UNITS:
        issues.add(["promptText"], f"promptText must be at most {MAX_PROMPT_UNITS} characters", "too_big",
                   maximum=MAX_PROMPT_UNITS)


def _common(body: Mapping[str, Any], issues: _Issues) -> None:
    seed = body.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed <= MAX_SEED):
        issues.add(["seed"], f"seed must be an integer from 0 to {MAX_SEED}", "invalid_type", expected="integer")
    moderation = body.get("contentModeration")
    if moderation is not None:
        if not isinstance(moderation, dict):
            issues.add(["contentModeration"], "Expected object", "invalid_type", expected="object")
        elif "publicFigureThreshold" in moderation and moderation["publicFigureThreshold"] not in THRESHOLDS:
            issues.invalid_value(["contentModeration", "publicFigureThreshold"], THRESHOLDS,
                                 "publicFigureThreshold must be auto or low")


def media_uri(value: Any, path: Sequence[str | int], issues: _Issues, *, video: bool = False,
              audio: bool = False) -> None:
    """An HTTPS URL on a domain name (Runway fetches it itself), an image (`video`: a video) data
    URI up to 5 MB, or a `runway://` URI of an upload."""
    if not isinstance(value, str) or not value:
        issues.add(path, "Expected a non-empty string (an HTTPS URL or a data URI)", "invalid_type",
                   expected="string")
        return
    if value.startswith("runway://"):
        return  # an upload: resolved (for the calling key only) once the body is valid (uploads.py)
    if value[:5].lower() == "data:":
        match = (AUDIO_DATA_URI if audio else VIDEO_DATA_URI if video else DATA_URI).match(value)
        if match is None:
            issues.add(path, "A data URI must be data:audio/(mpeg|wav|ogg|flac|aac|mp4|webm);base64,..." if audio
                       else "A data URI must be data:video/(mp4|quicktime|webm);base64,..." if video
                       else "A data URI must be data:image/(png|jpeg|webp|gif);base64,...")
            return
        payload = value[match.end():]
        if len(payload) * 3 // 4 > MAX_DATA_URI_BYTES:
            issues.add(path, "The data URI is larger than 5 MB", "too_big", maximum=MAX_DATA_URI_BYTES)
            return
        try:
            base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            issues.add(path, "The data URI is not valid base64")
        return
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        issues.add(path, "Invalid URL")
        return
    if parts.scheme.lower() != "https":
        issues.add(path, "Only HTTPS URLs and data URIs are supported")
        return
    if not host or "." not in host:
        issues.add(path, "The URL must have a domain name")
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    issues.add(path, "The URL must use a domain name, not an IP address")


def _prompt_image(body: Mapping[str, Any], model: VideoModel | None, issues: _Issues) -> None:
    image = body.get("promptImage")
    if image is None:
        issues.add(["promptImage"], "Required", "invalid_type", expected="string")
        return
    if isinstance(image, str):
        media_uri(image, ["promptImage"], issues)
        return
    if not isinstance(image, list) or not image:
        issues.add(["promptImage"], "Expected a string or a non-empty array of {uri, position}", "invalid_type")
        return
    positions = model.positions if model else ("first", "last")
    if len(image) > len(positions):
        issues.add(["promptImage"], f"At most {len(positions)} prompt image(s) for this model", "too_big",
                   maximum=len(positions))
    seen: set[str] = set()
    for i, item in enumerate(image):
        if not isinstance(item, dict):
            issues.add(["promptImage", i], "Expected object", "invalid_type", expected="object")
            continue
        media_uri(item.get("uri"), ["promptImage", i, "uri"], issues)
        position = item.get("position")
        if position not in positions:
            issues.invalid_value(["promptImage", i, "position"], positions,
                                 f"position must be {' or '.join(positions)} for this model")
        elif position in seen:
            issues.add(["promptImage", i, "position"], f"Two prompt images at position {position}")
        else:
            seen.add(position)


def check_image_to_video(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, VIDEO_MODELS, issues)
    model = VIDEO_MODELS.get(name or "")
    _prompt_image(body, model, issues)
    _prompt_text(body, issues, required=False)
    _common(body, issues)
    _ratio(body, issues, model.ratios if model is not None else None)
    duration = body.get("duration")
    if duration is not None and model is not None and (not _is_int(duration) or duration not in model.durations):
        issues.invalid_value(["duration"], model.durations,
                             f"duration must be {' or '.join(map(str, model.durations))} (seconds)")
    issues.raise_if_any()
    assert model is not None
    seconds = float(duration if duration is not None else model.default_duration)
    return Checked(model.name, {"seconds": seconds, f"model:{model.name}": 1.0})


def _ratio(body: dict[str, Any], issues: _Issues, allowed: tuple[str, ...] | None) -> None:
    """`ratio` is required and, once the model is known (`allowed`), one of its ratios."""
    ratio = body.get("ratio")
    if ratio is None:
        issues.add(["ratio"], "Required", "invalid_type", expected="string")
    elif allowed is not None and ratio not in allowed:
        issues.invalid_value(["ratio"], allowed, f"ratio must be one of {', '.join(allowed)}")


def check_text_to_image(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, IMAGE_MODELS, issues)
    model = IMAGE_MODELS.get(name or "")
    _prompt_text(body, issues, required=True)
    _common(body, issues)
    _ratio(body, issues, model.ratios_1080p + model.ratios_720p if model is not None else None)
    refs = body.get("referenceImages")
    if refs is None:
        if model is not None and model.needs_references:
            issues.add(["referenceImages"], f"{model.name} requires at least one reference image", "too_small",
                       minimum=1)
    elif not isinstance(refs, list):
        issues.add(["referenceImages"], "Expected array", "invalid_type", expected="array")
    else:
        if len(refs) > 3:
            issues.add(["referenceImages"], "At most 3 reference images", "too_big", maximum=3)
        if model is not None and model.needs_references and not refs:
            issues.add(["referenceImages"], f"{model.name} requires at least one reference image", "too_small",
                       minimum=1)
        for i, ref in enumerate(refs):
            if not isinstance(ref, dict):
                issues.add(["referenceImages", i], "Expected object", "invalid_type", expected="object")
                continue
            media_uri(ref.get("uri"), ["referenceImages", i, "uri"], issues)
            tag = ref.get("tag")
            if tag is not None and (not isinstance(tag, str) or not TAG.match(tag)):
                issues.add(["referenceImages", i, "tag"], "A tag is 3-16 letters, digits or _, starting with a letter")
    issues.raise_if_any()
    assert model is not None
    resolution = model.resolution(str(body["ratio"]))
    return Checked(model.name, {"images": 1.0, f"model:{model.name}": 1.0, f"res:{resolution}": 1.0})


@dataclass(frozen=True)
class TextVideoModel:
    name: str
    ratios: tuple[str, ...]
    durations: tuple[int, ...]
    default_duration: int | None  # None: `duration` is required
    audio: bool  # whether the model takes `audio` (and `negativePrompt`)


# runway.md §3.2 and the `runwayml` 5.24 `text_to_video` params: gen4.5 needs a duration of 2-10 s;
# veo3.1 and veo3.1_fast take 4, 6 or 8 s (8 by default) and may add audio.
_VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
TEXT_VIDEO_MODELS: dict[str, TextVideoModel] = {m.name: m for m in (
    TextVideoModel("gen4.5", ("1280:720", "720:1280"), tuple(range(2, 11)), None, audio=False),
    TextVideoModel("veo3.1", _VEO_RATIOS, (4, 6, 8), 8, audio=True),
    TextVideoModel("veo3.1_fast", _VEO_RATIOS, (4, 6, 8), 8, audio=True),
)}


def check_text_to_video(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, TEXT_VIDEO_MODELS, issues)
    model = TEXT_VIDEO_MODELS.get(name or "")
    _prompt_text(body, issues, required=True)
    _common(body, issues)
    _ratio(body, issues, model.ratios if model is not None else None)
    duration = body.get("duration")
    if model is not None:
        if duration is None and model.default_duration is None:
            issues.add(["duration"], "Required", "invalid_type", expected="integer")
        elif duration is not None and (not _is_int(duration) or duration not in model.durations):
            allowed = (f"an integer from {model.durations[0]} to {model.durations[-1]}" if len(model.durations) > 3
                       else " or ".join(map(str, model.durations)))
            issues.invalid_value(["duration"], model.durations, f"duration must be {allowed} (seconds)")
    audio = body.get("audio")
    if audio is not None and (not isinstance(audio, bool) or (model is not None and not model.audio)):
        issues.add(["audio"], "audio must be a boolean, for the veo models only", "invalid_type", expected="boolean")
    negative = body.get("negativePrompt")
    if negative is not None and (not isinstance(negative, str) or (model is not None and not model.audio)):
        issues.add(["negativePrompt"], "negativePrompt must be a string, for the veo models only", "invalid_type",
                   expected="string")
    issues.raise_if_any()
    assert model is not None
    seconds = float(duration if duration is not None else model.default_duration or 0)
    units = {"seconds": seconds, f"model:{model.name}": 1.0}
    if model.audio and audio is not False:  # Runway's veo models make sound unless told not to
        units["audio"] = 1.0
    return Checked(model.name, units)


UPSCALE_IMAGE_MODELS = ("magnific_precision_upscaler_v2",)
SCALE_FACTORS = (2, 4, 8, 16)
UPSCALE_FLAVORS = ("sublime", "photo", "photo_denoiser")


def _percent(body: Mapping[str, Any], names: Sequence[str], issues: _Issues) -> None:
    for name in names:
        value = body.get(name)
        if value is not None and (not _is_int(value) or not 0 <= value <= 100):
            issues.add([name], f"{name} must be an integer from 0 to 100", "invalid_type", expected="integer")


def check_image_upscale(raw: Any) -> Checked:
    """`image_upscale` (`runwayml` 5.24): `model`, `imageUri`, optional `scaleFactor` (2 by default),
    `flavor`, `sharpen`, `smartGrain`, `ultraDetail`. One image, priced per image."""
    body = _body(raw)
    issues = _Issues()
    name = _model(body, dict.fromkeys(UPSCALE_IMAGE_MODELS), issues)
    if body.get("imageUri") is None:
        issues.add(["imageUri"], "Required", "invalid_type", expected="string")
    else:
        media_uri(body.get("imageUri"), ["imageUri"], issues)
    scale = body.get("scaleFactor")
    if scale is not None and (not _is_int(scale) or scale not in SCALE_FACTORS or isinstance(scale, bool)):
        issues.invalid_value(["scaleFactor"], SCALE_FACTORS, "scaleFactor must be 2, 4, 8 or 16")
    flavor = body.get("flavor")
    if flavor is not None and flavor not in UPSCALE_FLAVORS:
        issues.invalid_value(["flavor"], UPSCALE_FLAVORS, f"flavor must be one of {', '.join(UPSCALE_FLAVORS)}")
    _percent(body, ("sharpen", "smartGrain", "ultraDetail"), issues)
    issues.raise_if_any()
    assert name is not None
    return Checked(name, {"images": 1.0, f"model:{name}": 1.0, "res:upscale": 1.0})


# video_upscale (`runwayml` 5.24; runway.md §3.2): the input's length is unknown before Runway reads it,
# so the longest input is reserved and the settlement follows the cost Runway reports.
MAX_UPSCALE_SECONDS = 40
UPSCALE_RESOLUTIONS = ("720p", "1k", "2k", "4k")
VIDEO_FLAVORS = ("vivid", "natural")
FRAME_RATES = ("24", "25", "30", "48", "50", "60", "120", "23_98", "29_97", "59_94")
VIDEO_UPSCALE_MODELS = ("magnific_video_upscaler_creative", "enhance_frame_rate")


def check_video_upscale(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, dict.fromkeys(VIDEO_UPSCALE_MODELS), issues)
    if body.get("videoUri") is None:
        issues.add(["videoUri"], "Required", "invalid_type", expected="string")
    else:
        media_uri(body.get("videoUri"), ["videoUri"], issues, video=True)
    if name == "magnific_video_upscaler_creative":
        if body.get("resolution") is not None and body["resolution"] not in UPSCALE_RESOLUTIONS:
            issues.invalid_value(["resolution"], UPSCALE_RESOLUTIONS, "resolution must be 720p, 1k, 2k or 4k")
        if body.get("flavor") is not None and body["flavor"] not in VIDEO_FLAVORS:
            issues.invalid_value(["flavor"], VIDEO_FLAVORS, "flavor must be vivid or natural")
        if body.get("fpsBoost") is not None and not isinstance(body["fpsBoost"], bool):
            issues.add(["fpsBoost"], "Expected boolean", "invalid_type", expected="boolean")
        _percent(body, ("creativity", "sharpen", "smartGrain"), issues)
    elif name == "enhance_frame_rate":
        rate = body.get("targetFramerate")
        if rate is None:
            issues.add(["targetFramerate"], "Required", "invalid_type", expected="string")
        elif rate not in FRAME_RATES:
            issues.invalid_value(["targetFramerate"], FRAME_RATES,
                                 f"targetFramerate must be one of {', '.join(FRAME_RATES)}")
    issues.raise_if_any()
    assert name is not None
    return Checked(name, {"seconds": float(MAX_UPSCALE_SECONDS), f"model:{name}": 1.0, "upscale": 1.0})
