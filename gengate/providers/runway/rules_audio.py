"""What Runway accepts in the audio creates (runway.md §2 names the paths only; bodies and models from
the `runwayml` 5.24 types): `text_to_speech`, `sound_effect`, `speech_to_speech`, `voice_dubbing`,
`voice_isolation`, `video_to_audio`. Required fields and the values the SDK enumerates are checked;
other fields pass through. Refusals are Runway's 400 with `issues`, as in rules.py.

Pricing units (`audio_units`, one Runway credit each by default, `runway:audio_unit:<model>`): 50
characters of text for the speech models, else a slice of seconds per model (`UNIT_SECONDS`). An
input whose length gengate cannot know (an audio or video to transform) is reserved as
`MAX_INPUT_SECONDS` long and settled from the cost Runway reports (`from_cost`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from gengate.providers.runway.rules import Checked, _body, _is_int, _Issues, _model, _prompt_text, media_uri

# The SDK's `runway-preset` voices (the same list for every ElevenLabs model).
PRESETS = ("Maya", "Arjun", "Serene", "Bernard", "Billy", "Mark", "Clint", "Mabel", "Chad", "Leslie", "Eleanor",
           "Elias", "Elliot", "Grungle", "Brodie", "Sandra", "Kirk", "Kylie", "Lara", "Lisa", "Malachi", "Marlene",
           "Martin", "Miriam", "Monster", "Paula", "Pip", "Rusty", "Ragnar", "Xylar", "Maggie", "Jack", "Katie",
           "Noah", "James", "Rina", "Ella", "Mariah", "Frank", "Claudia", "Niki", "Vincent", "Kendrick", "Myrna",
           "Tom", "Wanda", "Benjamin", "Kiana", "Rachel")
DUB_LANGUAGES = ("en", "hi", "pt", "zh", "es", "fr", "de", "ja", "ar", "ru", "ko", "id", "it", "nl", "tr", "pl", "sv",
                 "fil", "ms", "ro", "uk", "el", "cs", "da", "fi", "bg", "hr", "sk", "ta")
SPEECH_MODELS = ("eleven_multilingual_v2", "eleven_v3", "eleven_v4", "seed_audio")
SOUND_MODELS = ("eleven_text_to_sound_v2", "mirelo_sfx_2_0", "seed_audio")
CHARS_PER_UNIT = 50
# Seconds of audio one unit buys (Runway's published ElevenLabs rates; mirelo is gengate's estimate).
UNIT_SECONDS: dict[str, float] = {"eleven_text_to_sound_v2": 6, "mirelo_sfx_2_0": 6, "eleven_multilingual_sts_v2": 3,
                                  "eleven_voice_dubbing": 2, "eleven_voice_isolation": 6}
MAX_SOUND_SECONDS = 30.0
# An input to transform of unknown length: reserved as this long (interface.md caps a shipped
# reservation at 1,000,000 credits: 200 s of dubbing at 1 credit per 2 s), settled on Runway's cost.
MAX_INPUT_SECONDS = 200.0
MAX_VARIANTS = 4
MAX_SPEECH_CHARS = 5000  # gengate's bound for the models the SDK states none for (the reservation needs one)


def _voice_preset(body: Mapping[str, Any], issues: _Issues, required: bool = True) -> None:
    voice = body.get("voice")
    if voice is None:
        if required:
            issues.add(["voice"], "Required", "invalid_type", expected="object")
        return
    if not isinstance(voice, dict):
        issues.add(["voice"], "Expected object", "invalid_type", expected="object")
    elif voice.get("type") == "reference-audio" and body.get("model") == "seed_audio":
        _uri(voice, "audioUri", ["voice", "audioUri"], issues, audio=True)
    elif voice.get("type") != "runway-preset":
        issues.invalid_value(["voice", "type"], ["runway-preset"], "type must be runway-preset")
    elif voice.get("presetId") not in PRESETS:
        issues.invalid_value(["voice", "presetId"], PRESETS, "presetId must be one of Runway's preset voices")


def _uri(body: Mapping[str, Any], field: str, path: list[str | int], issues: _Issues, **kind: bool) -> None:
    if body.get(field) is None:
        issues.add(path, "Required", "invalid_type", expected="string")
    else:
        media_uri(body[field], path, issues, **kind)


def _seconds(body: Mapping[str, Any], issues: _Issues, *, required: bool, low: float = 0.5,
             high: float = MAX_SOUND_SECONDS) -> float | None:
    value = body.get("duration")
    if value is None:
        if required:
            issues.add(["duration"], "Required", "invalid_type", expected="number")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        issues.add(["duration"], f"duration must be a number of seconds from {low:g} to {high:g}", "invalid_type",
                   expected="number")
        return None
    return float(value)


def _variants(body: Mapping[str, Any], issues: _Issues) -> int:
    value = body.get("numVariants")
    if value is None:
        return 1
    if not _is_int(value) or not 1 <= value <= MAX_VARIANTS:
        issues.add(["numVariants"], f"numVariants must be an integer from 1 to {MAX_VARIANTS}", "invalid_type",
                   expected="integer")
        return 1
    return int(value)


def _text_units(body: Mapping[str, Any]) -> float:
    text = body.get("promptText")
    return float(max(1, math.ceil(len(str(text).encode("utf-16-le")) // 2 / CHARS_PER_UNIT)))


def _second_units(model: str, seconds: float, variants: int = 1) -> float:
    return float(max(1, math.ceil(seconds / UNIT_SECONDS[model] - 1e-9)) * variants)


def _long_text(body: Mapping[str, Any], issues: _Issues) -> None:
    text = body.get("promptText")
    if isinstance(text, str) and len(text.encode("utf-16-le")) // 2 > MAX_SPEECH_CHARS:
        issues.add(["promptText"], f"promptText must be at most {MAX_SPEECH_CHARS} characters", "too_big",
                   maximum=MAX_SPEECH_CHARS)


def check_text_to_speech(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, dict.fromkeys(SPEECH_MODELS), issues)
    if name == "eleven_multilingual_v2":  # the SDK states its limit: 1000 UTF-16 code units
        _prompt_text(body, issues, required=True)
    else:
        _required_text(body, issues)
    _voice_preset(body, issues, required=name != "seed_audio")
    issues.raise_if_any()
    assert name is not None
    return Checked(name, {"audio_units": _text_units(body), f"model:{name}": 1.0})


def _required_text(body: Mapping[str, Any], issues: _Issues) -> None:
    text = body.get("promptText")
    if not isinstance(text, str) or not text.strip():
        issues.add(["promptText"], "Required: a non-empty string", "invalid_type", expected="string")
    else:
        _long_text(body, issues)


def check_sound_effect(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, dict.fromkeys(SOUND_MODELS), issues)
    _required_text(body, issues)
    seconds = _seconds(body, issues, required=name == "mirelo_sfx_2_0") if name != "seed_audio" else None
    variants = _variants(body, issues) if name == "mirelo_sfx_2_0" else 1
    if body.get("loop") is not None and not isinstance(body["loop"], bool):
        issues.add(["loop"], "Expected boolean", "invalid_type", expected="boolean")
    issues.raise_if_any()
    assert name is not None
    if name == "seed_audio":
        return Checked(name, {"audio_units": _text_units(body), f"model:{name}": 1.0})
    units = {"audio_units": _second_units(name, seconds or MAX_SOUND_SECONDS, variants), f"model:{name}": 1.0}
    return Checked(name, units if seconds is not None else {**units, "from_cost": 1.0})


def check_speech_to_speech(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, {"eleven_multilingual_sts_v2": None}, issues)
    media = body.get("media")
    if not isinstance(media, dict):
        issues.add(["media"], "Required" if media is None else "Expected object", "invalid_type", expected="object")
    else:
        if media.get("type") not in ("audio", "video"):
            issues.invalid_value(["media", "type"], ("audio", "video"), "type must be audio or video")
        _uri(media, "uri", ["media", "uri"], issues, audio=media.get("type") == "audio",
             video=media.get("type") == "video")
    _voice_preset(body, issues)
    _flags(body, ("removeBackgroundNoise",), issues)
    return _from_input(name, issues)


def check_voice_dubbing(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, {"eleven_voice_dubbing": None}, issues)
    _uri(body, "audioUri", ["audioUri"], issues, audio=True)
    if body.get("targetLang") not in DUB_LANGUAGES:
        issues.invalid_value(["targetLang"], DUB_LANGUAGES, "targetLang must be one of Runway's dubbing languages")
    _flags(body, ("disableVoiceCloning", "dropBackgroundAudio"), issues)
    speakers = body.get("numSpeakers")
    if speakers is not None and (not _is_int(speakers) or speakers < 0):
        issues.add(["numSpeakers"], "numSpeakers must be a whole number", "invalid_type", expected="integer")
    return _from_input(name, issues)


def check_voice_isolation(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, {"eleven_voice_isolation": None}, issues)
    _uri(body, "audioUri", ["audioUri"], issues, audio=True)
    return _from_input(name, issues)


def check_video_to_audio(raw: Any) -> Checked:
    body = _body(raw)
    issues = _Issues()
    name = _model(body, {"mirelo_sfx_2_0": None}, issues)
    _uri(body, "videoUri", ["videoUri"], issues, video=True)
    seconds = _seconds(body, issues, required=True)
    variants = _variants(body, issues)
    _flags(body, ("preserveSpeech",), issues)
    issues.raise_if_any()
    assert name is not None and seconds is not None
    return Checked(name, {"audio_units": _second_units(name, seconds, variants), f"model:{name}": 1.0})


def _flags(body: Mapping[str, Any], names: tuple[str, ...], issues: _Issues) -> None:
    for flag in names:
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            issues.add([flag], "Expected boolean", "invalid_type", expected="boolean")


def _from_input(name: str | None, issues: _Issues) -> Checked:
    """An input of unknown length: the longest is reserved, Runway's reported cost settles."""
    issues.raise_if_any()
    assert name is not None
    return Checked(name, {"audio_units": _second_units(name, MAX_INPUT_SECONDS), f"model:{name}": 1.0,
                          "from_cost": 1.0})


AUDIO_CHECKS: dict[str, Callable[[Any], Checked]] = {
    "text_to_speech": check_text_to_speech, "sound_effect": check_sound_effect,
    "speech_to_speech": check_speech_to_speech, "voice_dubbing": check_voice_dubbing,
    "voice_isolation": check_voice_isolation, "video_to_audio": check_video_to_audio}
AUDIO_MODELS = (*SPEECH_MODELS, "eleven_text_to_sound_v2", "mirelo_sfx_2_0", "eleven_multilingual_sts_v2",
                "eleven_voice_dubbing", "eleven_voice_isolation")
