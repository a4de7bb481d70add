"""Emulated Vidu upstream, platform format (vidu.md §3), written from the spec alone.

Served below `/vidu-ent` by the emulator app, so a channel's base URL is `http://HOST:P/vidu-ent` and
the platform's own paths follow: `POST /ent/v2/{text2video,img2video,start-end2video,reference2video,
upscale,upscale-new}`, `GET /ent/v2/tasks/{id}/creations`, `POST /ent/v2/tasks/{id}/cancel`,
`GET /ent/v2/tasks`. Auth is `Authorization: Token <key>`. Image inputs are accepted as given and
never fetched. It must not import gengate's adaptors: a misread format must not hide on both sides.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator.auth import TOKEN
from gengate.emulator.base import EmulatorContext
from gengate.emulator.clock import iso_z
from gengate.emulator.ids import derived_digits_id, digits_id
from gengate.emulator.media import MediaSpec, frame_size, whole_frames
from gengate.emulator.paging import int_param
from gengate.emulator.replies import ProviderError, json_response, read_json
from gengate.emulator.timeline import Phase, StateWalk, TaskRecord

GENERATE = ("text2video", "img2video", "start-end2video", "reference2video")
ACTIONS = (*GENERATE, "upscale", "upscale-new")
IMAGE_COUNTS = {"text2video": (0, 0), "img2video": (1, 1), "start-end2video": (2, 2), "reference2video": (1, 7)}
NEEDS_PROMPT = ("text2video", "reference2video")
ASPECTS = ("16:9", "9:16", "1:1", "3:4", "4:3")
UPSCALE_TARGETS = ("1080p", "2K", "4K", "8K")
FPS = 8
MAX_SECONDS = 16
WALK = StateWalk(((0.1, "created"), (0.3, "queueing"), (1.0, "processing")),
                 {Phase.SUCCEEDED: "success", Phase.FAILED: "failed", Phase.CANCELED: "failed"})
UNKNOWN_STATE = "scheduling_v9"
FAIL_CODE = "CreationPolicyViolation"
CANCEL_CODE = "UserCancelled"
DEFAULT_REASONS: dict[int, str] = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                                   405: "BadRequest", 409: "Conflict", 429: "TooManyRequests", 499: "Canceled"}
# Vidu credits a task costs (shown in replies): per second, by resolution class.
CREDITS_PER_SECOND = {"360p": 1, "540p": 1, "720p": 2, "1080p": 4}


def _error(status: int, reason: str, message: str) -> ProviderError:
    return ProviderError(status, message, reason)


class ViduPlatformEmulator:
    provider: ClassVar[str] = "vidu-ent"
    sandbox_models: ClassVar[tuple[str, ...]] = ("viduq1", "upscale-new")  # interface.md sandbox table

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        creates = [Route(f"/ent/v2/{action}", api.creator(action), methods=["POST"]) for action in ACTIONS]
        return [
            *creates,
            Route("/ent/v2/tasks", api.list, methods=["GET"]),
            Route("/ent/v2/tasks/{task_id}/creations", api.read, methods=["GET"]),
            Route("/ent/v2/tasks/{task_id}/cancel", api.cancel, methods=["POST"]),
        ]

    def error_response(self, status: int, message: str, reason: str | None = None,
                       headers: Mapping[str, str] | None = None) -> Response:
        body = {"code": status, "reason": reason or DEFAULT_REASONS.get(status, "InternalServiceFailure"),
                "message": message, "metadata": {"trace_id": secrets.token_hex(8)}}
        return json_response(body, status, headers)


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def creator(self, action: str) -> Any:
        async def create(request: Request) -> Response:
            return await self.create(request, action)

        return create

    async def create(self, request: Request, action: str) -> Response:
        ctx = self.ctx
        secret = ctx.authenticate(request, TOKEN)
        if (reply := await ctx.before(request, "create", secret)) is not None:
            return reply
        body = await read_json(request)
        task_id = digits_id(18)
        creation_id = derived_digits_id(f"{task_id}:0", 18)
        if action in GENERATE:
            echo, creation = _generate(action, body, creation_id)
        else:
            echo, creation = self._upscale(action, body, secret, creation_id)
        task = ctx.new_task(task_id, secret, {"action": action, "echo": echo, "creation": creation})
        echo["created_at"] = iso_z(task.accepted_at)
        if not ctx.accept(task, [creation_id], fail_code=FAIL_CODE, fail_message="the content was blocked"):
            raise _error(429, "QuotaExceeded", "too many tasks running for this account")
        if (reply := await ctx.after_accept(request, secret)) is not None:
            return reply
        return json_response(self._created(task, ctx.now()))

    def _upscale(self, action: str, body: dict[str, Any], secret: str,
                 creation_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        _check_common(body)
        if action == "upscale":
            if "model" not in body:
                raise _error(400, "FieldLacking", "model is required")
            ref = body.get("creation_id")
            if ref in (None, ""):
                raise _error(400, "FieldLacking", "creation_id is required")
            factor = 2
        else:
            target = body.get("upscale_resolution", "1080p")
            if target not in UPSCALE_TARGETS:
                raise _error(400, "FieldInvalid", "upscale_resolution must be 1080p, 2K, 4K or 8K")
            ref = body.get("video_creation_id")
            factor = 2 if target == "1080p" else 3
            if ref in (None, ""):
                url = body.get("video_url")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise _error(400, "FieldLacking", "video_creation_id or video_url is required")
                width, height = frame_size("16:9", 360 * factor // 2)
                return dict(body), _creation(creation_id, width, height, whole_frames(4, FPS), "1080p")
        if isinstance(ref, bool) or not isinstance(ref, str | int):
            raise _error(400, "FieldInvalid", "the creation id must be a string")
        parent = self._parent(str(ref), secret)
        return dict(body), _creation(creation_id, parent["width"] * factor, parent["height"] * factor,
                                     parent["duration"], "1080p")

    def _parent(self, creation_id: str, secret: str) -> dict[str, Any]:
        ctx = self.ctx
        task = ctx.store.find_alias(ctx.provider, creation_id)
        if task is None or task.secret != secret or task.progress(ctx.now()).phase is not Phase.SUCCEEDED:
            raise _error(404, "CreationNotFound", f"creation {creation_id} not found")
        return dict(task.data["creation"])

    async def read(self, request: Request) -> Response:
        ctx = self.ctx
        secret = ctx.authenticate(request, TOKEN)
        task_id = request.path_params["task_id"]
        async with ctx.polling(secret, task_id):
            if (reply := await ctx.before(request, "poll", secret)) is not None:
                return reply
            task = self._own(task_id, secret)
            return json_response(self._creations(task, ctx.now(), unknown=ctx.unknown_state(secret)))

    async def cancel(self, request: Request) -> Response:
        ctx = self.ctx
        secret = ctx.authenticate(request, TOKEN)
        if (reply := await ctx.before(request, "cancel", secret)) is not None:
            return reply
        task = self._own(request.path_params["task_id"], secret)
        state = WALK.state(task.progress(ctx.now()))
        if not ctx.cancel(task):
            raise _error(400, "BadRequest", f"task state is {state}, can not cancel")
        return json_response({})

    async def list(self, request: Request) -> Response:
        ctx = self.ctx
        secret = ctx.authenticate(request, TOKEN)
        if (reply := await ctx.before(request, "list", secret)) is not None:
            return reply
        size = int_param(request, "pager.pagesz", 10, low=1, high=100, reason="PageSizeOutOfRange")
        token = request.query_params.get("pager.page_token")
        if token:
            offset = int_param(request, "pager.page_token", 0, low=0, high=10**9, reason="FieldInvalid")
        else:
            page = int_param(request, "pager.page", 1, low=0, high=10**6, reason="FieldInvalid")
            offset = (max(page, 1) - 1) * size
        tasks, total = ctx.store.list_tasks(ctx.provider, secret, offset, size)
        now = ctx.now()
        items = [self._created(t, now) | {"id": t.id, "state": WALK.state(t.progress(now))} for t in tasks]
        more = offset + len(tasks) < total
        return json_response({"tasks": items, "next_page_token": str(offset + size) if more else ""})

    def _own(self, task_id: str, secret: str) -> TaskRecord:
        task = self.ctx.own_task(task_id, secret)
        if task is None:
            raise _error(404, "TaskNotFound", f"task {task_id} not found")
        return task

    def _created(self, task: TaskRecord, now: float) -> dict[str, Any]:
        echo = task.data["echo"]
        return {"task_id": task.id, **echo, "state": WALK.state(task.progress(now)),
                "credits": task.data["creation"]["credits"]}

    def _creations(self, task: TaskRecord, now: float, *, unknown: bool = False) -> dict[str, Any]:
        progress = task.progress(now)
        echo = task.data["echo"]
        out: dict[str, Any] = {
            "id": task.id, "state": UNKNOWN_STATE if unknown else WALK.state(progress), "err_code": "",
            "credits": task.data["creation"]["credits"], "payload": echo.get("payload", ""),
            "bgm": echo.get("bgm", False), "off_peak": echo.get("off_peak", False), "creations": [],
        }
        if unknown:
            return out
        if progress.phase is Phase.FAILED:
            out["err_code"] = task.fail_code or "InternalServiceFailure"
        elif progress.phase is Phase.CANCELED:
            out["err_code"] = CANCEL_CODE
        elif progress.phase is Phase.SUCCEEDED:
            out["creations"] = [self._media(task.data["creation"], now)]
        return out

    def _media(self, c: Mapping[str, Any], now: float) -> dict[str, Any]:
        ctx = self.ctx
        clip = MediaSpec("mp4", c["id"], c["width"], c["height"], c["duration"], FPS)
        cover = MediaSpec("jpeg", c["id"], c["width"], c["height"])
        return {"id": c["id"], "url": ctx.media_url(clip, "video.mp4", now),
                "cover_url": ctx.media_url(cover, "cover.jpeg", now),
                "watermarked_url": ctx.media_url(clip, "video-wm.mp4", now)}


def _check_common(body: Any) -> None:
    if not isinstance(body, dict):
        raise _error(400, "BadRequest", "the body must be a JSON object")
    payload = body.get("payload")
    if payload is not None and (not isinstance(payload, str) or len(payload.encode()) > 1024 * 1024):
        raise _error(400, "FieldInvalid", "payload must be a string of at most 1 MiB")


def _generate(action: str, body: Any, creation_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a generation create (§3.1) and fix its creation; returns (the reply's echo, creation)."""
    _check_common(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _error(400, "FieldLacking", "model is required")
    prompt = body.get("prompt")
    if action in NEEDS_PROMPT and (not isinstance(prompt, str) or not prompt.strip()):
        raise _error(400, "FieldLacking", "prompt is required")
    low, high = IMAGE_COUNTS[action]
    images = body.get("images", [])
    if not isinstance(images, list) or not all(isinstance(i, str) and i for i in images):
        raise _error(400, "FieldInvalid", "images must be an array of strings")
    if not low <= len(images) <= high:
        raise _error(400, "FieldItemCountOutOfRange", f"{action} takes {low}-{high} images")
    aspect = body.get("aspect_ratio", "16:9")
    if aspect not in ASPECTS:
        raise _error(400, "FieldInvalid", "aspect_ratio is not supported")
    q_line = model.startswith("viduq")
    duration = body.get("duration", 5 if q_line else 4)
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not 1 <= duration <= MAX_SECONDS:
        raise _error(400, "FieldInvalid", "duration is out of range")
    resolution = str(body.get("resolution", "1080p" if model.startswith("viduq1") else "720p"))
    echo = {"model": model, "prompt": prompt or "", "images": images, "duration": duration,
            "seed": body.get("seed", random.randrange(2**31)), "resolution": resolution,
            "movement_amplitude": body.get("movement_amplitude", "auto"), "bgm": body.get("bgm", False),
            "payload": body.get("payload", ""), "off_peak": body.get("off_peak", False)}
    if action in ("text2video", "reference2video"):
        echo["aspect_ratio"] = aspect
    if action == "text2video":
        echo["style"] = body.get("style", "general")
    echo.update({k: v for k, v in body.items() if k not in echo})  # everything, callback_url included
    short = 288 if resolution in ("360p", "540p") else 360
    width, height = frame_size(aspect if action != "img2video" else "16:9", short)
    return echo, _creation(creation_id, width, height, whole_frames(float(duration), FPS), resolution)


def _creation(creation_id: str, width: int, height: int, duration: float, resolution: str) -> dict[str, Any]:
    credits = max(1, round(CREDITS_PER_SECOND.get(resolution, 2) * duration))
    return {"id": creation_id, "width": width, "height": height, "duration": duration, "credits": credits}


EMULATORS = [ViduPlatformEmulator()]
