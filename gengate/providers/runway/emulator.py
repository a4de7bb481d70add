"""Emulated Runway upstream (runway.md), written from the spec alone.

Served below `/runway` by the emulator app, so a channel's base URL is `http://HOST:P/runway` and
Runway's own paths follow: `POST /v1/image_to_video`, `POST /v1/text_to_video`, `POST /v1/text_to_image`,
`POST /v1/image_upscale`, `POST /v1/video_upscale`, `POST /v1/video_to_video`,
`POST /v1/character_performance`, the audio creates (`text_to_speech`, `sound_effect`, `speech_to_speech`,
`voice_dubbing`, `voice_isolation`, `video_to_audio`: MP3 outputs),
`GET /v1/tasks/{id}`, `DELETE /v1/tasks/{id}` (cancel a live task, delete an ended one; 404 after),
`GET /v1/organization`. Every call needs `Authorization: Bearer <secret>` and a supported
`X-Runway-Version`. It must not import gengate's Runway adaptor: a misread of the format must not
hide on both sides.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator.auth import BEARER
from gengate.emulator.base import EmulatorContext
from gengate.emulator.clock import iso_z
from gengate.emulator.ids import uuid_id
from gengate.emulator.media import MediaSpec, whole_frames
from gengate.emulator.replies import ProviderError, json_response, read_json
from gengate.emulator.timeline import Phase, StateWalk, TaskRecord
from gengate.providers.runway.emulator_checks import (
    AUDIO_VALIDATORS,
    DATA_URI,
    FPS,
    SHORT_SIDE,
    VALIDATION,
    VIDEO_DATA_URI,
    _check_uri,
    _common,
    _Invalid,
    _issue,
    _model,
    _size,
    _video_probe,
    validate_character_performance,
    validate_video_to_video,
)

VERSIONS = frozenset({"2024-11-06", "2024-09-13"})  # an old version stays supported for a while (§1)
DOC_URL = "https://docs.dev.runwayml.com/api"
WALK = StateWalk(((0.15, "PENDING"), (1.0, "RUNNING")),
                 {Phase.SUCCEEDED: "SUCCEEDED", Phase.FAILED: "FAILED", Phase.CANCELED: "CANCELLED"})
UNKNOWN_STATE = "MYSTERY_STATE"
FAIL_CODE = "SAFETY.INPUT.TEXT"
FAIL_MESSAGE = "Prompt flagged"
DELETED = "runway-deleted"  # the store's "provider" under which a deleted task leaves a tombstone

# Per model: the ratios, durations (None: an image model) and credits (per second, or per image by
# 720p/1080p), from runway.md §3.
VIDEO: dict[str, tuple[tuple[str, ...], tuple[int, ...], int, tuple[str, ...]]] = {
    "gen4_turbo": (("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"), (5, 10), 5, ("first",)),
    "gen3a_turbo": (("1280:768", "768:1280"), (5, 10), 5, ("first", "last")),
}
# text_to_video (runway.md §3.2, `runwayml` 5.24): ratios, durations, default duration (None: required),
# credits a second without / with audio (None: the model has no audio).
_VEO = ("1280:720", "720:1280", "1080:1920", "1920:1080")
TEXT_VIDEO: dict[str, tuple[tuple[str, ...], tuple[int, ...], int | None, int, int | None]] = {
    "gen4.5": (("1280:720", "720:1280"), tuple(range(2, 11)), None, 12, None),
    "veo3.1": (_VEO, (4, 6, 8), 8, 20, 40),
    "veo3.1_fast": (_VEO, (4, 6, 8), 8, 10, 15),
}
IMAGE_720P = ("1280:720", "720:1280", "720:720", "960:720", "720:960", "1680:720")
IMAGE_1080P = ("1920:1080", "1080:1920", "1024:1024", "1360:768", "1080:1080", "1168:880", "1440:1080", "1080:1440",
               "1808:768", "2112:912")
IMAGE: dict[str, tuple[int, int]] = {"gen4_image": (5, 8), "gen4_image_turbo": (2, 2)}
UPSCALE_CREDITS = 10  # an image_upscale, whatever its scale (runway.md states no rate)
UNKNOWN_INPUT = (512, 512)  # the size assumed for an image behind a URL (the emulator fetches nothing)
MAX_SIDE = 4096  # upscaled images are drawn at most this long (in the same ratio)
# video_upscale: credits a second of input; an input behind a URL is taken as 5 s of 16:9.
VIDEO_UPSCALE: dict[str, int] = {"magnific_video_upscaler_creative": 10, "enhance_frame_rate": 2}


class RunwayEmulator:
    provider: ClassVar[str] = "runway"
    sandbox_models: ClassVar[tuple[str, ...]] = ("gen4_turbo", "gen4_image")

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        return [
            Route("/v1/image_to_video", api.image_to_video, methods=["POST"]),
            Route("/v1/text_to_video", api.text_to_video, methods=["POST"]),
            Route("/v1/text_to_image", api.text_to_image, methods=["POST"]),
            Route("/v1/image_upscale", api.image_upscale, methods=["POST"]),
            Route("/v1/video_upscale", api.video_upscale, methods=["POST"]),
            Route("/v1/video_to_video", api.video_to_video, methods=["POST"]),
            *(Route(f"/v1/{action}", api.creator(action), methods=["POST"])
              for action in ("character_performance", *AUDIO_VALIDATORS)),
            Route("/v1/tasks/{task_id}", api.read, methods=["GET"]),
            Route("/v1/tasks/{task_id}", api.delete, methods=["DELETE"]),
            Route("/v1/organization", api.organization, methods=["GET"]),
        ]

    def error_response(self, status: int, message: str, reason: str | None = None,
                       headers: Mapping[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"error": message}
        if status == 400 and reason == "validation":
            body["docUrl"] = DOC_URL
        return json_response(body, status, headers)


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def _secret(self, request: Request) -> str:
        secret = self.ctx.authenticate(request, BEARER, "Invalid API key")
        version = request.headers.get("x-runway-version")
        if not version:
            raise ProviderError(400, "You must specify an X-Runway-Version header.")
        if version not in VERSIONS:
            raise ProviderError(400, f"The API version {version} is not supported. "
                                     f"Supported versions: {', '.join(sorted(VERSIONS))}.")
        return secret

    def _own_task(self, task_id: str, secret: str) -> TaskRecord:
        task = self.ctx.own_task(task_id, secret)
        if task is None or self.ctx.store.get_task(DELETED, task_id) is not None:
            raise ProviderError(404, "Not found")
        return task

    async def image_to_video(self, request: Request) -> Response:
        return await self._create(request, "image_to_video")

    async def text_to_image(self, request: Request) -> Response:
        return await self._create(request, "text_to_image")

    async def video_upscale(self, request: Request) -> Response:
        return await self._create(request, "video_upscale")

    async def image_upscale(self, request: Request) -> Response:
        return await self._create(request, "image_upscale")

    def creator(self, action: str) -> Callable[[Request], Awaitable[Response]]:
        async def create(request: Request) -> Response:
            return await self._create(request, action)
        return create

    async def video_to_video(self, request: Request) -> Response:
        return await self._create(request, "video_to_video")

    async def text_to_video(self, request: Request) -> Response:
        return await self._create(request, "text_to_video")

    async def _create(self, request: Request, action: str) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "create", secret)) is not None:
            return reply
        body = await read_json(request)
        try:
            plan = VALIDATORS[action](body)
        except _Invalid as exc:
            return json_response({"error": VALIDATION, "issues": exc.issues, "docUrl": DOC_URL}, 400)
        task = ctx.new_task(uuid_id(), secret, {"action": action, **plan})
        data = task.data
        data["createdAt"] = iso_z(task.accepted_at, 3)
        if not ctx.accept(task, fail_code=FAIL_CODE, fail_message=FAIL_MESSAGE):
            raise ProviderError(429, "You have too many tasks running. Please wait for one to finish.")
        if (reply := await ctx.after_accept(request, secret)) is not None:
            return reply
        return json_response({"id": task.id, "estimatedCost": {"credits": data["credits"]}})

    async def read(self, request: Request) -> Response:
        secret = self._secret(request)
        task_id = request.path_params["task_id"]
        return await self.ctx.poll(request, secret, task_id, lambda unknown: json_response(
            self.render(self._own_task(task_id, secret), self.ctx.now(), unknown_state=unknown())))

    async def delete(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "cancel", secret)) is not None:
            return reply
        task = self._own_task(request.path_params["task_id"], secret)
        ctx.cancel(task)  # a live task is aborted; an ended one is only deleted
        now = ctx.now()
        tombstone = TaskRecord(provider=DELETED, id=task.id, secret=secret, accepted_at=now - 1, duration=0.0,
                               canceled_at=now - 1)
        ctx.store.add_task(tombstone, (), None, now)
        return Response(status_code=204)

    async def organization(self, request: Request) -> Response:
        self._secret(request)
        return json_response({"creditBalance": 1_000_000, "tier": {"maxMonthlyCreditSpend": 1_000_000,
                                                                   "models": {}},
                              "usage": {"models": {}}})

    def render(self, task: TaskRecord, now: float, *, unknown_state: bool = False) -> dict[str, Any]:
        """The task object as it stands at `now` (runway.md §4)."""
        data = task.data
        progress = task.progress(now)
        status = UNKNOWN_STATE if unknown_state else WALK.state(progress)
        obj: dict[str, Any] = {"id": task.id, "status": status, "createdAt": data["createdAt"]}
        if status in ("PENDING", "THROTTLED", "RUNNING", UNKNOWN_STATE):
            obj["estimatedCost"] = {"credits": data["credits"]}
            if status == "RUNNING":
                obj["progress"] = round(max(0.0, (progress.fraction - 0.15) / 0.85), 2)
        elif status == "SUCCEEDED":
            obj["output"] = [self._output_url(task, now, i) for i in range(task.data.get("variants", 1))]
            obj["cost"] = {"credits": data["credits"]}
        else:
            obj["cost"] = {"credits": 0}
            if status == "FAILED":
                obj["failure"] = task.fail_message or FAIL_MESSAGE
                obj["failureCode"] = task.fail_code or FAIL_CODE
        return obj

    def _output_url(self, task: TaskRecord, now: float, index: int = 0) -> str:
        data = task.data
        if data["action"] in AUDIO_VALIDATORS:
            spec = MediaSpec("mp3", f"{task.id}-{index}", duration=data["seconds"])
            return self.ctx.media_url(spec, f"output-{index}.mp3", now)
        if data["action"] in ("text_to_image", "image_upscale"):
            spec = MediaSpec("png", task.id, data["width"], data["height"])
            return self.ctx.media_url(spec, "output.png", now)
        spec = MediaSpec("mp4", task.id, data["width"], data["height"], data["seconds"], FPS)
        return self.ctx.media_url(spec, "output.mp4", now)


# ------------------------------------------------------------------------------------------- validation
def validate_video(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, VIDEO, issues)
    _common(body, issues, text_required=False)
    image = body.get("promptImage")
    if isinstance(image, list) and image:
        positions = VIDEO[model][3] if model else ("first", "last")
        for i, item in enumerate(image):
            item = item if isinstance(item, dict) else {}
            _check_uri(item.get("uri"), ["promptImage", i, "uri"], issues)
            if item.get("position") not in positions:
                issues.append({"code": "invalid_value", "values": list(positions),
                               "path": ["promptImage", i, "position"], "message": "Invalid position"})
        if len(image) > len(positions):
            issues.append(_issue(["promptImage"], "Too many prompt images", "too_big"))
    else:
        _check_uri(image, ["promptImage"], issues)
    ratio = body.get("ratio")
    duration = body.get("duration", 10)
    if model is not None:
        ratios, durations, _, _ = VIDEO[model]
        if ratio not in ratios:
            issues.append({"code": "invalid_value", "values": list(ratios), "path": ["ratio"],
                           "message": "Invalid ratio"})
        if duration not in durations or isinstance(duration, bool):
            issues.append({"code": "invalid_value", "values": list(durations), "path": ["duration"],
                           "message": "Invalid duration"})
    if issues:
        raise _Invalid(issues)
    assert model is not None
    width, height = _size(str(ratio), SHORT_SIDE)
    return {"model": model, "width": width, "height": height, "seconds": whole_frames(float(duration), FPS),
            "credits": VIDEO[model][2] * int(duration)}


def validate_image(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, IMAGE, issues)
    _common(body, issues, text_required=True)
    ratio = body.get("ratio")
    if ratio not in IMAGE_720P + IMAGE_1080P:
        issues.append({"code": "invalid_value", "values": list(IMAGE_1080P + IMAGE_720P), "path": ["ratio"],
                       "message": "Invalid ratio"})
    refs = body.get("referenceImages")
    if refs is not None and (not isinstance(refs, list) or len(refs) > 3):
        issues.append(_issue(["referenceImages"], "At most 3 reference images", "too_big"))
    elif isinstance(refs, list):
        for i, ref in enumerate(refs):
            _check_uri(ref.get("uri") if isinstance(ref, dict) else None, ["referenceImages", i, "uri"], issues)
    if model == "gen4_image_turbo" and not refs:
        issues.append(_issue(["referenceImages"], "gen4_image_turbo requires referenceImages", "too_small"))
    if issues:
        raise _Invalid(issues)
    assert model is not None
    width, height = (int(x) for x in str(ratio).split(":"))
    credits = IMAGE[model][0] if ratio in IMAGE_720P else IMAGE[model][1]
    return {"model": model, "width": width, "height": height, "seconds": 0, "credits": credits}


def validate_text_video(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, TEXT_VIDEO, issues)
    _common(body, issues, text_required=True)
    ratio = body.get("ratio")
    duration = body.get("duration")
    audio = body.get("audio", True)
    if model is not None:
        ratios, durations, default, _, with_audio = TEXT_VIDEO[model]
        if ratio not in ratios:
            issues.append({"code": "invalid_value", "values": list(ratios), "path": ["ratio"],
                           "message": "Invalid ratio"})
        duration = default if duration is None else duration
        if duration not in durations or isinstance(duration, bool):
            issues.append({"code": "invalid_value", "values": list(durations), "path": ["duration"],
                           "message": "Invalid duration" if duration is not None else "Required"})
        if "audio" in body and (with_audio is None or not isinstance(audio, bool)):
            issues.append(_issue(["audio"], "Unrecognized key or not a boolean", "invalid_type"))
    if issues:
        raise _Invalid(issues)
    assert model is not None
    seconds = int(duration)  # type: ignore[arg-type]  # checked against the model's durations above
    _, _, _, silent, with_audio = TEXT_VIDEO[model]
    rate = with_audio if with_audio is not None and audio is not False else silent
    width, height = _size(str(ratio), SHORT_SIDE)
    return {"model": model, "width": width, "height": height, "seconds": whole_frames(float(seconds), FPS),
            "credits": rate * seconds}


def _image_size(uri: str) -> tuple[int, int]:
    """The pixel size of a data-URI image, else `UNKNOWN_INPUT`."""
    match = DATA_URI.match(uri)
    if match is None:
        return UNKNOWN_INPUT
    try:
        with Image.open(io.BytesIO(base64.b64decode(uri[match.end():]))) as img:
            return img.size
    except (OSError, ValueError):
        return UNKNOWN_INPUT


def validate_image_upscale(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, {"magnific_precision_upscaler_v2": None}, issues)
    uri = body.get("imageUri")
    _check_uri(uri, ["imageUri"], issues)
    scale = body.get("scaleFactor", 2)
    if scale not in (2, 4, 8, 16) or isinstance(scale, bool):
        issues.append({"code": "invalid_value", "values": [2, 4, 8, 16], "path": ["scaleFactor"],
                       "message": "Invalid scaleFactor"})
    for name in ("sharpen", "smartGrain", "ultraDetail"):
        value = body.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            issues.append(_issue([name], f"{name} must be from 0 to 100", "invalid_type"))
    if body.get("flavor", "photo") not in ("sublime", "photo", "photo_denoiser"):
        issues.append({"code": "invalid_value", "values": ["sublime", "photo", "photo_denoiser"], "path": ["flavor"],
                       "message": "Invalid flavor"})
    if issues:
        raise _Invalid(issues)
    assert model is not None
    width, height = (side * int(scale) for side in _image_size(str(uri)))
    shrink = min(1.0, MAX_SIDE / max(width, height))
    return {"model": model, "width": max(1, round(width * shrink)), "height": max(1, round(height * shrink)),
            "seconds": 0, "credits": UPSCALE_CREDITS}


def validate_video_upscale(body: dict[str, Any]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    model = _model(body, VIDEO_UPSCALE, issues)
    uri = body.get("videoUri")
    _check_uri(uri, ["videoUri"], issues, VIDEO_DATA_URI)
    if model == "enhance_frame_rate" and body.get("targetFramerate") not in (
            "24", "25", "30", "48", "50", "60", "120", "23_98", "29_97", "59_94"):
        issues.append(_issue(["targetFramerate"], "Invalid targetFramerate", "invalid_value"))
    if model == "magnific_video_upscaler_creative" and body.get("resolution", "2k") not in ("720p", "1k", "2k", "4k"):
        issues.append(_issue(["resolution"], "Invalid resolution", "invalid_value"))
    if issues:
        raise _Invalid(issues)
    assert model is not None
    width, height, seconds = _video_probe(str(uri))
    width, height = _size(f"{width}:{height}", SHORT_SIDE)  # drawn small, in the input's ratio
    return {"model": model, "width": width, "height": height, "seconds": whole_frames(seconds, FPS),
            "credits": VIDEO_UPSCALE[model] * max(1, math.ceil(seconds - 1e-9))}


VALIDATORS = {"image_to_video": validate_video, "text_to_image": validate_image, "text_to_video": validate_text_video,
              "image_upscale": validate_image_upscale, "video_upscale": validate_video_upscale,
              "video_to_video": validate_video_to_video,
              "character_performance": validate_character_performance, **AUDIO_VALIDATORS}
EMULATORS = [RunwayEmulator()]
