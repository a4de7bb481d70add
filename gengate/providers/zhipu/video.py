"""CogVideoX through the task engine (zhipu.md §6): `POST /videos/generations` upstream, polled with
`GET /async-result/{id}`; gengate issues its own `id`, saves the task before it answers, re-hosts
`video_result[]` and refunds a failed task (the engine's work). Validation answers GLM's codes."""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from gengate.providers.zhipu.auth import GLMAuth
from gengate.providers.zhipu.errors import bad

S = TaskState
STATES = {"PROCESSING": S.RUNNING, "SUCCESS": S.SUCCEEDED, "FAIL": S.FAILED}
MAX_PROMPT = 512
DURATIONS = (5, 10)
# Credits (US$0.000001) per started 5 seconds of video; an unknown model is priced as cogvideox-3.
PRICES: dict[str, int] = {"zhipu:cogvideox-3:5s": 140_000, "zhipu:cogvideox-flash:5s": 20_000}
AUTH = GLMAuth()
FAILED = {"video": "the video generation failed", "chat": "the chat completion failed"}  # without GLM's error


def _glm_code(reply: HttpReply) -> tuple[str, str]:
    try:
        err = reply.json().get("error") or {}
        return str(err.get("code") or reply.status), str(err.get("message") or "")
    except (ValueError, AttributeError):
        return str(reply.status), reply.body[:200].decode("utf-8", "replace")


def check_video(body: Any) -> tuple[dict[str, Any], float]:
    """The body as sent upstream and its seconds, or GLM's 1213/1214."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.", "1210")
    model = body.get("model")
    if model is None:
        raise bad("Missing required parameter: model.", "1213", "model")
    if not isinstance(model, str) or not model.strip():
        raise bad("Invalid parameter 'model': expected a non-empty string.", param="model")
    prompt, image = body.get("prompt"), body.get("image_url")
    if prompt is None and image is None:
        raise bad("Missing required parameter: prompt or image_url.", "1213", "prompt")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT):
        raise bad(f"Invalid parameter 'prompt': a string of at most {MAX_PROMPT} characters.", param="prompt")
    if image is not None:
        images = image if isinstance(image, list) else [image]
        if not 1 <= len(images) <= 2 or not all(isinstance(i, str) and i for i in images):
            raise bad("Invalid parameter 'image_url': a URL or base64 string, or two of them.", param="image_url")
    quality = body.get("quality")
    if quality is not None and quality not in ("speed", "quality"):
        raise bad("Invalid parameter 'quality': speed or quality.", param="quality")
    for name in ("with_audio", "watermark_enabled"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise bad(f"Invalid parameter '{name}': expected a boolean.", param=name)
    duration = body.get("duration", 5)
    if isinstance(duration, bool) or duration not in DURATIONS:
        raise bad("Invalid parameter 'duration': 5 or 10.", param="duration")
    fps = body.get("fps")
    if fps is not None and (isinstance(fps, bool) or fps not in (30, 60)):
        raise bad("Invalid parameter 'fps': 30 or 60.", param="fps")
    size = body.get("size")
    if size is not None and (not isinstance(size, str) or "x" not in size):
        raise bad("Invalid parameter 'size': WIDTHxHEIGHT.", param="size")
    return dict(body), float(duration)


class ZhipuVideoAdaptor:
    provider: ClassVar[str] = "zhipu"
    id_kind: ClassVar[str] = "digits18"
    prices: ClassVar[Mapping[str, int]] = PRICES

    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        upstream, seconds = check_video(body)
        upstream.pop("request_id", None)  # gengate's task id is the client's handle
        return Prepared(action="video", model=upstream["model"], request=dict(body), upstream_request=upstream,
                        units={"seconds": seconds, f"model:{upstream['model']}": 1.0})

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        model = next((k[6:] for k in units if k.startswith("model:")), "cogvideox-3")
        per = prices.get(f"zhipu:{model}:5s", prices["zhipu:cogvideox-3:5s"])
        return max(1, per * max(1, math.ceil(units.get("seconds", 5.0) / 5 - 1e-9)))

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...], prices: PriceTable) -> int:
        return self.price(units, prices) if outputs else 0

    def _headers(self, account: Account) -> dict[str, str]:
        return {"Authorization": AUTH.header(account.secret, account.options)}

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("POST", "/videos/generations", json_body=dict(ref.upstream_request),
                        headers=self._headers(account))

    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted:
        if 200 <= reply.status < 300:
            try:
                body = reply.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not body.get("id"):
                return Submitted(Outcome.AMBIGUOUS, error_message="a create reply without an id")
            return Submitted(Outcome.ACCEPTED, upstream_id=str(body["id"]),
                             upstream_state=str(body.get("task_status") or "PROCESSING"), reply=body)
        code, message = _glm_code(reply)
        if code == "1113" or code.startswith("111"):
            return Submitted(Outcome.NO_CREDIT, error_code=code, error_message=message)
        if reply.status in (401, 403) or code.startswith("100"):
            return Submitted(Outcome.AUTH, error_code=code, error_message=message)
        if reply.status in (408, 429) or reply.status >= 500:
            return Submitted(Outcome.RETRY, error_code=code, error_message=message)
        return Submitted(Outcome.REFUSED, error_code=code, error_message=message)

    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("GET", f"/async-result/{ref.upstream_id}", headers=self._headers(account))

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        body = reply.json()
        raw = str(body.get("task_status"))
        state = STATES.get(raw)
        if state is None:
            return Progress(S.RUNNING, raw, reply=body, known=False)
        if state is S.SUCCEEDED:
            results = [r for r in body.get("video_result") or [] if isinstance(r, dict) and r.get("url")]
            if not results:  # a success without its video is not a result yet
                return Progress(S.RUNNING, raw, progress=99, reply=body, known=False)
            outputs = tuple(OutputSpec("video", None, {k: str(r[k]) for k in ("url", "cover_image_url") if r.get(k)},
                                       {}) for r in results)
            return Progress(S.SUCCEEDED, raw, progress=100, outputs=outputs, reply=body)
        if state is S.FAILED:
            err = body.get("error") if isinstance(body.get("error"), dict) else {}
            return Progress(S.FAILED, raw, reply=body, error_code=str(err.get("code") or "FAIL"),
                            error_message=str(err.get("message") or FAILED.get(ref.action, "the task failed")))
        return Progress(S.RUNNING, raw, reply=body)

    def render(self, task: TaskView) -> dict[str, Any]:
        out: dict[str, Any] = {"model": task.model, "id": task.public_id,
                               "request_id": task.request.get("request_id") or task.public_id,
                               "task_status": self.provider_state(task)}
        if task.state is S.SUCCEEDED:
            out["video_result"] = [{k: o.urls[k] for k in ("url", "cover_image_url") if k in o.urls}
                                   for o in task.outputs]
        if task.state in (S.FAILED, S.CANCELLED) and task.error_message:
            out["error"] = {"code": task.error_code or "FAIL", "message": task.error_message}
        return out

    def provider_state(self, task: TaskView) -> str:
        if task.state is S.SUCCEEDED:
            return "SUCCESS"
        if task.state in (S.FAILED, S.CANCELLED):
            return "FAIL"
        return "PROCESSING"
