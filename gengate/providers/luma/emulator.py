"""Emulated Luma Dream Machine upstream (luma.md), written from the spec alone.

Served below `/luma` by the emulator app, with the API under `/dream-machine/v1` (the channel's
base URL is `http://HOST:P/luma/dream-machine/v1`, as the SDK's): `POST /generations` and
`/generations/video` (video), `POST /generations/image`, `GET /generations` (offset/limit),
`GET|DELETE /generations/{id}`, `GET /ping`, `GET /credits`. Bearer auth; every error is
`{"detail": "..."}`. It must not import gengate's Luma adaptor: a misread of the format must not
hide on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator.auth import BEARER
from gengate.emulator.base import EmulatorContext
from gengate.emulator.clock import iso_z
from gengate.emulator.ids import uuid_id
from gengate.emulator.media import MediaSpec, frame_size
from gengate.emulator.paging import offset_params
from gengate.emulator.replies import ProviderError, json_response, read_json
from gengate.emulator.timeline import Phase, StateWalk, TaskRecord

BASE = "/dream-machine/v1"
ASPECTS = frozenset({"1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"})
VIDEO_MODELS = frozenset({"ray-1-6", "ray-2", "ray-flash-2"})
IMAGE_MODELS = frozenset({"photon-1", "photon-flash-1"})
DURATIONS = {"5s": 5, "9s": 9}
RESOLUTIONS = frozenset({"540p", "720p", "1080p", "4k"})
IMAGE_FORMATS = frozenset({"jpg", "png"})
FPS = 8  # low, so that rendering stays fast
SHORT_SIDE = 360  # every resolution is drawn small; the file's geometry is what the reply implies
WALK = StateWalk(
    ((0.2, "queued"), (1.0, "dreaming")),
    {Phase.SUCCEEDED: "completed", Phase.FAILED: "failed", Phase.CANCELED: "failed"},
)
UNKNOWN_STATE = "pondering"
FAIL_CODE = "failed"
FAIL_MESSAGE = "The generation failed: content moderation"


def _invalid(message: str) -> ProviderError:
    return ProviderError(422, message)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a create fixes at accept time: the echoed request and the media it will produce."""

    generation_type: str  # video | image
    model: str
    request: dict[str, Any]
    width: int
    height: int
    duration: float  # 0 for an image
    image_format: str  # jpg | png (the image of an image generation; a video's thumbnail is jpg)


class LumaEmulator:
    provider: ClassVar[str] = "luma"
    base_path: ClassVar[str] = BASE  # the channel base URL is `<emulator>/luma` + this
    sandbox_models: ClassVar[tuple[str, ...]] = ("ray-2", "photon-1")

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        return [
            Route(f"{BASE}/generations", api.create_video_legacy, methods=["POST"]),
            Route(f"{BASE}/generations", api.list, methods=["GET"]),
            Route(f"{BASE}/generations/video", api.create_video, methods=["POST"]),
            Route(f"{BASE}/generations/image", api.create_image, methods=["POST"]),
            Route(f"{BASE}/generations/{{generation_id}}", api.read, methods=["GET"]),
            Route(f"{BASE}/generations/{{generation_id}}", api.delete, methods=["DELETE"]),
            Route(f"{BASE}/ping", api.ping, methods=["GET"]),
            Route(f"{BASE}/credits", api.credits, methods=["GET"]),
        ]

    def error_response(
        self, status: int, message: str, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        return json_response({"detail": message}, status, headers)


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def _secret(self, request: Request) -> str:
        return self.ctx.authenticate(request, BEARER, "Invalid API key")

    def _own(self, generation_id: str, secret: str) -> TaskRecord:
        task = self.ctx.own_task(generation_id, secret)
        if task is None:
            raise ProviderError(404, "Generation not found")
        return task

    async def create_video_legacy(self, request: Request) -> Response:
        return await self._create(request, "video", model_required=False)

    async def create_video(self, request: Request) -> Response:
        return await self._create(request, "video", model_required=True)

    async def create_image(self, request: Request) -> Response:
        return await self._create(request, "image", model_required=True)

    async def _create(self, request: Request, kind: str, *, model_required: bool) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "create", secret)) is not None:
            return reply
        body = await read_json(request)
        if kind == "image":
            plan = plan_image(body)
        else:
            plan = plan_video(body, model_required)
            self._check_keyframes(body.get("keyframes"), secret)
        generation_id = uuid_id()
        data = {
            "generation_type": plan.generation_type,
            "model": plan.model,
            "request": plan.request,
            "width": plan.width,
            "height": plan.height,
            "duration": plan.duration,
            "format": plan.image_format,
        }
        task = ctx.new_task(generation_id, secret, data)
        data["created_at"] = iso_z(task.accepted_at)
        if not ctx.accept(task, fail_code=FAIL_CODE, fail_message=FAIL_MESSAGE):
            raise ProviderError(429, "Too many concurrent generations", headers={"Retry-After": "1"})
        if (reply := await ctx.after_accept(request, secret)) is not None:
            return reply
        return json_response(self.render(task, ctx.now()), 201)

    def _check_keyframes(self, keyframes: Any, secret: str) -> None:
        """A `generation` keyframe names a completed video generation of the same account."""
        if not isinstance(keyframes, dict):
            return
        for name, frame in keyframes.items():
            if not isinstance(frame, dict) or frame.get("type") != "generation":
                continue
            parent = self.ctx.own_task(str(frame.get("id")), secret)
            if parent is None:
                raise ProviderError(400, f"keyframes.{name}: generation {frame.get('id')} not found")
            if parent.data.get("generation_type") != "video":
                raise ProviderError(400, f"keyframes.{name}: generation {parent.id} is not a video")
            if parent.progress(self.ctx.now()).phase is not Phase.SUCCEEDED:
                raise ProviderError(400, f"keyframes.{name}: generation {parent.id} is not completed")

    async def read(self, request: Request) -> Response:
        secret = self._secret(request)
        generation_id = request.path_params["generation_id"]
        return await self.ctx.poll(request, secret, generation_id, lambda unknown: json_response(
            self.render(self._own(generation_id, secret), self.ctx.now(), unknown_state=unknown())))

    async def list(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "list", secret)) is not None:
            return reply
        page = offset_params(request, default_limit=10, max_limit=100)
        tasks, total = ctx.store.list_tasks(ctx.provider, secret, page.offset, page.size)
        now = ctx.now()
        generations = [self.render(task, now) for task in tasks]
        return json_response({
            "generations": generations,
            "has_more": page.offset + len(generations) < total,
            "count": len(generations),
            "limit": page.size,
            "offset": page.offset,
        })

    async def delete(self, request: Request) -> Response:
        """Removes the generation (a running one is stopped first); then GET is 404."""
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "cancel", secret)) is not None:
            return reply
        task = self._own(request.path_params["generation_id"], secret)
        ctx.cancel(task)  # False when it had already ended: deleting it is still fine
        ctx.store.delete_task(ctx.provider, task.id)
        return Response(status_code=204)

    async def ping(self, request: Request) -> Response:
        self._secret(request)
        return json_response({"message": "pong"})

    async def credits(self, request: Request) -> Response:
        self._secret(request)
        return json_response({"credit_balance": 250.0})

    def render(self, task: TaskRecord, now: float, *, unknown_state: bool = False) -> dict[str, Any]:
        """The Generation object (luma.md §4) as it stands at `now`."""
        data = task.data
        progress = task.progress(now)
        state = UNKNOWN_STATE if unknown_state else WALK.state(progress)
        obj: dict[str, Any] = {
            "id": task.id,
            "generation_type": data["generation_type"],
            "state": state,
            "failure_reason": None,
            "created_at": data["created_at"],
            "model": data["model"],
            "assets": None,
            "request": data["request"],
        }
        if unknown_state:
            return obj
        if progress.phase is Phase.FAILED:
            obj["failure_reason"] = task.fail_message or FAIL_MESSAGE
        elif progress.phase is Phase.CANCELED:
            obj["failure_reason"] = "The generation was cancelled"
        elif progress.phase is Phase.SUCCEEDED:
            obj["assets"] = self._assets(task, now)
        return obj

    def _assets(self, task: TaskRecord, now: float) -> dict[str, Any]:
        data, ctx = task.data, self.ctx
        width, height = data["width"], data["height"]
        if data["generation_type"] == "image":
            kind = "png" if data["format"] == "png" else "jpeg"
            image = ctx.media_url(MediaSpec(kind, task.id, width, height), f"image.{data['format']}", now)
            return {"image": image}
        video = MediaSpec("mp4", task.id, width, height, data["duration"], FPS)
        thumb = MediaSpec("jpeg", task.id, width, height)
        return {
            "video": ctx.media_url(video, "video.mp4", now),
            "image": ctx.media_url(thumb, "thumbnail.jpg", now),
            "progress_video": None,
        }


def _optional(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise _invalid(f"{name} must be {what}")
    if not isinstance(value, kind):
        raise _invalid(f"{name} must be {what}")
    return value


def _model(body: Mapping[str, Any], allowed: frozenset[str], default: str | None) -> str:
    model = body.get("model")
    if model is None:
        if default is None:
            raise _invalid("model: field required")
        return default
    if model not in allowed:
        raise _invalid(f"model must be one of {', '.join(sorted(allowed))}")
    return str(model)


def _aspect(body: Mapping[str, Any]) -> str:
    aspect = body.get("aspect_ratio", "16:9")
    if aspect not in ASPECTS:
        raise _invalid(f"aspect_ratio must be one of {', '.join(sorted(ASPECTS))}")
    return str(aspect)


def _check_keyframe(name: str, frame: Any) -> None:
    if not isinstance(frame, dict):
        raise _invalid(f"keyframes.{name} must be an object")
    kind = frame.get("type")
    if kind == "image":
        url = frame.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _invalid(f"keyframes.{name}.url must be an http(s) URL")
    elif kind == "generation":
        if not isinstance(frame.get("id"), str) or not frame["id"]:
            raise _invalid(f"keyframes.{name}.id must be a generation id")
    else:
        raise _invalid(f"keyframes.{name}.type must be image or generation")


def plan_video(body: dict[str, Any], model_required: bool) -> Plan:
    model = _model(body, VIDEO_MODELS, None if model_required else "ray-2")
    prompt = _optional(body, "prompt", str, "a string")
    aspect = _aspect(body)
    _optional(body, "loop", bool, "a boolean")
    duration = body.get("duration", "5s")
    if duration not in DURATIONS:
        raise _invalid("duration must be 5s or 9s")
    resolution = body.get("resolution", "720p")
    if resolution not in RESOLUTIONS:
        raise _invalid(f"resolution must be one of {', '.join(sorted(RESOLUTIONS))}")
    keyframes = _optional(body, "keyframes", dict, "an object")
    for name, frame in (keyframes or {}).items():
        if name not in ("frame0", "frame1"):
            raise _invalid(f"keyframes.{name} is not a keyframe (frame0, frame1)")
        _check_keyframe(name, frame)
    concepts = _optional(body, "concepts", list, "a list")
    for concept in concepts or []:
        if not isinstance(concept, dict) or not isinstance(concept.get("key"), str):
            raise _invalid("each concept must be {key: string}")
    if body.get("generation_type") not in (None, "video"):
        raise _invalid("generation_type must be video")
    if not (prompt and prompt.strip()) and not keyframes:
        raise _invalid("prompt: a prompt or keyframes are required")
    width, height = frame_size(aspect, SHORT_SIDE)
    return Plan("video", model, body, width, height, float(DURATIONS[duration]), "jpg")


def plan_image(body: dict[str, Any]) -> Plan:
    model = _model(body, IMAGE_MODELS, None)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid("prompt: field required")
    aspect = _aspect(body)
    image_format = body.get("format", "jpg")
    if image_format not in IMAGE_FORMATS:
        raise _invalid("format must be jpg or png")
    for name in ("image_ref", "style_ref"):
        for ref in _optional(body, name, list, "a list") or []:
            if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
                raise _invalid(f"each {name} must be {{url, weight}}")
    _optional(body, "character_ref", dict, "an object")
    _optional(body, "modify_image_ref", dict, "an object")
    if body.get("generation_type") not in (None, "image"):
        raise _invalid("generation_type must be image")
    width, height = frame_size(aspect, SHORT_SIDE)
    return Plan("image", model, body, width, height, 0.0, str(image_format))


EMULATORS = [LumaEmulator()]
