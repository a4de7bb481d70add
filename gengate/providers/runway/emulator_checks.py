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


# ----------------------------------------------------------------------------- character_performance
ACT_RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
ACT_CREDITS = 5  # a second of output, which is as long as the reference performance (3-30 s)


def _typed(body: Mapping[str, Any], field: str, types: tuple[str, ...], issues: list[dict[str, Any]]) -> str:
    item = body.get(field)
    item = item if isinstance(item, dict) else {}
    if item.get("type") not in types:
        issues.append({"code": "invalid_value", "values": list(types), "path": [field, "type"],
                       "message": "Invalid type"})
    kind = str(item.get("type"))
    pattern = VIDEO_DATA_URI if kind == "video" else AUDIO_DATA_URI if kind == "audio" else DATA_URI
    _check_uri(item.get("uri"), [field, "uri"], issues, pattern)
    return str(item.get("uri"))


def validate_character_performance(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, {"act_two": None}, issues)
    _typed(body, "character", ("image", "video"), issues)
    reference = _typed(body, "reference", ("video",), issues)
    ratio = body.get("ratio", "1280:720")
    if ratio not in ACT_RATIOS:
        issues.append({"code": "invalid_value", "values": list(ACT_RATIOS), "path": ["ratio"],
                       "message": "Invalid ratio"})
    intensity = body.get("expressionIntensity", 3)
    if isinstance(intensity, bool) or intensity not in (1, 2, 3, 4, 5):
        issues.append(_issue(["expressionIntensity"], "expressionIntensity must be from 1 to 5", "invalid_type"))
    _common(body, issues, text_required=False)
    if issues:
        raise _Invalid(issues)
    _, _, seconds = _video_probe(reference)
    seconds = min(max(seconds, 3.0), 30.0)
    width, height = _size(str(ratio), SHORT_SIDE)
    return {"model": model, "width": width, "height": height, "seconds": whole_frames(seconds, FPS),
            "credits": ACT_CREDITS * max(1, math.ceil(seconds - 1e-9))}


# ------------------------------------------------------------------------------------------- audio
# From the `runwayml` 5.24 types. Credits: 1 per 50 characters of speech, else 1 per slice of seconds.
SPEECH_MODELS = ("eleven_multilingual_v2", "eleven_v3", "eleven_v4", "seed_audio")
SOUND_MODELS = ("eleven_text_to_sound_v2", "mirelo_sfx_2_0", "seed_audio")
SLICE = {"eleven_text_to_sound_v2": 6.0, "mirelo_sfx_2_0": 6.0, "eleven_multilingual_sts_v2": 3.0,
         "eleven_voice_dubbing": 2.0, "eleven_voice_isolation": 6.0}
CHARS_PER_SECOND = 15.0  # how long the emulator's speech of a text lasts
UNKNOWN_AUDIO_SECONDS = 10.0  # an input audio behind a URL
LANGUAGES = ("en", "hi", "pt", "zh", "es", "fr", "de", "ja", "ar", "ru", "ko", "id", "it", "nl", "tr", "pl", "sv",
             "fil", "ms", "ro", "uk", "el", "cs", "da", "fi", "bg", "hr", "sk", "ta")


def _audio_probe(uri: str) -> float:
    """Seconds of a data-URI audio (or video), else `UNKNOWN_AUDIO_SECONDS`."""
    match = AUDIO_DATA_URI.match(uri) or VIDEO_DATA_URI.match(uri)
    if match is None:
        return UNKNOWN_AUDIO_SECONDS
    try:
        with av.open(io.BytesIO(base64.b64decode(uri[match.end():]))) as container:
            seconds = container.duration / 1_000_000 if container.duration else 0.0
    except (av.FFmpegError, ValueError, OSError):
        return UNKNOWN_AUDIO_SECONDS
    return seconds if seconds > 0 else UNKNOWN_AUDIO_SECONDS


def _text(body: Mapping[str, Any], issues: list[dict[str, Any]]) -> str:
    text = body.get("promptText")
    if not isinstance(text, str) or not text.strip():
        issues.append(_issue(["promptText"], "Required", "invalid_type"))
        return ""
    return text


def _preset(body: Mapping[str, Any], issues: list[dict[str, Any]]) -> None:
    voice = body.get("voice")
    preset = voice.get("presetId") if isinstance(voice, dict) else None
    if not isinstance(voice, dict) or voice.get("type") != "runway-preset" or not isinstance(preset, str):
        issues.append(_issue(["voice"], "voice must be {type: runway-preset, presetId}", "invalid_type"))


def _audio(model: str | None, seconds: float, credits: int, variants: int = 1) -> dict[str, Any]:
    return {"model": model, "width": 0, "height": 0, "seconds": round(max(seconds, 0.5), 2), "credits": credits,
            "variants": variants}


def _by_slice(model: str, seconds: float, variants: int = 1) -> int:
    return max(1, math.ceil(seconds / SLICE[model] - 1e-9)) * variants


def validate_text_to_speech(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, dict.fromkeys(SPEECH_MODELS), issues)
    text = _text(body, issues)
    if model != "seed_audio":
        _preset(body, issues)
    if issues:
        raise _Invalid(issues)
    return _audio(model, min(60.0, len(text) / CHARS_PER_SECOND), max(1, math.ceil(len(text) / 50)))


def validate_sound_effect(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, dict.fromkeys(SOUND_MODELS), issues)
    text = _text(body, issues)
    duration = body.get("duration")
    if model == "mirelo_sfx_2_0" and duration is None:
        issues.append(_issue(["duration"], "Required", "invalid_type"))
    elif duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)
                                   or not 0.5 <= duration <= 30):
        issues.append(_issue(["duration"], "duration must be from 0.5 to 30 seconds", "invalid_type"))
    variants = body.get("numVariants", 1)
    if isinstance(variants, bool) or variants not in (1, 2, 3, 4):
        issues.append(_issue(["numVariants"], "numVariants must be from 1 to 4", "invalid_type"))
    if issues:
        raise _Invalid(issues)
    assert model is not None
    if model == "seed_audio":
        return _audio(model, min(30.0, len(text) / CHARS_PER_SECOND), max(1, math.ceil(len(text) / 50)))
    seconds = float(duration) if duration is not None else 4.0  # "determined from the prompt"
    return _audio(model, seconds, _by_slice(model, seconds, int(variants)), int(variants))


def validate_speech_to_speech(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, {"eleven_multilingual_sts_v2": None}, issues)
    uri = _typed(body, "media", ("audio", "video"), issues)
    _preset(body, issues)
    if issues:
        raise _Invalid(issues)
    seconds = _audio_probe(uri)
    return _audio(model, seconds, _by_slice("eleven_multilingual_sts_v2", seconds))


def _audio_input(body: dict[str, Any], model_name: str, extra: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    issues: list[dict[str, Any]] = list(extra or [])
    model = _model(body, {model_name: None}, issues)
    uri = body.get("audioUri")
    _check_uri(uri, ["audioUri"], issues, AUDIO_DATA_URI)
    if issues:
        raise _Invalid(issues)
    seconds = _audio_probe(str(uri))
    return _audio(model, seconds, _by_slice(model_name, seconds))


def validate_voice_dubbing(body: dict[str, Any]) -> dict[str, Any]:
    bad = [] if body.get("targetLang") in LANGUAGES else [
        {"code": "invalid_value", "values": list(LANGUAGES), "path": ["targetLang"], "message": "Invalid targetLang"}]
    return _audio_input(body, "eleven_voice_dubbing", bad)


def validate_voice_isolation(body: dict[str, Any]) -> dict[str, Any]:
    return _audio_input(body, "eleven_voice_isolation")


def validate_video_to_audio(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, {"mirelo_sfx_2_0": None}, issues)
    _check_uri(body.get("videoUri"), ["videoUri"], issues, VIDEO_DATA_URI)
    duration = body.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not 0.5 <= duration <= 30:
        issues.append(_issue(["duration"], "duration must be from 0.5 to 30 seconds", "invalid_type"))
    variants = body.get("numVariants", 1)
    if isinstance(variants, bool) or variants not in (1, 2, 3, 4):
        issues.append(_issue(["numVariants"], "numVariants must be from 1 to 4", "invalid_type"))
    if issues:
        raise _Invalid(issues)
    return _audio(model, float(duration), _by_slice("mirelo_sfx_2_0", float(duration), int(variants)), int(variants))


AUDIO_VALIDATORS = {"text_to_speech": validate_text_to_speech, "sound_effect": validate_sound_effect,
                    "speech_to_speech": validate_speech_to_speech, "voice_dubbing": validate_voice_dubbing,
                    "voice_isolation": validate_voice_isolation, "video_to_audio": validate_video_to_audio}
