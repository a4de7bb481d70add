"""Luma Dream Machine (`/luma/dream-machine/v1`, luma.md): validate creates, build and parse upstream
calls, render the Generation object.

One adaptor serves both kinds: a task's `action` is `video` or `image`. The create routes use a
`LumaAdaptor(kind)` whose `prepare` checks that kind's body (`POST /generations` takes lumaai 1.0's
video body without `model`); every later call reads the kind from the task. The registered adaptor
(`ADAPTORS`, kind `auto`) takes either body, an image when `generation_type` is `image` or the model
is a `photon-*` one, so that another view (`/v1/videos`, `/v1/images`) can hand it a Luma body.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from gengate.core.adaptor import (
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
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.luma.validate import check_image, check_video

log = logging.getLogger("gengate.luma")
S = TaskState

# Upstream state → gengate state; anything else is in progress (and logged): luma.md §4.
STATES: dict[str, TaskState] = {"queued": S.RUNNING, "dreaming": S.RUNNING, "completed": S.SUCCEEDED,
                                "failed": S.FAILED}
_PROGRESS = {"queued": 5, "dreaming": 50, "completed": 100}
FIND_PAGE = 50

# Shipped prices (credits = US$0.000001): per second of video by model and resolution, per image by
# model. A model gengate does not know is priced as ray-2 / photon-1. The dearest task (ray-2, 4k, 9 s)
# reserves 990,000 credits, under the contract's 1,000,000 per request.
PRICES: dict[str, int] = {
    "luma:ray-2:second:540p": 20_000,
    "luma:ray-2:second:720p": 40_000,
    "luma:ray-2:second:1080p": 80_000,
    "luma:ray-2:second:4k": 110_000,
    "luma:ray-flash-2:second:540p": 7_000,
    "luma:ray-flash-2:second:720p": 14_000,
    "luma:ray-flash-2:second:1080p": 28_000,
    "luma:ray-flash-2:second:4k": 40_000,
    "luma:photon-1:image": 15_000,
    "luma:photon-flash-1:image": 4_000,
}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(raw: Any) -> float:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _tagged(units: Mapping[str, float], tag: str, default: str) -> str:
    return next((k[len(tag):] for k in units if k.startswith(tag)), default)


def fingerprint(request: Mapping[str, Any]) -> str:
    """What identifies a create among the account's generations: the request as sent upstream (the
    Generation object echoes it), without the fields gengate keeps to itself."""
    keep = {k: v for k, v in request.items() if k not in ("callback_url", "sync", "sync_timeout")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


def _detail(reply: HttpReply) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.body[:200].decode("utf-8", "replace")
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation list
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail or "")


class LumaAdaptor:
    provider: ClassVar[str] = "luma"
    id_kind: ClassVar[str] = "uuid"
    prices: ClassVar[Mapping[str, int]] = PRICES

    def __init__(self, kind: str = "auto") -> None:
        """`kind`: which create route this instance checks: `generations` (video, `model` optional),
        `video`, `image`, or `auto` (an image body when it says so, else a video body)."""
        self.kind = kind

    # ------------------------------------------------------------ create
    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        kind = self.kind
        if kind == "auto":
            image = isinstance(body, dict) and (body.get("generation_type") == "image"
                                                or str(body.get("model") or "").startswith("photon-"))
            kind = "image" if image else "generations"
        if kind == "image":
            checked = await check_image(body)
        else:
            checked = await check_video(body, resolver, model_required=kind == "video")
        return Prepared(action=checked.action, model=checked.model, request=checked.request,
                        upstream_request=checked.upstream, units=checked.units, parent=checked.parent,
                        callback_url=checked.callback_url)

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        """A video: whole seconds (5 or 9) x the model's rate at its resolution; an image: per image."""
        model = _tagged(units, "model:", "")
        if units.get("image"):
            per = prices.get(f"luma:{model}:image", prices["luma:photon-1:image"])
            return max(1, math.ceil(per * max(1.0, units.get("count", 1.0))))
        res = _tagged(units, "res:", "720p")
        rate = prices.get(f"luma:{model}:second:{res}", prices.get(f"luma:ray-2:second:{res}",
                                                                    prices["luma:ray-2:second:720p"]))
        seconds = max(1, math.ceil(units.get("seconds", 5.0) - 1e-9))
        return max(1, rate * seconds)

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...],
                    prices: PriceTable) -> int:
        """Luma makes exactly the clip or image it was asked for: the reserved price, once produced."""
        return self.price(units, prices) if outputs else 0

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        path = "/generations/image" if ref.action == "image" else "/generations/video"
        return HttpCall("POST", path, json_body=ref.upstream_request, headers=auth_header("Bearer", account.secret))

    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted:
        if 200 <= reply.status < 300:
            body = reply.json()
            if not isinstance(body, dict) or not body.get("id"):
                return Submitted(Outcome.AMBIGUOUS, error_message="a create reply without an id")
            return Submitted(Outcome.ACCEPTED, upstream_id=str(body["id"]), upstream_state=body.get("state"),
                             reply=body)
        detail = _detail(reply)
        if reply.status == 402 or "insufficient" in detail.lower():
            return Submitted(Outcome.NO_CREDIT, error_code="insufficient_credits", error_message=detail)
        if reply.status in (401, 403):
            return Submitted(Outcome.AUTH, error_code=str(reply.status), error_message=detail)
        if reply.status in (408, 429) or reply.status >= 500:
            return Submitted(Outcome.RETRY, error_code=str(reply.status), error_message=detail)
        return Submitted(Outcome.REFUSED, error_code=str(reply.status), error_message=detail)

    # ------------------------------------------------------------ poll
    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("GET", f"/generations/{ref.upstream_id}", headers=auth_header("Bearer", account.secret))

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        body = reply.json()
        raw = str(body["state"])
        state = STATES.get(raw)
        known = state is not None
        state = state or S.RUNNING
        outputs: tuple[OutputSpec, ...] = ()
        if state is S.SUCCEEDED:
            output = _output(body, ref.action)
            if output is None:  # completed without its asset is not a result: keep polling
                return Progress(S.RUNNING, raw, progress=99, reply=body, known=False)
            outputs = (output,)
        error = None
        if state is S.FAILED:
            error = str(body.get("failure_reason") or "the generation failed")
        return Progress(state, raw, progress=_PROGRESS.get(raw), outputs=outputs, reply=body, known=known,
                        error_code=str(body.get("failure_code") or "failed") if error else None,
                        error_message=error)

    # ------------------------------------------------------------ cancel = delete upstream
    def build_cancel(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("DELETE", f"/generations/{ref.upstream_id}", headers=auth_header("Bearer", account.secret))

    def parse_cancel(self, reply: HttpReply, ref: TaskRef) -> bool:
        return 200 <= reply.status < 300 or reply.status == 404

    # ------------------------------------------------------------ reconcile (the list, newest first)
    def build_find(self, account: Account, ref: TaskRef, page: int) -> HttpCall:
        return HttpCall("GET", "/generations", query={"limit": str(FIND_PAGE), "offset": str((page - 1) * FIND_PAGE)},
                        headers=auth_header("Bearer", account.secret))

    def parse_find(self, reply: HttpReply, ref: TaskRef, not_before: float) -> FindResult:
        """Luma takes no marker: match the echoed request and the time, oldest first."""
        body = reply.json()
        items = body.get("generations") or []
        want = fingerprint(ref.upstream_request)
        kind = "image" if ref.action == "image" else "video"
        found: list[str] = []
        older = False
        for g in items:
            created = _parse_time(g.get("created_at"))
            if created and created < not_before:
                older = True
                continue
            request = g.get("request")
            if (g.get("generation_type") or kind) == kind and isinstance(request, dict) \
                    and fingerprint(request) == want:
                found.append(str(g["id"]))
        return FindResult(list(reversed(found)), more=bool(body.get("has_more")) and not older)

    # ------------------------------------------------------------ render
    def render(self, task: TaskView) -> dict[str, Any]:
        state = luma_state(task)
        kind = "image" if task.action == "image" else "video"
        failure = None
        if state == "failed":
            failure = (task.error_message or "The generation was cancelled" if task.state is S.CANCELLED
                       else task.error_message or "The generation failed")
        assets = None
        if task.state is S.SUCCEEDED and task.outputs:
            urls = task.outputs[0].urls
            assets = ({"image": urls.get("image")} if kind == "image"
                      else {"video": urls.get("video"), "image": urls.get("image"), "progress_video": None})
        return {
            "id": task.public_id, "generation_type": kind, "state": state, "failure_reason": failure,
            "created_at": iso(task.created_at), "model": task.model, "assets": assets, "request": task.request,
        }

    def provider_state(self, task: TaskView) -> str:
        return luma_state(task)


def luma_state(task: TaskView) -> str:
    if task.state is S.RUNNING:
        return "queued" if task.upstream_state == "queued" else "dreaming"
    return {S.QUEUED: "queued", S.SUBMITTING: "queued", S.AMBIGUOUS: "queued", S.REHOSTING: "dreaming",
            S.SUCCEEDED: "completed", S.FAILED: "failed", S.CANCELLED: "failed"}[task.state]


def _output(body: Mapping[str, Any], action: str) -> OutputSpec | None:
    assets = body.get("assets") if isinstance(body.get("assets"), dict) else {}
    video, image = assets.get("video"), assets.get("image")
    meta = {k: v for k, v in assets.items() if k not in ("video", "image") and v is not None}
    if action == "image":
        if not isinstance(image, str) or not image:
            return None
        return OutputSpec(kind="image", upstream_id=None, urls={"image": image}, meta=meta)
    if not isinstance(video, str) or not video:
        return None
    urls = {"video": video}
    if isinstance(image, str) and image:
        urls["image"] = image
    return OutputSpec(kind="video", upstream_id=None, urls=urls, meta=meta)


ADAPTORS = [LumaAdaptor()]
