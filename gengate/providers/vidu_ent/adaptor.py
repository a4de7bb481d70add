"""Vidu platform format (`/ent/v2/<action>`, vidu.md §3): validate, build and parse upstream calls, render.

One path per action, a flat JSON body, `Authorization: Token <api key>` upstream. Every body field,
known or not, passes through (§3.6); gengate rewrites only `task_id`/`id`, creation ids and URLs. The
model generations (durations, resolutions) are the web format's, shared with `gengate.providers.vidu`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from gengate.core.adaptor import (
    INLINE_PREFIX,
    Account,
    FindResult,
    HttpCall,
    HttpReply,
    Outcome,
    OutputSpec,
    Parent,
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
from gengate.providers.vidu.adaptor import Generation, error_reason, generation_of, iso

log = logging.getLogger("gengate.vidu_ent")
S = TaskState

PROVIDER = "vidu-ent"
# Upstream state → gengate state; anything else keeps polling (and is logged): vidu.md §3.3.
STATES: dict[str, TaskState] = {"created": S.RUNNING, "queueing": S.RUNNING, "processing": S.RUNNING,
                                "success": S.SUCCEEDED, "failed": S.FAILED}
_IN_PROGRESS = ("created", "queueing", "processing")
CANCELLED_CODE = "UserCancelled"  # the platform has no cancelled state: a failed task with this reason

GENERATE = ("text2video", "img2video", "start-end2video", "reference2video")
UPSCALE = ("upscale", "upscale-new")
ACTIONS = (*GENERATE, *UPSCALE)
# How many `images` each action takes (§3.1); text2video takes none.
IMAGE_COUNTS: dict[str, tuple[int, int]] = {"text2video": (0, 0), "img2video": (1, 1), "start-end2video": (2, 2),
                                            "reference2video": (1, 7)}
ASPECTS = ("16:9", "9:16", "1:1")
WIDE_ASPECTS = ("3:4", "4:3")  # q2/q3 only
MOVEMENTS = ("auto", "small", "medium", "large")
UPSCALE_RESOLUTIONS = {"1080p": "1080p", "2k": "2K", "4k": "4K", "8k": "8K"}
RESOLUTIONS = {"360p": "360p", "540p": "540p", "720p": "720p", "1080p": "1080p"}
LEGACY_UPSCALE_MODEL = "vidu1.0"
UPSCALE_NEW_MODEL = "upscale-new"  # upscale-new names no model: tasks by URL carry this name
INLINE_THRESHOLD = 64 * 1024  # an image string longer than this (base64) is stashed out of the task row
MAX_PAYLOAD = 1024 * 1024
URL_FIELDS = ("url", "cover_url", "watermarked_url")

# Shipped prices (credits): per second of video by resolution class, per upscaled second by target.
PRICES: dict[str, int] = {
    "vidu-ent:video_second:360p": 5_000,
    "vidu-ent:video_second:540p": 5_000,
    "vidu-ent:video_second:720p": 10_000,
    "vidu-ent:video_second:1080p": 15_000,
    "vidu-ent:upscale_second:1080p": 5_000,
    "vidu-ent:upscale_second:2K": 10_000,
    "vidu-ent:upscale_second:4K": 20_000,
    "vidu-ent:upscale_second:8K": 40_000,
}
# An upscale of a video gengate did not make (upscale-new by URL): its length is unknown, so the
# reservation is this many seconds and the settlement what the result's meta says, if anything.
UPSCALE_URL_SECONDS = 16


def _error(reason: str, message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, code=reason, param=param)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def infer_action(body: Mapping[str, Any]) -> str:
    """The action a body reads as when no path names it (the route always does)."""
    if "creation_id" in body:
        return "upscale"
    if "video_url" in body or "video_creation_id" in body:
        return "upscale-new"
    images = body.get("images")
    count = len(images) if isinstance(images, list) else 0
    return {0: "text2video", 1: "img2video", 2: "start-end2video"}.get(count, "reference2video")


class ViduEntAdaptor:
    provider: ClassVar[str] = PROVIDER
    id_kind: ClassVar[str] = "digits18"
    prices: ClassVar[Mapping[str, int]] = PRICES

    # ------------------------------------------------------------ create
    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        return await self.prepare_action(infer_action(body) if isinstance(body, dict) else "text2video",
                                         body, resolver)

    async def prepare_action(self, action: str, body: Any, resolver: Resolver) -> Prepared:
        """Validate a create of `action` (one of ACTIONS) as the platform does (§3.1)."""
        if action not in ACTIONS:
            raise _error("NotFound", f"unknown action {action}")
        if not isinstance(body, dict):
            raise _error("BadRequest", "the request body must be a JSON object")
        callback = body.get("callback_url")
        if callback is not None and not isinstance(callback, str):
            raise _error("FieldInvalid", "callback_url must be a string", "callback_url")
        _check_common(body)
        request = json.loads(json.dumps({k: v for k, v in body.items() if k != "callback_url"}))
        upstream = json.loads(json.dumps(request))
        if action in UPSCALE:
            model, units, parent = await _prepare_upscale(action, request, upstream, resolver)
        else:
            model, units = _prepare_generate(action, request)
            parent = None
            await _stash_images(request, upstream, resolver)
        return Prepared(action=action, model=model, request=request, upstream_request=upstream, units=units,
                        parent=parent, callback_url=callback)

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        """Whole started seconds (at least one) times the per-second rate of the resolution class (or of
        the upscale target). At least 1 credit."""
        res = next((k[4:] for k in units if k.startswith("res:")), "720p")
        seconds = max(1, math.ceil(units.get("seconds", 0) - 1e-9))
        if units.get("upscale"):
            rate = prices.get(f"vidu-ent:upscale_second:{res}", prices["vidu-ent:upscale_second:1080p"])
        else:
            rate = prices.get(f"vidu-ent:video_second:{res}", prices["vidu-ent:video_second:720p"])
        return max(1, math.ceil(rate * seconds))

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...],
                    prices: PriceTable) -> int:
        """The platform makes one video per task: billed at what was asked (the reply gives no length),
        or the produced length when the result says it, never above the reservation."""
        if not outputs:
            return 0
        produced = outputs[0].meta.get("duration")
        if _is_number(produced) and produced > 0:
            units = dict(units, seconds=min(float(produced), units.get("seconds", 0) or float(produced)))
        return self.price(units, prices)

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("POST", f"/ent/v2/{ref.action}", json_body=ref.upstream_request,
                        headers=auth_header("Token", account.secret))

    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted:
        if 200 <= reply.status < 300:
            body = reply.json()
            return Submitted(Outcome.ACCEPTED, upstream_id=str(body["task_id"]), upstream_state=body.get("state"),
                             reply=body)
        reason, message = error_reason(reply)
        if reason == "CreditInsufficient" or "insufficient" in message.lower():
            return Submitted(Outcome.NO_CREDIT, error_code=reason, error_message=message)
        if reply.status in (401, 403):
            return Submitted(Outcome.AUTH, error_code=reason, error_message=message)
        if reply.status in (408, 429) or reply.status >= 500:
            return Submitted(Outcome.RETRY, error_code=reason, error_message=message)
        return Submitted(Outcome.REFUSED, error_code=reason or "BadRequest", error_message=message)

    # ------------------------------------------------------------ poll
    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("GET", f"/ent/v2/tasks/{ref.upstream_id}/creations",
                        headers=auth_header("Token", account.secret))

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        body = reply.json()
        raw = str(body["state"])
        state = STATES.get(raw)
        known = state is not None
        state = state or S.RUNNING
        err = str(body.get("err_code") or "") or None
        if state is S.FAILED and err == CANCELLED_CODE:
            state = S.CANCELLED
        outputs: tuple[OutputSpec, ...] = ()
        if state is S.SUCCEEDED:
            outputs = tuple(_output(c, ref) for c in body.get("creations") or [] if isinstance(c, dict))
            if not any(o.urls for o in outputs):  # success without a result is not a result: keep polling
                return Progress(S.RUNNING, raw, reply=body, known=False)
        progress = {"created": 0, "queueing": 10, "processing": 50, "success": 100}.get(raw)
        return Progress(state, raw, progress=progress, outputs=outputs, reply=body, known=known,
                        error_code=err, error_message=body.get("err_msg") or err)

    def build_cancel(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("POST", f"/ent/v2/tasks/{ref.upstream_id}/cancel", json_body={"id": ref.upstream_id},
                        headers=auth_header("Token", account.secret))

    def parse_cancel(self, reply: HttpReply, ref: TaskRef) -> bool:
        return 200 <= reply.status < 300

    # ------------------------------------------------------------ reconcile (GET /ent/v2/tasks)
    def build_find(self, account: Account, ref: TaskRef, page: int) -> HttpCall:
        return HttpCall("GET", "/ent/v2/tasks", query={"pager.page": str(page), "pager.pagesz": "100"},
                        headers=auth_header("Token", account.secret))

    def parse_find(self, reply: HttpReply, ref: TaskRef, not_before: float) -> FindResult:
        """No marker goes upstream: a job matches when it echoes every field the request sent (the
        platform adds its defaults) and was made after the submit; oldest first."""
        body = reply.json()
        items = body.get("tasks") or []
        found: list[str] = []
        older = False
        for t in items:
            if not isinstance(t, dict):
                continue
            created = _parse_time(t.get("created_at"))
            if created and created < not_before:
                older = True
                continue
            if echoes(ref.upstream_request, t):
                found.append(str(t.get("task_id") or t.get("id")))
        return FindResult(list(reversed(found)), more=bool(items) and bool(body.get("next_page_token")) and not older)

    # ------------------------------------------------------------ render
    def render(self, task: TaskView) -> dict[str, Any]:
        """`GET /ent/v2/tasks/{id}/creations` (§3.4); also the body of gengate's callbacks (§3.5)."""
        req = task.request
        up = task.upstream_reply if isinstance(task.upstream_reply, dict) else {}
        out: dict[str, Any] = {
            "id": task.public_id, "state": platform_state(task), "err_code": _err_code(task),
            "credits": up.get("credits", 0), "payload": req.get("payload", ""), "bgm": req.get("bgm", False),
            "off_peak": req.get("off_peak", False),
            "creations": [_creation(o.public_id, o.urls) for o in task.outputs],
        }
        if task.state is S.FAILED and task.error_message:
            out["err_msg"] = task.error_message
        return out

    def render_created(self, task: TaskView) -> dict[str, Any]:
        """The create reply (§3.2): the request echoed, with the task's id, state, credits and time."""
        up = task.upstream_reply if isinstance(task.upstream_reply, dict) else {}
        req = task.request
        out: dict[str, Any] = {"task_id": task.public_id, "state": platform_state(task)}
        if task.action in GENERATE:
            out.update({"model": req.get("model", ""), "prompt": req.get("prompt", ""), "images": []})
            out.update(_generation_defaults(task.action, req, up))
        out.update({k: v for k, v in req.items() if k not in ("images",)})
        if task.action in GENERATE:
            out["images"] = req.get("images") or []
        out["task_id"], out["state"] = task.public_id, platform_state(task)
        out.setdefault("payload", "")
        out.setdefault("off_peak", False)
        out["credits"] = up.get("credits", 0)
        out["created_at"] = iso(task.created_at)
        return out

    def provider_state(self, task: TaskView) -> str:
        return platform_state(task)


def platform_state(task: TaskView) -> str:
    if task.state is S.RUNNING:
        raw = task.upstream_state or "created"
        return raw if raw in _IN_PROGRESS else "processing"
    return {S.QUEUED: "queueing", S.SUBMITTING: "created", S.AMBIGUOUS: "queueing", S.REHOSTING: "processing",
            S.SUCCEEDED: "success", S.FAILED: "failed", S.CANCELLED: "failed"}[task.state]


def _err_code(task: TaskView) -> str:
    if task.state is S.CANCELLED:
        return CANCELLED_CODE
    if task.state is S.FAILED:
        return task.error_code or "InternalServiceFailure"
    return ""


def _creation(public_id: str, urls: Mapping[str, str]) -> dict[str, Any]:
    main = urls.get("url") or next(iter(urls.values()), "")
    return {"id": public_id, "url": main, "cover_url": urls.get("cover_url", ""),
            "watermarked_url": urls.get("watermarked_url", main)}


def _output(c: Mapping[str, Any], ref: TaskRef) -> OutputSpec:
    urls = {f: c[f] for f in URL_FIELDS if isinstance(c.get(f), str) and c[f]}
    meta = {k: v for k, v in c.items() if k not in URL_FIELDS and k != "id"}
    meta["model"] = ref.model  # an upscale of this creation is billed and routed as its model
    seconds = ref.units.get("seconds")
    if "duration" not in meta and seconds:
        meta["duration"] = seconds
    return OutputSpec(kind="video", upstream_id=str(c.get("id")), urls=urls, meta=meta)


# ---------------------------------------------------------------- validation
def _check_common(body: Mapping[str, Any]) -> None:
    """The fields every create accepts (§3.1), by type."""
    payload = body.get("payload")
    if payload is not None and (not isinstance(payload, str) or len(payload.encode()) > MAX_PAYLOAD):
        raise _error("FieldInvalid", "payload must be a string of at most 1 MiB", "payload")
    for name in ("off_peak", "watermark", "bgm"):
        if name in body and not isinstance(body[name], bool):
            raise _error("FieldInvalid", f"{name} must be a boolean", name)
    pos = body.get("wm_position")
    if pos is not None and (isinstance(pos, bool) or pos not in (1, 2, 3, 4)):
        raise _error("FieldInvalid", "wm_position must be 1, 2, 3 or 4", "wm_position")
    for name in ("wm_url", "model", "prompt"):
        if name in body and not isinstance(body[name], str):
            raise _error("FieldInvalid", f"{name} must be a string", name)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise _error("FieldInvalid", "seed must be a non-negative integer", "seed")


def _prepare_generate(action: str, request: dict[str, Any]) -> tuple[str, dict[str, float]]:
    model = request.get("model")
    if not model or not model.strip():
        raise _error("FieldLacking", "model is required", "model")
    prompt = request.get("prompt")
    if action in ("text2video", "reference2video") and (not prompt or not prompt.strip()):
        raise _error("FieldLacking", f"{action} needs a prompt", "prompt")
    if prompt is not None and len(prompt) > 2000:
        raise _error("FieldInvalid", "prompt is at most 2000 characters", "prompt")
    low, high = IMAGE_COUNTS[action]
    images = request.get("images")
    if high == 0:
        if images not in (None, []):
            raise _error("FieldUnwanted", "text2video takes no images", "images")
    else:
        if images is None:
            raise _error("FieldLacking", f"{action} needs images", "images")
        if not isinstance(images, list) or not all(isinstance(i, str) and i.strip() for i in images):
            raise _error("FieldInvalid", "images must be an array of image URLs or data URLs", "images")
        if not low <= len(images) <= high:
            wanted = f"exactly {low}" if low == high else f"{low} to {high}"
            raise _error("FieldItemCountOutOfRange", f"{action} takes {wanted} images", "images")
        for i, image in enumerate(images):
            if not image.startswith(("http://", "https://", "data:image/")) and len(image) < 100:
                raise _error("ImageFormatInvalid", f"images[{i}] must be a URL or a data:image/... base64 URL",
                             "images")
    gen = generation_of({"model": model})
    aspect = request.get("aspect_ratio")
    allowed = ASPECTS + (WIDE_ASPECTS if gen.name in ("q2", "q3", "any") else ())
    if aspect is not None and aspect not in allowed:
        raise _error("FieldInvalid", f"aspect_ratio must be one of {', '.join(allowed)}", "aspect_ratio")
    movement = request.get("movement_amplitude")
    if movement is not None and movement not in MOVEMENTS:
        raise _error("FieldInvalid", f"movement_amplitude must be one of {', '.join(MOVEMENTS)}",
                     "movement_amplitude")
    seconds = _duration(request, gen)
    res = _resolution(request, gen)
    return model, {"seconds": float(seconds), "res:" + res: 1.0}


def _duration(request: Mapping[str, Any], gen: Generation) -> int:
    raw = request.get("duration")
    if raw is None:
        return gen.default_duration
    if not _is_number(raw) or float(raw) not in gen.durations:
        offered = gen.durations
        text = f"{offered[0]} to {offered[-1]}" if len(offered) > 2 else " or ".join(map(str, offered))
        raise _error("FieldInvalid", f"duration must be {text} (whole seconds) for this model", "duration")
    return int(raw)


def _resolution(request: Mapping[str, Any], gen: Generation) -> str:
    raw = request.get("resolution")
    if raw is None:
        return gen.default_resolution
    cls = RESOLUTIONS.get(str(raw).lower()) if isinstance(raw, str) else None
    if cls is None or cls not in gen.resolutions:
        offered = ", ".join(sorted(gen.resolutions, key=lambda r: int(r[:-1])))
        raise _error("FieldInvalid", f"resolution must be one of {offered} for this model", "resolution")
    return cls


async def _prepare_upscale(action: str, request: dict[str, Any], upstream: dict[str, Any],
                           resolver: Resolver) -> tuple[str, dict[str, float], Parent | None]:
    """An upscale refers to a creation of this key (mapped to the upstream's id and pinned to the
    account that made it), or for upscale-new to a video URL."""
    if action == "upscale":
        model = request.setdefault("model", LEGACY_UPSCALE_MODEL)
        upstream.setdefault("model", LEGACY_UPSCALE_MODEL)
        if model != LEGACY_UPSCALE_MODEL:
            raise _error("FieldInvalid", f"upscale takes model {LEGACY_UPSCALE_MODEL}", "model")
        field, target = "creation_id", "1080p"
    else:
        target = request.get("upscale_resolution", "1080p")
        if not isinstance(target, str) or target.lower() not in UPSCALE_RESOLUTIONS:
            raise _error("FieldInvalid", "upscale_resolution must be 1080p, 2K, 4K or 8K", "upscale_resolution")
        target = UPSCALE_RESOLUTIONS[target.lower()]
        field = "video_creation_id"
        if request.get(field) in (None, ""):  # the creation id wins if both are given (§3.1)
            url = request.get("video_url")
            if url in (None, ""):
                raise _error("FieldLacking", "upscale-new needs video_creation_id or video_url", "video_url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _error("FieldInvalid", "video_url must be an http(s) URL", "video_url")
            return UPSCALE_NEW_MODEL, {"seconds": float(UPSCALE_URL_SECONDS), "upscale": 1.0,
                                       "res:" + target: 1.0}, None
    creation = request.get(field)
    if creation in (None, ""):
        raise _error("FieldLacking", f"{action} needs {field}", field)
    if isinstance(creation, bool) or not isinstance(creation, str | int):
        raise _error("FieldInvalid", f"{field} must be a string", field)
    found = await resolver.output(str(creation))
    if found is None:
        raise ReferenceNotFound("creation not found", code="CreationNotFound")
    parent, upstream_creation, meta = found
    upstream[field] = upstream_creation
    produced = meta.get("duration")
    seconds = float(produced) if _is_number(produced) and produced > 0 else float(UPSCALE_URL_SECONDS)
    model = str(meta.get("model") or UPSCALE_NEW_MODEL)
    return model, {"seconds": min(seconds, 16.0), "upscale": 1.0, "res:" + target: 1.0}, parent


async def _stash_images(request: dict[str, Any], upstream: dict[str, Any], resolver: Resolver) -> None:
    """Large base64 images leave the stored request for storage (both copies)."""
    images = request.get("images")
    if not isinstance(images, list):
        return
    for i, image in enumerate(images):
        if isinstance(image, str) and len(image) > INLINE_THRESHOLD:
            images[i] = upstream["images"][i] = await resolver.stash(image)


def _generation_defaults(action: str, req: Mapping[str, Any], up: Mapping[str, Any]) -> dict[str, Any]:
    """Fields the platform's create reply shows even when the client left them out (§3.2)."""
    gen = generation_of({"model": req.get("model", "")})
    out: dict[str, Any] = {"duration": gen.default_duration, "resolution": gen.default_resolution,
                           "movement_amplitude": "auto", "bgm": False}
    if action in ("text2video", "reference2video"):
        out["aspect_ratio"] = "16:9"
    if action == "text2video":
        out["style"] = "general"
    if "seed" in up:
        out["seed"] = up["seed"]
    return out


MATCHED_FIELDS = ("model", "prompt", "duration", "resolution", "aspect_ratio", "seed", "payload", "creation_id",
                  "video_creation_id", "video_url", "upscale_resolution", "images")


def echoes(request: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """Whether a listed job echoes the request's identifying fields (large images by their sha256)."""
    for name in MATCHED_FIELDS:
        if name not in request:
            continue
        mine, theirs = request[name], item.get(name)
        if isinstance(mine, list):
            if not isinstance(theirs, list) or [_content_key(v) for v in mine] != [_content_key(v) for v in theirs]:
                return False
        elif _content_key(mine) != _content_key(theirs):
            return False
    return True


def _content_key(content: Any) -> Any:
    if isinstance(content, str):
        if content.startswith(INLINE_PREFIX):
            return "sha256:" + content.rsplit("/", 1)[-1]
        if len(content) > INLINE_THRESHOLD:
            return "sha256:" + hashlib.sha256(content.encode()).hexdigest()
    return content


def _parse_time(raw: Any) -> float:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


ADAPTORS = [ViduEntAdaptor()]
