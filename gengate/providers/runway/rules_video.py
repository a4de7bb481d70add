"""What Runway accepts in the video-editing creates (runway.md §3.2; bodies from the `runwayml` SDK's
types): `video_to_video` (`gen4_aleph`) and `character_performance` (`act_two`). Refusals are Runway's
400 with `issues`, as in rules.py, whose shared checks these reuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gengate.providers.runway.rules import (
    Checked,
    _body,
    _common,
    _is_int,
    _Issues,
    _model,
    _prompt_text,
    _ratio,
    media_uri,
)

# gen4_aleph edits up to the first 5 s of its input: those are reserved, and the seconds billed
# follow the cost Runway reports (like video_upscale).
ALEPH_MODELS = ("gen4_aleph",)
ALEPH_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480")
MAX_ALEPH_SECONDS = 5
MAX_REFERENCES = 1


def check_video_to_video(raw: Any) -> Checked:
    """`model` `gen4_aleph`, `videoUri`, `promptText`, `ratio`, optional `references`
    (`[{"type": "image", "uri"}]`, at most one), `seed`, `contentModeration`."""
    body = _body(raw)
    issues = _Issues()
    name = _model(body, dict.fromkeys(ALEPH_MODELS), issues)
    if body.get("videoUri") is None:
        issues.add(["videoUri"], "Required", "invalid_type", expected="string")
    else:
        media_uri(body["videoUri"], ["videoUri"], issues, video=True)
    _prompt_text(body, issues, required=True)
    _common(body, issues)
    _ratio(dict(body), issues, ALEPH_RATIOS)
    _image_references(body, issues)
    issues.raise_if_any()
    assert name is not None
    return Checked(name, {"seconds": float(MAX_ALEPH_SECONDS), f"model:{name}": 1.0, "from_cost": 1.0})


def _image_references(body: Mapping[str, Any], issues: _Issues) -> None:
    refs = body.get("references")
    if refs is None:
        return
    if not isinstance(refs, list):
        issues.add(["references"], "Expected array", "invalid_type", expected="array")
        return
    if len(refs) > MAX_REFERENCES:
        issues.add(["references"], f"At most {MAX_REFERENCES} reference", "too_big", maximum=MAX_REFERENCES)
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            issues.add(["references", i], "Expected object", "invalid_type", expected="object")
            continue
        if ref.get("type") != "image":
            issues.invalid_value(["references", i, "type"], ["image"], "type must be image")
        if ref.get("uri") is None:
            issues.add(["references", i, "uri"], "Required", "invalid_type", expected="string")
        else:
            media_uri(ref["uri"], ["references", i, "uri"], issues)


# character_performance (`runwayml` 5.24): act_two moves a character (an image or a video) as the
# person in a reference video (3-30 s) does. The output is as long as the reference, unknown before
# Runway reads it: the settlement follows the cost Runway reports, within what was reserved. 20 s are
# reserved, not 30: interface.md caps a shipped default reservation at 1,000,000 credits (20 s at the
# shipped rate), so a longer reference is billed as 20 s at the shipped price.
ACT_MODELS = ("act_two",)
ACT_RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
RESERVED_ACT_SECONDS = 20


def check_character_performance(raw: Any) -> Checked:
    """`model` `act_two`, `character` `{type: image|video, uri}`, `reference` `{type: video, uri}`,
    optional `ratio`, `bodyControl`, `expressionIntensity` (1-5), `seed`, `contentModeration`."""
    body = _body(raw)
    issues = _Issues()
    name = _model(body, dict.fromkeys(ACT_MODELS), issues)
    _typed_media(body, "character", ("image", "video"), issues)
    _typed_media(body, "reference", ("video",), issues)
    ratio = body.get("ratio")
    if ratio is not None and ratio not in ACT_RATIOS:
        issues.invalid_value(["ratio"], ACT_RATIOS, f"ratio must be one of {', '.join(ACT_RATIOS)}")
    if body.get("bodyControl") is not None and not isinstance(body["bodyControl"], bool):
        issues.add(["bodyControl"], "Expected boolean", "invalid_type", expected="boolean")
    intensity = body.get("expressionIntensity")
    if intensity is not None and (not _is_int(intensity) or not 1 <= intensity <= 5):
        issues.add(["expressionIntensity"], "expressionIntensity must be an integer from 1 to 5", "invalid_type",
                   expected="integer")
    _common(body, issues)
    issues.raise_if_any()
    assert name is not None
    return Checked(name, {"seconds": float(RESERVED_ACT_SECONDS), f"model:{name}": 1.0, "from_cost": 1.0})


def _typed_media(body: Mapping[str, Any], field: str, types: tuple[str, ...], issues: _Issues) -> None:
    """`{field: {"type": one of types, "uri"}}`, required."""
    item = body.get(field)
    if not isinstance(item, dict):
        issues.add([field], "Required" if item is None else "Expected object", "invalid_type", expected="object")
        return
    kind = item.get("type")
    if kind not in types:
        issues.invalid_value([field, "type"], types, f"type must be {' or '.join(types)}")
    if item.get("uri") is None:
        issues.add([field, "uri"], "Required", "invalid_type", expected="string")
    else:
        media_uri(item["uri"], [field, "uri"], issues, video=kind == "video")
