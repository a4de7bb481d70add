"""Emulated Vidu upstream, web/app format (vidu.md §2), written from the spec alone.

Served below `/vidu` by the emulator app, so a channel's base URL is `http://HOST:P/vidu` and the
provider's own paths follow: `POST /vidu/v1/tasks`, `GET /vidu/v1/tasks/{id}`, SSE
`GET /vidu/v1/tasks/state?id=`, `DELETE /vidu/v1/tasks/{id}` (cancel), `GET /vidu/v1/tasks/history/me`.
It must not import gengate's Vidu adaptor: a misread of the format must not hide on both sides.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator.auth import TOKEN
from gengate.emulator.base import EmulatorContext
from gengate.emulator.clock import iso_z
from gengate.emulator.ids import derived_digits_id, digits_id
from gengate.emulator.media import MediaSpec, frame_size, whole_frames
from gengate.emulator.paging import page_params
from gengate.emulator.replies import ProviderError, json_response, read_json
from gengate.emulator.sse import sse_event
from gengate.emulator.timeline import Phase, Progress, StateWalk, TaskRecord

TASK_TYPES = frozenset(
    {
        "text2video",
        "img2video",
        "character2video",
        "headtailimg2video",
        "upscale",
        "text2image",
        "reference2image",
    }
)
IMAGE_TYPES = frozenset({"text2image", "reference2image"})
NEEDS_TEXT = frozenset({"text2video", "img2video", "character2video", "text2image", "reference2image"})
PROMPT_TYPES = frozenset({"text", "image", "material"})
MAX_PROMPTS = 20
MAX_SAMPLES = 4
FPS = 8  # low, so that rendering stays fast; the reply says the same
DEFAULT_SECONDS = 4
MAX_SECONDS = 16  # Q3's longest
# The §2.5 walk: each running state ends at that share of the duration.
WALK = StateWalk(
    ((0.1, "created"), (0.3, "queueing"), (1.0, "processing")),
    {Phase.SUCCEEDED: "success", Phase.FAILED: "failed", Phase.CANCELED: "canceled"},
)
UNKNOWN_STATE = "mystery_state"
FAIL_CODE = "CreationPolicyViolation"  # what a `fail_task` fault's job ends with by default
FAIL_MESSAGE = "the generated content was blocked by policy"
# The reason we answer when a fault or the framework names only an HTTP status (§3.7).
DEFAULT_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "BadRequest",
    409: "Conflict",
    429: "TooManyRequests",
    499: "Canceled",
}
ASPECTS = frozenset({"16:9", "9:16", "1:1", "4:3", "3:4"})  # Vidu's; others are drawn 16:9
SMALL_RESOLUTIONS = frozenset({"360p", "512", "540p"})
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")




def _error(status: int, reason: str, message: str) -> ProviderError:
    return ProviderError(status, message, reason)


class Creation(TypedDict):
    """What the emulator fixes for a creation at accept time (its media follow from it)."""

    id: str
    kind: str  # "video" | "image"
    width: int
    height: int
    duration: float
    fps: int


@dataclass(frozen=True, slots=True)
class CreateRequest:
    type: str
    input: dict[str, Any]  # as the reply shows it: creation_id, lang, expanded prompts, the rest
    settings: dict[str, Any]
    creation_id: str | None  # upscale only


class ViduWebEmulator:
    provider: ClassVar[str] = "vidu"

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        return [
            Route("/vidu/v1/tasks", api.create, methods=["POST"]),
            # Before `/vidu/v1/tasks/{task_id}`, which would otherwise take "state" for an id.
            Route("/vidu/v1/tasks/state", api.stream, methods=["GET"]),
            Route("/vidu/v1/tasks/history/me", api.history, methods=["GET"]),
            Route("/vidu/v1/tasks/{task_id}", api.read, methods=["GET"]),
            Route("/vidu/v1/tasks/{task_id}", api.cancel, methods=["DELETE"]),
        ]

    def error_response(
        self, status: int, message: str, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        body = {
            "code": status,
            "reason": reason or DEFAULT_REASONS.get(status, "InternalServiceFailure"),
            "message": message,
            "metadata": {"trace_id": secrets.token_hex(8)},
        }
        return json_response(body, status, headers)


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def _secret(self, request: Request) -> str:
        return self.ctx.authenticate(request, TOKEN)

    def _own_task(self, task_id: str, secret: str) -> TaskRecord:
        task = self.ctx.own_task(task_id, secret)
        if task is None:
            raise _error(404, "TaskNotFound", f"task {task_id} not found")
        return task

    async def create(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "create", secret)) is not None:
            return reply
        req = validate(await read_json(request, want_object=False))
        task_id = digits_id(16)
        if req.creation_id is not None:
            parent = self._parent_creation(req.creation_id, secret)
            creations = [_upscaled(parent, _creation_id(task_id, 0))]
        else:
            creations = _plan_creations(req, task_id)
        data: dict[str, Any] = {
            "type": req.type,
            "input": req.input,
            "settings": req.settings,
            "creations": creations,
        }
        task = ctx.new_task(task_id, secret, data)
        data["created_at"] = iso_z(task.accepted_at)
        if not ctx.accept(task, [c["id"] for c in creations], fail_code=FAIL_CODE, fail_message=FAIL_MESSAGE):
            raise _error(429, "QuotaExceeded", "too many tasks running for this account")
        if (reply := await ctx.after_accept(request, secret)) is not None:
            return reply
        return json_response(self.render(task, ctx.now()))

    def _parent_creation(self, creation_id: str, secret: str) -> Creation:
        ctx = self.ctx
        parent = ctx.store.find_alias(ctx.provider, creation_id)
        # A creation exists once its task succeeded, and only for the account that made it.
        if parent is None or parent.secret != secret or parent.progress(ctx.now()).phase is not Phase.SUCCEEDED:
            raise _error(404, "CreationNotFound", f"creation {creation_id} not found")
        for creation in parent.data["creations"]:
            if creation["id"] == creation_id:
                return Creation(**creation)
        raise _error(404, "CreationNotFound", f"creation {creation_id} not found")

    async def read(self, request: Request) -> Response:
        secret = self._secret(request)
        task_id = request.path_params["task_id"]
        return await self.ctx.poll(request, secret, task_id, lambda unknown: json_response(
            self.render(self._own_task(task_id, secret), self.ctx.now(), unknown_state=unknown())))

    async def stream(self, request: Request) -> Response:
        """§2.6: one `data:` line per state change, the first at once, closed after a terminal one.
        An `unknown_state` fault shows on the first event only; `drop_after_accept` cuts it."""
        ctx = self.ctx
        secret = self._secret(request)
        task_id = request.query_params.get("id")
        if not task_id:
            raise _error(400, "FieldLacking", "query parameter id is required")
        ctx.stats.polled(secret)
        if (reply := await ctx.before(request, "poll", secret, streaming=True)) is not None:
            return reply
        self._own_task(task_id, secret)
        unknown = ctx.unknown_state(secret)

        async def events() -> AsyncIterator[bytes]:
            last: str | None = None
            first = True
            while True:
                now = ctx.now()
                task = ctx.store.get_task(ctx.provider, task_id)
                if task is None:
                    return
                progress = task.progress(now)
                event = _state_event(task, progress)
                if first and unknown:
                    event["state"] = UNKNOWN_STATE
                first = False
                if event["state"] != last:
                    last = event["state"]
                    yield sse_event(event)
                if progress.terminal and last != UNKNOWN_STATE:
                    return
                await asyncio.sleep(WALK.next_change(task, progress, now))

        return ctx.stream(request, "poll", secret, events())

    async def cancel(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "cancel", secret)) is not None:
            return reply
        task = self._own_task(request.path_params["task_id"], secret)
        if not ctx.cancel(task):
            raise _error(400, "BadRequest", "task has already finished and can not be canceled")
        return json_response({})

    async def history(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "list", secret)) is not None:
            return reply
        page = page_params(request, "page_no", "page_size", default_size=10, max_size=100)
        tasks, total = ctx.store.list_tasks(ctx.provider, secret, page.offset, page.size)
        now = ctx.now()
        reply = {
            "tasks": [self.render(task, now) for task in tasks],
            "total": total,
            "page_no": page.number,
            "page_size": page.size,
        }
        return json_response(reply)

    def render(self, task: TaskRecord, now: float, *, unknown_state: bool = False) -> dict[str, Any]:
        """The §2.4 task object as it stands at `now`."""
        data = task.data
        progress = task.progress(now)
        obj: dict[str, Any] = {
            "id": task.id,
            "input": data["input"],
            "settings": data["settings"],
            "type": data["type"],
            "state": UNKNOWN_STATE if unknown_state else WALK.state(progress),
            "err_code": "",
            "created_at": data["created_at"],
            "creations": [],
        }
        if unknown_state:
            return obj
        if progress.phase is Phase.FAILED:
            obj["err_code"] = task.fail_code or "InternalServiceFailure"
            obj["err_msg"] = task.fail_message or obj["err_code"]
        elif progress.phase is Phase.SUCCEEDED and progress.finished_at is not None:
            grade = "upscale" if data["type"] == "upscale" else "draft"
            obj["creations"] = [self._creation(task.id, c, grade, progress.finished_at, now) for c in data["creations"]]
        return obj

    def _creation(self, task_id: str, c: Creation, grade: str, finished_at: float, now: float) -> dict[str, Any]:
        ctx = self.ctx
        size = {"width": c["width"], "height": c["height"]}
        cover = ctx.media_url(MediaSpec("jpeg", c["id"], c["width"], c["height"]), "cover.jpeg", now)
        if c["kind"] == "video":
            clip = MediaSpec("mp4", c["id"], c["width"], c["height"], c["duration"], c["fps"])
            ext, video = "mp4", {"duration": c["duration"], "fps": c["fps"], "resolution": size}
        else:
            clip = MediaSpec("png", c["id"], c["width"], c["height"])
            ext, video = "png", {"duration": 0, "fps": 0, "resolution": size}
        return {
            "id": c["id"],
            "task_id": task_id,
            "type": c["kind"],
            "grade": grade,
            "uri": ctx.media_url(clip, f"watermarked.{ext}", now),
            "nomark_uri": ctx.media_url(clip, f"clean.{ext}", now),
            "download_uri": ctx.media_url(clip, f"download.{ext}", now),
            "cover_uri": cover,
            "resolution": size,
            "vote": "unspecified",
            "is_favor": False,
            "src_video_duration": 0,
            "creator_id": "0",
            "video": video,
            "is_deleted": False,
            "is_posted": False,
            "err_code": "",
            "created_at": iso_z(finished_at),
        }


def validate(body: Any) -> CreateRequest:
    """Check a create body against §2.2; raise the platform reason a bad one gets."""
    if not isinstance(body, dict):
        raise _error(400, "BadRequest", "the body must be a JSON object")
    kind = body.get("type")
    if kind is None:
        raise _error(400, "FieldLacking", "type is required")
    if kind not in TASK_TYPES:
        raise _error(400, "FieldInvalid", f"type must be one of {', '.join(sorted(TASK_TYPES))}")
    given = body.get("input")
    if given is None:
        raise _error(400, "FieldLacking", "input is required")
    if not isinstance(given, dict):
        raise _error(400, "FieldInvalid", "input must be an object")
    settings = body.get("settings", {})
    if not isinstance(settings, dict):
        raise _error(400, "FieldInvalid", "settings must be an object")

    prompts = given.get("prompts", [] if kind == "upscale" else None)
    if prompts is None:
        raise _error(400, "FieldLacking", "input.prompts is required")
    if not isinstance(prompts, list):
        raise _error(400, "FieldInvalid", "input.prompts must be an array")
    if len(prompts) > MAX_PROMPTS:
        raise _error(400, "FieldItemCountOutOfRange", f"at most {MAX_PROMPTS} prompts")
    counts = {"text": 0, "image": 0, "material": 0}
    texts: list[str] = []
    for prompt in prompts:
        if not isinstance(prompt, dict) or prompt.get("type") not in PROMPT_TYPES:
            raise _error(400, "FieldInvalid", "each prompt needs type text, image or material")
        ptype = prompt["type"]
        content = prompt.get("content")
        if ptype != "material" and not isinstance(content, str):
            raise _error(400, "FieldLacking", f"a {ptype} prompt needs content")
        if ptype == "material" and not (isinstance(prompt.get("material"), dict) or isinstance(content, str)):
            raise _error(400, "FieldLacking", "a material prompt needs material {id, version}")
        counts[ptype] += 1
        if ptype == "text" and content and content.strip():
            texts.append(content)

    if kind in NEEDS_TEXT and not texts:
        raise _error(400, "FieldLacking", f"{kind} needs a text prompt")
    if kind == "img2video":
        if counts["image"] != 1:
            raise _error(400, "FieldItemCountOutOfRange", "img2video takes exactly 1 image")
        if "aspect_ratio" in settings:
            raise _error(400, "FieldUnwanted", "img2video takes its aspect ratio from the image")
    if kind == "headtailimg2video" and counts["image"] != 2:
        raise _error(400, "FieldItemCountOutOfRange", "headtailimg2video takes exactly 2 images")
    if kind in ("character2video", "reference2image") and not 1 <= counts["image"] + counts["material"] <= 7:
        raise _error(400, "FieldItemCountOutOfRange", f"{kind} takes 1-7 images and materials together")

    creation_id: str | None = None
    if kind == "upscale":
        raw = given.get("creation_id")
        if raw is None or raw == "":
            raise _error(400, "FieldLacking", "input.creation_id is required")
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise _error(400, "FieldInvalid", "input.creation_id must be a string")
        creation_id = str(raw)

    expanded = [
        {
            **p,
            "negative": p.get("negative", False),
            "enhance": p.get("enhance", False),
            "recaption": p.get("recaption", ""),
        }
        for p in prompts
    ]
    reply_input = {
        "creation_id": creation_id or "0",
        "lang": "zh" if any(_CJK.search(t) for t in texts) else "en",
        "prompts": expanded,
        **{k: v for k, v in given.items() if k not in ("creation_id", "lang", "prompts")},
    }
    return CreateRequest(type=kind, input=reply_input, settings=settings, creation_id=creation_id)


def draft_size(settings: Mapping[str, Any]) -> tuple[int, int]:
    """Pixels for a draft: the aspect ratio asked for, kept small (short side 288 or 360)."""
    short = 288 if str(settings.get("resolution", "")).lower() in SMALL_RESOLUTIONS else 360
    aspect = str(settings.get("aspect_ratio", "16:9"))
    return frame_size(aspect if aspect in ASPECTS else "16:9", short)


def clip_seconds(settings: Mapping[str, Any]) -> float:
    """The clip's length: `settings.duration` when it is a usable number of seconds, else 4, on
    whole frames (so that the file and the reply agree exactly)."""
    asked = settings.get("duration")
    seconds: float = DEFAULT_SECONDS
    if isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0:
        seconds = MAX_SECONDS if asked >= MAX_SECONDS else float(asked)  # float(10**400) would overflow
    return whole_frames(seconds, FPS)


def _plan_creations(req: CreateRequest, task_id: str) -> list[Creation]:
    count = req.settings.get("sample_count", 1)
    if not isinstance(count, int) or isinstance(count, bool):
        count = 1
    count = min(max(count, 1), MAX_SAMPLES)
    width, height = draft_size(req.settings)
    image = req.type in IMAGE_TYPES
    return [
        Creation(
            id=_creation_id(task_id, index),
            kind="image" if image else "video",
            width=width,
            height=height,
            duration=0 if image else clip_seconds(req.settings),
            fps=0 if image else FPS,
        )
        for index in range(count)
    ]


def _upscaled(parent: Creation, creation_id: str) -> Creation:
    return Creation(
        id=creation_id,
        kind=parent["kind"],
        width=parent["width"] * 2,
        height=parent["height"] * 2,
        duration=parent["duration"],
        fps=parent["fps"],
    )


def _state_event(task: TaskRecord, progress: Progress) -> dict[str, Any]:
    state = WALK.state(progress)
    left = progress.remaining if math.isfinite(progress.remaining) else task.duration * (1 - progress.fraction)
    waiting = state in ("created", "queueing")
    return {
        "state": state,
        "estimated_time_left": math.ceil(left),
        "err_code": (task.fail_code or "") if progress.phase is Phase.FAILED else "",
        "queue_wait_time": {"min": [0], "max": [1 if waiting else 0]},
    }


def _creation_id(task_id: str, index: int) -> str:
    """A creation id (16 digits) that follows from its task id, so replays agree."""
    return derived_digits_id(f"{task_id}:{index}", 16)


EMULATORS = [ViduWebEmulator()]
