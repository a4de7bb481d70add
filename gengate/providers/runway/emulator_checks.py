"""Checks the Runway emulator shares between its creates (runway.md §3, §5): what an input URI may
be, the common fields, the model; and the emulated creates added after the first ones
(`video_to_video`). Written from the spec, like emulator.py: nothing from gengate's adaptor.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import av

from gengate.emulator.media import whole_frames

VALIDATION = "Validation of body failed"
FPS = 8  # low, so that rendering stays fast
SHORT_SIDE = 360  # videos are drawn small, in the ratio asked for (the reply states no size)
MAX_DATA_URI = 5 * 1024 * 1024
DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp|gif);base64,", re.IGNORECASE)
VIDEO_DATA_URI = re.compile(r"^data:video/(mp4|quicktime|webm);base64,", re.IGNORECASE)
AUDIO_DATA_URI = re.compile(r"^data:audio/(mpeg|mp3|wav|x-wav|wave|ogg|flac|aac|mp4|webm);base64,", re.IGNORECASE)
UNKNOWN_VIDEO = (640, 360, 5.0)  # an input video behind a URL (the emulator fetches nothing)


class _Invalid(Exception):
    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__(VALIDATION)
        self.issues = issues


def _issue(path: Sequence[str | int], message: str, code: str = "custom", **extra: Any) -> dict[str, Any]:
    return {"code": code, "path": list(path), "message": message, **extra}



def _check_uri(value: Any, path: list[str | int], issues: list[dict[str, Any]], pattern: re.Pattern[str] = DATA_URI
               ) -> None:
    """What Runway can fetch: HTTPS on a domain name (`.invalid` hosts answer 404, as a missing
    asset would), or an image data URI up to 5 MB that decodes."""
    if not isinstance(value, str) or not value:
        issues.append(_issue(path, "Expected string", "invalid_type", expected="string"))
        return
    if value.lower().startswith("data:"):
        match = pattern.match(value)
        try:
            raw = base64.b64decode(value[match.end():], validate=True) if match else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            issues.append(_issue(path, "Invalid data URI."))
        elif len(raw) > MAX_DATA_URI:
            issues.append(_issue(path, "The data URI is larger than 5MB.", "too_big"))
        return
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        host, parts = "", None
    if parts is None or parts.scheme != "https" or not host:
        issues.append(_issue(path, "Invalid URL: only HTTPS URLs and data URIs are supported."))
        return
    try:
        ipaddress.ip_address(host)
        issues.append(_issue(path, "Invalid URL: IP addresses are not supported, use a domain name."))
        return
    except ValueError:
        pass
    if host.endswith(".invalid"):
        issues.append(_issue(path, 'Failed to fetch asset. Received HTTP response code "404".'))


def _common(body: Mapping[str, Any], issues: list[dict[str, Any]], text_required: bool) -> None:
    text = body.get("promptText")
    if text is None and text_required:
        issues.append(_issue(["promptText"], "Required", "invalid_type", expected="string"))
    elif text is not None and (not isinstance(text, str) or not text or len(text.encode("utf-16-le")) > 2000):
        issues.append(_issue(["promptText"], "promptText must be 1-1000 characters", "invalid_type"))
    seed = body.get("seed")
    whole = isinstance(seed, int | float) and not isinstance(seed, bool) and float(seed).is_integer()
    if seed is not None and (not whole or not 0 <= seed <= 4294967295):
        issues.append(_issue(["seed"], "seed must be an integer from 0 to 4294967295", "invalid_type"))


def _model(body: Mapping[str, Any], known: Mapping[str, Any], issues: list[dict[str, Any]]) -> str | None:
    model = body.get("model")
    if not isinstance(model, str) or model not in known:
        issues.append({"code": "invalid_value", "values": sorted(known), "path": ["model"],
                       "message": "Invalid model"})
        return None
    return str(model)


def _size(ratio: str, short: int) -> tuple[int, int]:
    wide, tall = (int(x) for x in ratio.split(":"))
    scale = short / min(wide, tall)
    return max(2, round(wide * scale / 2) * 2), max(2, round(tall * scale / 2) * 2)



def _video_probe(uri: str) -> tuple[int, int, float]:
    """(width, height, seconds) of a data-URI video, else `UNKNOWN_VIDEO`."""
    match = VIDEO_DATA_URI.match(uri)
    if match is None:
        return UNKNOWN_VIDEO
    try:
        with av.open(io.BytesIO(base64.b64decode(uri[match.end():]))) as container:
            stream = container.streams.video[0]
            seconds = (container.duration / 1_000_000 if container.duration
                       else float((stream.duration or 0) * (stream.time_base or 0)))
            width, height = stream.codec_context.width, stream.codec_context.height
    except (av.FFmpegError, IndexError, ValueError, OSError):
        return UNKNOWN_VIDEO
    if width <= 0 or height <= 0 or seconds <= 0:
        return UNKNOWN_VIDEO
    return width, height, seconds




# ------------------------------------------------------------------------------------ video_to_video
ALEPH_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480")
ALEPH_CREDITS = 15  # a second of output
ALEPH_MAX_SECONDS = 5.0  # gen4_aleph edits the first 5 s of its input


def validate_video_to_video(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, {"gen4_aleph": None}, issues)
    _common(body, issues, text_required=True)
    uri = body.get("videoUri")
    _check_uri(uri, ["videoUri"], issues, VIDEO_DATA_URI)
    ratio = body.get("ratio")
    if ratio not in ALEPH_RATIOS:
        issues.append({"code": "invalid_value", "values": list(ALEPH_RATIOS), "path": ["ratio"],
                       "message": "Invalid ratio"})
    refs = body.get("references", [])
    if not isinstance(refs, list) or len(refs) > 1:
        issues.append(_issue(["references"], "At most 1 reference", "too_big"))
    else:
        for i, ref in enumerate(refs):
            ref = ref if isinstance(ref, dict) else {}
            if ref.get("type") != "image":
                issues.append({"code": "invalid_value", "values": ["image"], "path": ["references", i, "type"],
                               "message": "Invalid type"})
            _check_uri(ref.get("uri"), ["references", i, "uri"], issues)
    if issues:
        raise _Invalid(issues)
    _, _, seconds = _video_probe(str(uri))
    seconds = min(seconds, ALEPH_MAX_SECONDS)
    width, height = _size(str(ratio), SHORT_SIDE)
    return {"model": model, "width": width, "height": height, "seconds": whole_frames(seconds, FPS),
            "credits": ALEPH_CREDITS * max(1, math.ceil(seconds - 1e-9))}
