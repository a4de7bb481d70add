"""Vidu web/app format (`/vidu/v1/tasks`): validate, build and parse upstream calls, render the task object.

vidu.md §2. Everything in `settings` and unknown `input` keys pass through untouched; gengate rewrites
only ids and media URLs (§2.8).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from gengate.core.adaptor import (
    INLINE_PREFIX,
    Account,
    FindResult,
    HttpCall,
    HttpReply,
    Outcome,
    OutputSpec,
    Prepared,
    Progress,
    Resolver,
    Submitted,
    TaskRef,
    TaskView,
    auth_header,
)
from gengate.core.errors import InvalidRequest, ReferenceNotFound
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState

log = logging.getLogger("gengate.vidu")
S = TaskState

# Upstream state → gengate state. Anything else is in progress (and logged): vidu.md §2.5.
STATES: dict[str, TaskState] = {
    "created": S.RUNNING, "queueing": S.RUNNING, "preparation": S.RUNNING, "scheduling": S.RUNNING,
    "processing": S.RUNNING, "success": S.SUCCEEDED, "failed": S.FAILED, "canceled": S.CANCELLED,
}
_IN_PROGRESS = ("created", "queueing", "preparation", "scheduling", "processing")

TYPES = ("text2video", "img2video", "character2video", "headtailimg2video", "upscale", "text2image",
         "reference2image")
IMAGE_TYPES = ("text2image", "reference2image")
INLINE_THRESHOLD = 64 * 1024  # a prompt's content longer than this (a base64 image) is stashed
URL_FIELDS = ("nomark_uri", "uri", "download_uri", "cover_uri")  # the first present one is the main URL


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _field_error(reason: str, message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, code=reason, param=param)


@dataclass(frozen=True)
class Generation:
    """What one Vidu model generation accepts (vidu.md §2.2, §3.1): whole seconds, default clip,
    the resolution class a request without `resolution` gets, and the resolutions it offers."""

    name: str
    durations: tuple[int, ...]
    default_duration: int
    default_resolution: str
    resolutions: frozenset[str] = frozenset({"360p", "540p", "720p", "1080p"})


GENERATIONS: dict[str, Generation] = {g.name: g for g in (
    Generation("1.0", (4, 8), 4, "540p"),
    Generation("1.5", (4, 8), 4, "540p"),
    Generation("2.0", (4, 8), 4, "720p"),
    Generation("q1", (5,), 5, "1080p", frozenset({"1080p"})),
    Generation("q2", tuple(range(2, 9)), 5, "720p", frozenset({"540p", "720p", "1080p"})),
    Generation("q3", tuple(range(1, 17)), 5, "720p", frozenset({"540p", "720p", "1080p"})),
)}
# A model name gengate cannot place (a mapped or newer model): Vidu's widest rules, 1-16 s.
ANY_GENERATION = Generation("any", tuple(range(1, 17)), 4, "720p")
_RESOLUTIONS = {"360": "360p", "360p": "360p", "512": "540p", "540": "540p", "540p": "540p", "720": "720p",
                "720p": "720p", "1080": "1080p", "1080p": "1080p"}
_IMAGE_RESOLUTIONS = {"1080p": "1080p", "2k": "2k", "4k": "4k"}


def parse_version(raw: object) -> tuple[int, ...] | None:
    """A Vidu version as numbers: "2.0" → (2, 0), "10" → (10,); the Q line follows 2.0 as Vidu
    numbers it in `model_version` (Q2 is "3.1", Q3 "3.2"), so "q1" → (3, 0), "q2" → (3, 1)."""
    text = str(raw).strip().lower().removeprefix("vidu").strip("-_ ")
    if text.startswith("q") and _small_number(text[1:]) and int(text[1:]) >= 1:
        return (3, int(text[1:]) - 1)
    parts = text.split(".")
    if len(parts) > 4 or not all(_small_number(p) for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _small_number(text: str) -> bool:
    """ASCII digits only (not "²", which `isdigit` accepts and `int` refuses), at most 4 of them."""
    return text.isascii() and text.isdigit() and len(text) <= 4


def generation_of(settings: Mapping[str, Any]) -> Generation:
    """The generation a request targets: `model_version` if given, else what `model` names."""
    if settings.get("model_version") not in (None, ""):
        version = parse_version(settings["model_version"])
        if version is None:
            raise _field_error("FieldInvalid", "settings.model_version must be a version such as \"2.0\" or "
                               "\"3.2\"", "settings.model_version")
    else:
        model = str(settings.get("model") or "vidu-1").lower()
        if model.startswith("vidu-high"):  # vidu-high-performance / vidu-high-quality: the 1.0 line
            version = (1, 0)
        else:  # "vidu-1", "vidu2.0", "viduq1", "viduq2-pro"
            version = parse_version(model.split("-")[0] if model.startswith("viduq") else model)
        if version is None:
            return ANY_GENERATION
    if version < (1, 5):
        return GENERATIONS["1.0"]
    if version < (2,):
        return GENERATIONS["1.5"]
    if version < (3,):
        return GENERATIONS["2.0"]
    if version < (3, 1):
        return GENERATIONS["q1"]
    if version < (3, 2):
        return GENERATIONS["q2"]
    return GENERATIONS["q3"]  # and anything newer: Vidu's widest known rules


def _resolution_class(settings: Mapping[str, Any], image: bool, gen: Generation) -> str:
    raw = settings.get("resolution")
    res = str(raw).strip().lower() if raw not in (None, "") else None
    if image:
        if res is None:
            return "1080p"
        if res not in _IMAGE_RESOLUTIONS:
            raise _field_error("FieldInvalid", "settings.resolution of an image must be 1080p, 2K or 4K",
                               "settings.resolution")
        return _IMAGE_RESOLUTIONS[res]
    if res is None:
        return gen.default_resolution
    cls = _RESOLUTIONS.get(res)
    if cls is None or cls not in gen.resolutions:
        offered = ", ".join(sorted(gen.resolutions, key=lambda r: int(r[:-1])))
        raise _field_error("FieldInvalid", f"settings.resolution must be one of {offered} for this model",
                           "settings.resolution")
    return cls


def _duration(settings: Mapping[str, Any], task_type: str, gen: Generation) -> int:
    """Whole seconds of the clip the request asks for, refused as Vidu refuses what it does not offer."""
    raw = settings.get("duration")
    if task_type in IMAGE_TYPES:
        if raw not in (None, 0):
            raise _field_error("FieldInvalid", "settings.duration must be 0 for an image", "settings.duration")
        return 0
    if raw is None:
        return gen.default_duration
    offered = range(1, 17) if task_type == "upscale" else gen.durations
    if raw not in offered or (isinstance(raw, float) and not raw.is_integer()):
        text = (f"{offered[0]} to {offered[-1]}" if len(offered) > 2
                else " or ".join(str(d) for d in offered))
        raise _field_error("FieldInvalid", f"settings.duration must be {text} (whole seconds) for this model",
                           "settings.duration")
    return int(raw)


def _validate_prompts(task_type: str, inp: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    prompts = inp.get("prompts", [])
    if not isinstance(prompts, list):
        raise _field_error("FieldInvalid", "input.prompts must be an array", "input.prompts")
    if len(prompts) > 20:
        raise _field_error("FieldItemCountOutOfRange", "input.prompts holds at most 20 prompts", "input.prompts")
    kinds: dict[str, int] = {"text": 0, "image": 0, "material": 0}
    for i, p in enumerate(prompts):
        if not isinstance(p, dict):
            raise _field_error("FieldInvalid", f"input.prompts[{i}] must be an object")
        kind = p.get("type")
        if kind not in kinds:
            raise _field_error("FieldInvalid", f"input.prompts[{i}].type must be text, image or material")
        content = p.get("content")
        if kind != "material" and (not isinstance(content, str) or not content.strip()):
            raise _field_error("FieldLacking", f"input.prompts[{i}].content must be a non-empty string")
        if kind == "material" and not isinstance(p.get("material"), dict):
            raise _field_error("FieldLacking", f"input.prompts[{i}].material must be an object")
        kinds[kind] += 1
    refs = kinds["image"] + kinds["material"]
    needs_text = task_type in ("text2video", "text2image", "character2video", "reference2image")
    if needs_text and kinds["text"] == 0:
        raise _field_error("FieldLacking", f"{task_type} needs a text prompt", "input.prompts")
    if task_type == "img2video":
        if kinds["image"] != 1:
            raise _field_error("FieldItemCountOutOfRange", "img2video takes exactly 1 image", "input.prompts")
        if "aspect_ratio" in settings:
            raise _field_error("FieldUnwanted", "img2video must not send settings.aspect_ratio",
                               "settings.aspect_ratio")
    elif task_type == "headtailimg2video" and kinds["image"] != 2:
        raise _field_error("FieldItemCountOutOfRange", "headtailimg2video takes exactly 2 images",
                           "input.prompts")
    elif task_type in ("character2video", "reference2image") and not 1 <= refs <= 7:
        raise _field_error("FieldItemCountOutOfRange", f"{task_type} takes 1-7 images and materials",
                           "input.prompts")


def _fingerprint(request: Mapping[str, Any]) -> str:
    """What identifies a create among the account's history: its type, settings, prompts (kind and
    content) and referenced creation. Fields the upstream adds when it echoes a task are left out."""
    inp = request.get("input") or {}
    prompts = [(p.get("type"), _content_key(p.get("content")), (p.get("material") or {}).get("id"))
               for p in inp.get("prompts") or [] if isinstance(p, dict)]
    creation = inp.get("creation_id")
    keep = {"type": request.get("type"), "settings": request.get("settings") or {}, "prompts": prompts,
            "creation_id": None if creation in (None, "0", "") else str(creation)}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


def _content_key(content: Any) -> Any:
    """A prompt's content as the fingerprint sees it: large inline media by its sha256, whether it is
    stashed (our stored request) or whole (the upstream's echo of it)."""
    if isinstance(content, str):
        if content.startswith(INLINE_PREFIX):
            return "sha256:" + content.rsplit("/", 1)[-1]
        if len(content) > INLINE_THRESHOLD:
            return "sha256:" + hashlib.sha256(content.encode()).hexdigest()
    return content


async def _stash_inline_images(request: dict[str, Any], upstream: dict[str, Any], resolver: Resolver) -> None:
    """Large base64 images in `input.prompts` leave the stored request for storage (both copies)."""
    for mine, theirs in zip((request.get("input") or {}).get("prompts") or [],
                            (upstream.get("input") or {}).get("prompts") or [], strict=False):
        content = mine.get("content") if isinstance(mine, dict) else None
        if isinstance(content, str) and len(content) > INLINE_THRESHOLD:
            mine["content"] = theirs["content"] = await resolver.stash(content)


def _parse_time(raw: Any) -> float:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def error_reason(reply: HttpReply) -> tuple[str | None, str]:
    """(reason, message) from the platform envelope; `code` may hold the reason (vidu.md §3.7)."""
    try:
        body = reply.json()
    except ValueError:
        return None, reply.body[:200].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return None, ""
    reason = body.get("reason") or (body.get("code") if isinstance(body.get("code"), str) else None)
    return reason, str(body.get("message") or body.get("err_msg") or "")


# Shipped prices (credits): per second of video by resolution class, per upscaled second, per image.
PRICES: dict[str, int] = {
    "vidu:video_second:360p": 5_000,
    "vidu:video_second:540p": 5_000,
    "vidu:video_second:720p": 10_000,
    "vidu:video_second:1080p": 15_000,
    "vidu:upscale_second": 5_000,
    "vidu:image:1080p": 20_000,
    "vidu:image:2k": 30_000,
    "vidu:image:4k": 40_000,
}


class ViduWebAdaptor:
    provider: ClassVar[str] = "vidu"
    id_kind: ClassVar[str] = "digits16"
    prices: ClassVar[Mapping[str, int]] = PRICES

    # ------------------------------------------------------------ create
    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        if not isinstance(body, dict):
            raise _field_error("BadRequest", "the request body must be a JSON object")
        task_type = body.get("type")
        if task_type is None:
            raise _field_error("FieldLacking", "type is required", "type")
        if task_type not in TYPES:
            raise _field_error("FieldInvalid", f"type must be one of {', '.join(TYPES)}", "type")
        inp = body.get("input", {})
        settings = body.get("settings", {})
        if not isinstance(inp, dict):
            raise _field_error("FieldInvalid", "input must be an object", "input")
        if not isinstance(settings, dict):
            raise _field_error("FieldInvalid", "settings must be an object", "settings")
        callback = body.get("callback_url")
        if callback is not None and not isinstance(callback, str):
            raise _field_error("FieldInvalid", "callback_url must be a string", "callback_url")
        _check_settings(settings)
        request = json.loads(json.dumps({k: v for k, v in body.items() if k != "callback_url"}))
        upstream = json.loads(json.dumps(request))
        parent = None
        image = task_type in IMAGE_TYPES
        gen = generation_of(settings)
        seconds = float(_duration(settings, task_type, gen))
        resolution = _resolution_class(settings, image, gen)
        if task_type == "upscale":
            creation_id = inp.get("creation_id")
            if not isinstance(creation_id, str) or not creation_id.strip():
                raise _field_error("FieldLacking", "upscale needs input.creation_id", "input.creation_id")
            found = await resolver.output(creation_id)
            if found is None:
                raise ReferenceNotFound("creation not found", code="CreationNotFound")
            parent, upstream_creation_id, meta = found
            upstream["input"]["creation_id"] = upstream_creation_id
            produced = (meta.get("video") or {}).get("duration")
            if isinstance(produced, int | float) and not isinstance(produced, bool) and produced > 0:
                seconds = float(produced)
            model = str(settings.get("model") or "stable")
        else:
            _validate_prompts(task_type, inp, settings)
            await _stash_inline_images(request, upstream, resolver)
            model = str(settings.get("model") or (f"vidu-{settings['model_version']}"
                                                  if settings.get("model_version") else "vidu-1"))
        count = settings.get("sample_count") or 1
        units = {"seconds": min(seconds, 16.0), "count": float(count),
                 "image": 1.0 if image else 0.0, "upscale": 1.0 if task_type == "upscale" else 0.0}
        return Prepared(action=task_type, model=model, request=request, upstream_request=upstream,
                        units={**units, "res:" + resolution: 1.0}, parent=parent,
                        callback_url=callback)

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        """Credits for `units`: whole billable seconds (a started second is billed, never less than
        one), times the per-second rate of the resolution class; images per image. At least 1."""
        res = next((k[4:] for k in units if k.startswith("res:")), "720p")
        seconds = max(1, math.ceil(units.get("seconds", 0) - 1e-9))
        if units.get("upscale"):
            per = prices["vidu:upscale_second"] * seconds
        elif units.get("image"):
            per = prices.get(f"vidu:image:{res}", prices["vidu:image:1080p"])
        else:
            per = prices.get(f"vidu:video_second:{res}", prices["vidu:video_second:720p"]) * seconds
        return max(1, math.ceil(per * max(1, units.get("count", 1))))

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...],
                    prices: PriceTable) -> int:
        """What was produced: each output at the unit price, by its real duration for videos (rounded
        up to whole seconds, never above what was reserved)."""
        if not outputs:
            return 0
        one = dict(units, count=1)
        total = 0
        for out in outputs:
            produced = (out.meta.get("video") or {}).get("duration") if out.kind == "video" else None
            if isinstance(produced, int | float) and not isinstance(produced, bool) and produced > 0:
                one["seconds"] = min(float(produced), units.get("seconds", 0) or float(produced))
            total += self.price(one, prices)
        return total

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("POST", "/vidu/v1/tasks", json_body=ref.upstream_request,
                        headers=auth_header("Token", account.secret))

    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted:
        if 200 <= reply.status < 300:
            body = reply.json()
            return Submitted(Outcome.ACCEPTED, upstream_id=str(body["id"]), upstream_state=body.get("state"),
                             reply=body)
        reason, message = error_reason(reply)
        insufficient = "insufficient" in (message + (reason or "")).lower() or reason == "CreditInsufficient"
        if insufficient:
            return Submitted(Outcome.NO_CREDIT, error_code=reason, error_message=message)
        if reply.status in (401, 403):
            return Submitted(Outcome.AUTH, error_code=reason, error_message=message)
        if reply.status == 429 or reply.status >= 500 or reply.status == 408:
            return Submitted(Outcome.RETRY, error_code=reason, error_message=message)
        return Submitted(Outcome.REFUSED, error_code=reason or "BadRequest", error_message=message)

    # ------------------------------------------------------------ poll
    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("GET", f"/vidu/v1/tasks/{ref.upstream_id}", headers=auth_header("Token", account.secret))

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        body = reply.json()
        raw = str(body["state"])
        state = STATES.get(raw)
        known = state is not None
        state = state or S.RUNNING
        outputs: tuple[OutputSpec, ...] = ()
        if state is S.SUCCEEDED:
            outputs = tuple(_output(c) for c in body.get("creations") or [])
            if not outputs:  # success without a result is not a result: keep polling
                return Progress(S.RUNNING, raw, reply=body, known=False)
        progress = {"created": 0, "queueing": 5, "preparation": 10, "scheduling": 15,
                    "processing": 50, "success": 100}.get(raw)
        return Progress(state, raw, progress=progress, outputs=outputs, reply=body, known=known,
                        error_code=body.get("err_code") or None, error_message=body.get("err_msg") or None)

    def build_cancel(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("DELETE", f"/vidu/v1/tasks/{ref.upstream_id}",
                        headers=auth_header("Token", account.secret))

    def parse_cancel(self, reply: HttpReply, ref: TaskRef) -> bool:
        return 200 <= reply.status < 300

    # ------------------------------------------------------------ reconcile (tasks/history/me)
    def build_find(self, account: Account, ref: TaskRef, page: int) -> HttpCall:
        return HttpCall("GET", "/vidu/v1/tasks/history/me", query={"page_no": str(page), "page_size": "20"},
                        headers=auth_header("Token", account.secret))

    def parse_find(self, reply: HttpReply, ref: TaskRef, not_before: float) -> FindResult:
        """The web format takes no marker: match the request's fingerprint and time, oldest first."""
        body = reply.json()
        items = body.get("tasks") or []
        want = _fingerprint(ref.upstream_request)
        found: list[str] = []
        older = False
        for t in items:
            created = _parse_time(t.get("created_at"))
            if created and created < not_before:
                older = True
                continue
            if _fingerprint(t) == want:
                found.append(str(t["id"]))
        return FindResult(list(reversed(found)), more=bool(items) and not older)

    # ------------------------------------------------------------ render
    def render(self, task: TaskView) -> dict[str, Any]:
        req = task.request
        up = task.upstream_reply if isinstance(task.upstream_reply, dict) else {}
        inp = dict(req.get("input") or {})
        inp.setdefault("creation_id", "0")
        inp["lang"] = (up.get("input") or {}).get("lang") or inp.get("lang") or "en"
        inp["prompts"] = [{"negative": False, "enhance": False, "recaption": "", **p}
                          for p in inp.get("prompts") or [] if isinstance(p, dict)]
        failed = task.state is S.FAILED or task.state is S.CANCELLED
        out: dict[str, Any] = {
            "id": task.public_id, "input": inp, "settings": req.get("settings") or {}, "type": task.action,
            "state": vidu_state(task), "err_code": (task.error_code or "") if failed else "",
            "created_at": iso(task.created_at),
            "creations": [_creation(task, o.public_id, o.kind, o.urls, o.meta) for o in task.outputs],
        }
        if task.state is S.FAILED:
            out["err_msg"] = task.error_message or ""
        return out

    def provider_state(self, task: TaskView) -> str:
        return vidu_state(task)

    def render_state(self, task: TaskView) -> dict[str, Any]:
        """One event of the SSE stream `GET /vidu/v1/tasks/state` (vidu.md §2.6)."""
        state = vidu_state(task)
        left = 0 if task.state in (S.SUCCEEDED, S.FAILED, S.CANCELLED) else 30
        wait = 0 if state not in ("created", "queueing") else 1
        return {"state": state, "estimated_time_left": left,
                "err_code": (task.error_code or "") if task.state is S.FAILED else "",
                "queue_wait_time": {"min": [0], "max": [wait]}}


def vidu_state(task: TaskView) -> str:
    if task.state is S.RUNNING:
        raw = task.upstream_state or "created"
        return raw if raw in _IN_PROGRESS else "processing"
    return {S.QUEUED: "queueing", S.SUBMITTING: "created", S.AMBIGUOUS: "queueing",
            S.REHOSTING: "processing", S.SUCCEEDED: "success", S.FAILED: "failed",
            S.CANCELLED: "canceled"}[task.state]


def _check_settings(settings: Mapping[str, Any]) -> None:
    """Types first (a string duration is FieldInvalid); ranges per generation come after."""
    duration = settings.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
        raise _field_error("FieldInvalid", "settings.duration must be a number of seconds", "settings.duration")
    count = settings.get("sample_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 4):
        raise _field_error("FieldInvalid", "settings.sample_count must be an integer from 1 to 4",
                           "settings.sample_count")
    for name in ("model", "model_version", "resolution"):
        if name in settings and (isinstance(settings[name], bool) or not isinstance(settings[name], str | int | float)):
            raise _field_error("FieldInvalid", f"settings.{name} must be a string", f"settings.{name}")


def _output(c: Mapping[str, Any]) -> OutputSpec:
    urls = {f: c[f] for f in URL_FIELDS if isinstance(c.get(f), str) and c[f]}
    meta = {k: v for k, v in c.items() if k not in URL_FIELDS and k not in ("id", "task_id")}
    return OutputSpec(kind=str(c.get("type") or "video"), upstream_id=str(c.get("id")), urls=urls, meta=meta)


def _creation(task: TaskView, public_id: str, kind: str, urls: Mapping[str, str],
              meta: Mapping[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = {"id": public_id, "task_id": task.public_id, "type": kind, "grade": "draft",
                         "vote": "unspecified", "is_favor": False, "is_deleted": False, "creator_id": "0",
                         "err_code": "", **meta}
    c["id"], c["task_id"] = public_id, task.public_id
    for f in URL_FIELDS:
        c[f] = urls.get(f, "")
    if not c["nomark_uri"]:
        c["nomark_uri"] = c["uri"]
    c.setdefault("created_at", iso(task.updated_at))
    return c


ADAPTORS = [ViduWebAdaptor()]
