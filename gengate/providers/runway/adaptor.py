"""Runway (`/runway/v1`): validate a create, build and parse the upstream calls, render the task object.

runway.md §2-§6. The task object is a union keyed on `status`; `runwayml` 5.x needs `createdAt`
always, `estimatedCost.credits` while live and an integer `cost.credits` once ended (interface.md
"Format details"). Costs are shown in Runway credits: one Runway credit is US$0.01, that is
10,000 gengate credits.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from gengate.core.adaptor import (
    Account,
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
)
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.runway import rules, rules_audio, rules_video
from gengate.providers.runway.uploads import NoUploads, Uploads

log = logging.getLogger("gengate.runway")
S = TaskState

API_VERSION = "2024-11-06"  # what gengate sends upstream unless the channel says otherwise (`--option version=`)
CREDIT = 10_000  # gengate credits in one Runway credit (US$0.01)
INLINE_THRESHOLD = 64 * 1024  # a data URI longer than this is stashed out of the stored request
ACTIONS = {"image_to_video": rules.check_image_to_video, "text_to_image": rules.check_text_to_image,
           "text_to_video": rules.check_text_to_video, "image_upscale": rules.check_image_upscale,
           "video_upscale": rules.check_video_upscale, "video_to_video": rules_video.check_video_to_video,
           "character_performance": rules_video.check_character_performance, **rules_audio.AUDIO_CHECKS}
IMAGE_ACTIONS = frozenset({"text_to_image", "image_upscale"})
AUDIO_ACTIONS = frozenset(rules_audio.AUDIO_CHECKS)

# Upstream status → gengate state; anything else keeps polling (and is logged).
STATES: dict[str, TaskState] = {
    "PENDING": S.RUNNING, "THROTTLED": S.RUNNING, "RUNNING": S.RUNNING,
    "SUCCEEDED": S.SUCCEEDED, "FAILED": S.FAILED, "CANCELLED": S.CANCELLED,
}
_LIVE = ("PENDING", "THROTTLED", "RUNNING")

# Shipped prices (gengate credits): Runway's own rates, 5 credits a second for gen4_turbo and
# gen3a_turbo; gen4_image 5 credits at 720p, 8 at 1080p; gen4_image_turbo 2 per image. Text to video
# (Runway's published API rates; runway.md gives none): gen4.5 12 credits a second; veo3.1 20 a second,
# 40 with audio; veo3.1_fast 10, 15 with audio (`:audio`: the rate of a video with sound). Image
# upscale: 10 credits an image, whatever the scale (gengate's own figure: neither runway.md nor the SDK
# states a rate; override `runway:image:magnific_precision_upscaler_v2:upscale` in `[prices]`). Video
# upscale, a second of the input (gengate's own figures too): magnific_video_upscaler_creative 10,
# enhance_frame_rate 2; 40 s are reserved (the core caps any shipped reservation at 1,000,000 credits:
# gengate/core/pricing.py) and the seconds billed are Runway's reported cost at that rate.
# Video to video: gen4_aleph 15 a second (Runway's published rate; an estimate, override it), 5 s (the
# most it edits) reserved, settled like the video upscale from the cost Runway reports. Character
# performance: act_two 5 a second (Runway's rate), 30 s (the longest reference) reserved, settled from
# the reported cost. Audio: one credit per `audio_unit` (rules_audio.py: 50 characters of speech, or a
# model's slice of seconds), estimates from Runway's published ElevenLabs rates; override them.
PRICES: dict[str, int] = {
    "runway:video_second:gen4_turbo": 5 * CREDIT,
    "runway:video_second:gen3a_turbo": 5 * CREDIT,
    "runway:video_second:gen4.5": 12 * CREDIT,
    "runway:video_second:veo3.1": 20 * CREDIT,
    "runway:video_second:veo3.1:audio": 40 * CREDIT,
    "runway:video_second:veo3.1_fast": 10 * CREDIT,
    "runway:video_second:veo3.1_fast:audio": 15 * CREDIT,
    "runway:image:gen4_image:720p": 5 * CREDIT,
    "runway:image:gen4_image:1080p": 8 * CREDIT,
    "runway:image:gen4_image_turbo:720p": 2 * CREDIT,
    "runway:image:gen4_image_turbo:1080p": 2 * CREDIT,
    "runway:image:magnific_precision_upscaler_v2:upscale": 10 * CREDIT,
    "runway:video_second:magnific_video_upscaler_creative": 10 * CREDIT,
    "runway:video_second:enhance_frame_rate": 2 * CREDIT,
    "runway:video_second:gen4_aleph": 15 * CREDIT,
    "runway:video_second:act_two": 5 * CREDIT,
    **{f"runway:audio_unit:{model}": CREDIT for model in rules_audio.AUDIO_MODELS},
}


# The action a model's create is, for views that do not fix it by path (image_to_video otherwise).
_ACTION_OF: dict[str, str] = {
    **dict.fromkeys(rules.IMAGE_MODELS, "text_to_image"), **dict.fromkeys(rules.TEXT_VIDEO_MODELS, "text_to_video"),
    **dict.fromkeys(rules.UPSCALE_IMAGE_MODELS, "image_upscale"),
    **dict.fromkeys(rules.VIDEO_UPSCALE_MODELS, "video_upscale"),
    **dict.fromkeys(rules_video.ALEPH_MODELS, "video_to_video")}


def iso_ms(ts: float) -> str:
    """ISO-8601 with milliseconds and `Z`, as Runway writes timestamps."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _unit(units: Mapping[str, float], prefix: str, default: str) -> str:
    return next((k[len(prefix):] for k in units if k.startswith(prefix)), default)


def _runway_credits(credits: int | None) -> int:
    """gengate credits as whole Runway credits (a started one counts)."""
    return math.ceil((credits or 0) / CREDIT)


async def _stash_data_uris(value: Any, resolver: Resolver) -> Any:
    """Large data URIs leave the stored request for storage; the upstream create gets them back."""
    if isinstance(value, str) and len(value) > INLINE_THRESHOLD and value[:5].lower() == "data:":
        return await resolver.stash(value)
    if isinstance(value, list):
        return [await _stash_data_uris(v, resolver) for v in value]
    if isinstance(value, dict):
        return {k: await _stash_data_uris(v, resolver) for k, v in value.items()}
    return value


def _headers(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.secret}",
            "X-Runway-Version": account.options.get("version") or API_VERSION}


def _error_of(reply: HttpReply) -> tuple[str, bool]:
    """(message, whether it is a body validation error) from Runway's error body."""
    try:
        body = reply.json()
    except ValueError:
        return reply.body[:200].decode("utf-8", "replace"), False
    if not isinstance(body, dict):
        return "", False
    message = str(body.get("error") or "")
    issues = body.get("issues")
    if not isinstance(issues, list) or not issues:
        return message, False
    parts = []
    for issue in issues:
        if isinstance(issue, dict):
            path = ".".join(str(p) for p in issue.get("path") or [])
            text = issue.get("message") or (f"expected one of {issue['values']}" if issue.get("values") else "")
            parts.append(f"{path}: {text}" if path else str(text))
    return f"{message}: {'; '.join(parts)}" if parts else message, True


class RunwayAdaptor:
    provider: ClassVar[str] = "runway"
    id_kind: ClassVar[str] = "uuid"
    prices: ClassVar[Mapping[str, int]] = PRICES

    # ------------------------------------------------------------ create
    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        """A create whose action follows from its model (`gen4_image` draws an image, `gen4.5` films
        a text, `gen4_turbo` animates an image), for other views such as `/v1/videos`; Runway's own
        routes fix the action by path (`ActionAdaptor`)."""
        model = body.get("model") if isinstance(body, dict) else None
        action = _ACTION_OF.get(model, "image_to_video") if isinstance(model, str) else "image_to_video"
        return await self.prepare_action(action, body, resolver)

    async def prepare_action(self, action: str, request: Any, resolver: Resolver,
                             uploads: Uploads | NoUploads | None = None) -> Prepared:
        """`uploads`: the calling key's `runway://` URIs, resolved into what the upstream can read
        (the stored client request keeps the URI)."""
        checked = ACTIONS[action](request)
        stored = await _stash_data_uris(json.loads(json.dumps(request)), resolver)
        upstream = await (uploads or NoUploads()).resolve(json.loads(json.dumps(request)))
        return Prepared(action=action, model=checked.model, request=stored,
                        upstream_request=await _stash_data_uris(upstream, resolver), units=checked.units)

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        """Whole seconds of video at the model's rate (its `:audio` rate for a video with sound), one
        image at the model's rate for its resolution, or audio units at the model's rate; never below 1."""
        model = _unit(units, "model:", "gen4_turbo")
        if units.get("audio_units"):
            per = prices.get(f"runway:audio_unit:{model}", CREDIT)
            return max(1, per * max(1, math.ceil(units["audio_units"] - 1e-9)))
        if units.get("images"):
            res = _unit(units, "res:", "1080p")
            per = prices.get(f"runway:image:{model}:{res}", prices["runway:image:gen4_image:1080p"])
            return max(1, per * max(1, math.ceil(units["images"])))
        seconds = max(1, math.ceil(units.get("seconds", 0) - 1e-9))
        per = prices.get(f"runway:video_second:{model}", prices["runway:video_second:gen4_turbo"])
        if units.get("audio"):
            per = prices.get(f"runway:video_second:{model}:audio", per)
        return max(1, per * seconds)

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...], prices: PriceTable) -> int:
        """A Runway video is the duration asked for; an image task is billed per image produced; an
        upscaled or edited video (`from_cost`) by the seconds of input that Runway's reported cost
        stands for (at the shipped rate, which is Runway's), else the reservation."""
        if not outputs:
            return 0
        if units.get("images"):
            return self.price({**units, "images": float(len(outputs))}, prices)
        upstream = outputs[0].meta.get("credits")
        by_cost = units.get("upscale") or units.get("from_cost")
        if by_cost and isinstance(upstream, int | float) and not isinstance(upstream, bool):
            model = _unit(units, "model:", "")
            amount, key = (("audio_units", f"runway:audio_unit:{model}") if "audio_units" in units
                           else ("seconds", f"runway:video_second:{model}"))
            rate = PRICES.get(key, 0) / CREDIT
            if rate > 0:
                used = min(units.get(amount, 0), max(1, math.ceil(upstream / rate - 1e-9)))
                return self.price({**units, amount: float(used)}, prices)
        return self.price(units, prices)

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("POST", f"/v1/{ref.action}", json_body=ref.upstream_request, headers=_headers(account))

    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted:
        if 200 <= reply.status < 300:
            body = reply.json()
            upstream_id = body["id"]
            if not isinstance(upstream_id, str) or not upstream_id:
                raise ValueError("no task id in the create reply")  # the core reads it as ambiguous
            return Submitted(Outcome.ACCEPTED, upstream_id=upstream_id, upstream_state="PENDING", reply=body)
        message, validation = _error_of(reply)
        if "enough credits" in message.lower():
            return Submitted(Outcome.NO_CREDIT, error_code="INSUFFICIENT_CREDITS", error_message=message)
        if reply.status in (401, 403):
            return Submitted(Outcome.AUTH, error_code="UNAUTHORIZED", error_message=message)
        if reply.status in (408, 429) or reply.status >= 500:
            return Submitted(Outcome.RETRY, error_code=f"HTTP_{reply.status}", error_message=message)
        return Submitted(Outcome.REFUSED, error_code="validation" if validation else "BAD_REQUEST",
                         error_message=message or f"the provider refused the task (HTTP {reply.status})")

    # ------------------------------------------------------------ poll and cancel
    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("GET", f"/v1/tasks/{ref.upstream_id}", headers=_headers(account))

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        body = reply.json()
        raw = str(body["status"])
        state = STATES.get(raw)
        known = state is not None
        state = state or S.RUNNING
        outputs: tuple[OutputSpec, ...] = ()
        if state is S.SUCCEEDED:
            urls = [u for u in body.get("output") or [] if isinstance(u, str) and u]
            if not urls:  # success without a result is not a result: keep polling
                return Progress(S.RUNNING, raw, reply=body, known=False)
            kind = "image" if ref.action in IMAGE_ACTIONS else "audio" if ref.action in AUDIO_ACTIONS else "video"
            cost = (body.get("cost") or {}).get("credits") if isinstance(body.get("cost"), dict) else None
            meta = {"credits": cost} if isinstance(cost, int | float) and not isinstance(cost, bool) else {}
            outputs = tuple(OutputSpec(kind=kind, upstream_id=None, urls={"url": u}, meta={"index": i, **meta})
                            for i, u in enumerate(urls))
        progress: int | None = None
        share = body.get("progress")
        if raw == "RUNNING" and isinstance(share, int | float) and not isinstance(share, bool):
            progress = max(0, min(99, round(float(share) * 100)))
        elif raw in ("PENDING", "THROTTLED"):
            progress = 0
        failure = body.get("failure") if state is S.FAILED else None
        return Progress(state, raw, progress=progress, outputs=outputs, reply=body, known=known,
                        error_code=(body.get("failureCode") or None) if state is S.FAILED else None,
                        error_message=str(failure) if failure else None)

    def build_cancel(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("DELETE", f"/v1/tasks/{ref.upstream_id}", headers={**_headers(account), "Accept": "*/*"})

    def parse_cancel(self, reply: HttpReply, ref: TaskRef) -> bool:
        return 200 <= reply.status < 300

    # ------------------------------------------------------------ render
    def render(self, task: TaskView) -> dict[str, Any]:
        status = runway_status(task)
        out: dict[str, Any] = {**_extra_fields(task.upstream_reply), "id": task.public_id, "status": status,
                               "createdAt": iso_ms(task.created_at)}
        if status in _LIVE:
            out["estimatedCost"] = {"credits": _runway_credits(task.reserved)}
            if status == "RUNNING":
                out["progress"] = min(0.99, round((task.progress or 0) / 100, 2))
        elif status == "SUCCEEDED":
            outs = sorted(task.outputs, key=lambda o: o.meta.get("index", 0))
            out["output"] = [o.urls["url"] for o in outs if "url" in o.urls]
            out["cost"] = {"credits": _runway_credits(task.settled)}
        else:
            out["cost"] = {"credits": 0}  # refunded
            if status == "FAILED":
                out["failure"] = task.error_message or "The task failed."
                out["failureCode"] = failure_code(task.error_code)
        return out

    def render_created(self, task: TaskView) -> dict[str, Any]:
        """The reply to a create: the id and the most the task may cost (runway.md §4)."""
        return {"id": task.public_id, "estimatedCost": {"credits": _runway_credits(task.reserved)}}

    def provider_state(self, task: TaskView) -> str:
        return runway_status(task)


def _extra_fields(reply: Any) -> dict[str, Any]:
    """Fields of the last upstream task object that gengate does not rewrite (a newer API's
    additions pass through), unless they could carry an upstream URL or id."""
    if not isinstance(reply, dict):
        return {}
    return {k: v for k, v in reply.items()
            if k not in _REWRITTEN and "http" not in json.dumps(v) and reply.get("id") not in json.dumps(v)}


_REWRITTEN = frozenset({"id", "status", "createdAt", "estimatedCost", "progress", "output", "cost", "failure",
                        "failureCode"})


def runway_status(task: TaskView) -> str:
    if task.state is S.RUNNING:
        raw = task.upstream_state or "PENDING"
        return raw if raw in _LIVE else "RUNNING"
    return {S.QUEUED: "THROTTLED", S.SUBMITTING: "PENDING", S.AMBIGUOUS: "PENDING", S.REHOSTING: "RUNNING",
            S.SUCCEEDED: "SUCCEEDED", S.FAILED: "FAILED", S.CANCELLED: "CANCELLED"}[task.state]


def failure_code(code: str | None) -> str:
    """Runway's dotted code as the provider gave it; gengate's own reasons as `INTERNAL.<REASON>`."""
    if code and code.replace(".", "").replace("_", "").isalnum() and code.upper() == code:
        return code
    return "INTERNAL" if not code else f"INTERNAL.{_snake(code).upper()}"


def _snake(name: str) -> str:
    out = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name))
    return out.replace("-", "_").replace("__", "_")


class ActionAdaptor:
    """The Runway adaptor with the action fixed by the route's path (`POST /v1/text_to_image`), and
    the calling key's uploads."""

    def __init__(self, adaptor: RunwayAdaptor, action: str, uploads: Uploads | None = None) -> None:
        self._adaptor, self._action, self._uploads = adaptor, action, uploads

    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        return await self._adaptor.prepare_action(self._action, body, resolver, self._uploads)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adaptor, name)

ADAPTORS = [RunwayAdaptor()]
