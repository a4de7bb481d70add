"""Suno (relay "Suno-API" format): validate, build and parse upstream calls, render the TaskDto.

suno.md §1-§5. One adaptor serves both actions: a task's `action` (MUSIC or LYRICS) picks the
upstream path, and `for_action` gives the instance a submit route prepares with. Polling uses the
proxy's batch fetch (`POST /suno/fetch {ids}`): `build_poll_many`/`parse_poll_many` read many tasks
of one secret in one call. Gengate ids stand for every upstream id a client could see or send back
(task ids, clip ids, the lyrics id); a continuation goes to the secret that made its clip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
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
    auth_header,
)
from gengate.core.errors import InvalidRequest, ReferenceNotFound
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState

log = logging.getLogger("gengate.suno")
S = TaskState

ACTIONS = ("MUSIC", "LYRICS")
DEFAULT_MV = "chirp-v3-0"
LYRICS_MODEL = "suno_lyrics"
# Upstream task status → gengate state (§4). Anything else (UNKNOWN included) keeps polling, logged.
STATES: dict[str, TaskState] = {
    "NOT_START": S.RUNNING, "SUBMITTED": S.RUNNING, "QUEUED": S.RUNNING, "IN_PROGRESS": S.RUNNING,
    "SUCCESS": S.SUCCEEDED, "FAILURE": S.FAILED,
}
_PROGRESS = {"NOT_START": 0, "SUBMITTED": 5, "QUEUED": 15, "IN_PROGRESS": 50}
URL_FIELDS = ("audio_url", "video_url", "image_url", "image_large_url")
# Clip metadata that names upstream ids (the parent clip of a continuation, an uploaded prompt):
# never stored for rendering; `history` is rebuilt from the client's own request.
_UPSTREAM_REFS = ("history", "concat_history", "audio_prompt_id")
_STRINGS = ("prompt", "gpt_description_prompt", "mv", "title", "tags", "negative_tags", "continue_clip_id",
            "task_id", "task")
CALLBACK_FIELDS = ("callback_url", "notify_hook")  # kept by gengate for its webhooks, never sent upstream
BATCH_SIZE = 50  # ids per upstream batch fetch

# Shipped prices (credits, 1 = US$0.000001): per call, as new-api prices `suno_music` / `suno_lyrics`.
# A price for one `mv` may be set as `suno:music:<mv>` (config `[prices]`); else `suno:music` applies.
PRICES: dict[str, int] = {"suno:music": 100_000, "suno:lyrics": 10_000}


def _bad(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request", param=param)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def envelope_error(reply: HttpReply) -> tuple[str | None, str]:
    """(code, message) of the proxy's `{code, message, data}` envelope."""
    try:
        body = reply.json()
    except ValueError:
        return None, reply.body[:200].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code") if isinstance(body.get("code"), str) else None
    return code, str(body.get("message") or "")


class SunoAdaptor:
    provider: ClassVar[str] = "suno"
    id_kind: ClassVar[str] = "uuid"
    prices: ClassVar[Mapping[str, int]] = PRICES
    batch_size: ClassVar[int] = BATCH_SIZE
    # A lyrics submit blocks in the proxy for up to 2 min (§4): the default read timeout of a Suno
    # create, unless GENGATE_SUBMIT_TIMEOUTS names one.
    submit_timeout: ClassVar[float] = 150.0

    def __init__(self, action: str = "MUSIC") -> None:
        self.action = action  # what `prepare` makes: the submit route's action

    def for_action(self, action: str) -> SunoAdaptor:
        return self if action == self.action else SunoAdaptor(action)

    # ------------------------------------------------------------ create
    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        if not isinstance(body, dict):
            raise _bad("the request body must be a JSON object")
        callback = None
        for name in CALLBACK_FIELDS:
            value = body.get(name)
            if value not in (None, ""):
                if not isinstance(value, str):
                    raise _bad(f"{name} must be a string", name)
                callback = value
        request = {k: v for k, v in body.items() if k not in CALLBACK_FIELDS}
        if self.action == "LYRICS":
            prompt = request.get("prompt")
            if prompt is not None and not isinstance(prompt, str):
                raise _bad("prompt must be a string", "prompt")
            if not prompt or not prompt.strip():
                raise _bad("prompt_empty", "prompt")
            return Prepared(action="LYRICS", model=LYRICS_MODEL, request=request, upstream_request=dict(request),
                            units={"lyrics": 1.0}, callback_url=callback)
        return await self._prepare_music(request, resolver, callback)

    async def _prepare_music(self, request: dict[str, Any], resolver: Resolver, callback: str | None) -> Prepared:
        for name in _STRINGS:
            if request.get(name) is not None and not isinstance(request[name], str):
                raise _bad(f"{name} must be a string", name)
        if request.get("make_instrumental") is not None and not isinstance(request["make_instrumental"], bool):
            raise _bad("make_instrumental must be a boolean", "make_instrumental")
        at = request.get("continue_at")
        if at is not None and (not _number(at) or at < 0):
            raise _bad("continue_at must be a non-negative number of seconds", "continue_at")
        inspiration = bool((request.get("gpt_description_prompt") or "").strip())
        if not inspiration and not (request.get("prompt") or "").strip() and not request.get("make_instrumental"):
            raise _bad("prompt_empty", "prompt")
        mv = request.get("mv") or DEFAULT_MV
        upstream = dict(request)
        # gengate ids mean nothing upstream: they are mapped below, or left out.
        for name in ("continue_clip_id", "continue_at", "task_id"):
            upstream.pop(name, None)
        parent = None
        if not inspiration and request.get("continue_clip_id"):  # inspiration mode ignores continue_* (§2)
            parent, upstream_clip, upstream_task = await self._continuation(request, resolver)
            upstream.update(continue_clip_id=upstream_clip, continue_at=at, task_id=upstream_task)
        return Prepared(action="MUSIC", model=mv, request=request, upstream_request=upstream,
                        units={"music": 1.0, "mv:" + mv: 1.0}, parent=parent, callback_url=callback)

    async def _continuation(self, request: Mapping[str, Any], resolver: Resolver) -> tuple[Any, str | None, str]:
        """The parent (pinned secret), the upstream clip id and the upstream task id of a continuation."""
        if not request.get("task_id"):
            raise _bad("task id is empty", "task_id")
        at = request.get("continue_at")
        if at is None:
            raise _bad("continue_at is required with continue_clip_id", "continue_at")
        found = await resolver.output(request["continue_clip_id"])
        if found is None:
            raise ReferenceNotFound(f"clip {request['continue_clip_id']} not found", code="invalid_request")
        parent, upstream_clip, meta = found
        owned = await resolver.task(request["task_id"], self.provider)
        if owned is None or owned.parent.task_id != parent.task_id or owned.upstream_id is None:
            raise ReferenceNotFound("task_id is not the task that made continue_clip_id", code="invalid_request")
        duration = (meta.get("metadata") or {}).get("duration")
        if _number(duration) and at > duration:
            raise _bad(f"continue_at is past the end of the clip ({duration} s)", "continue_at")
        return parent, upstream_clip, owned.upstream_id

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        """One call: the lyrics price, or the music price of the `mv` (else the music default). At least 1."""
        if units.get("lyrics"):
            return max(1, prices["suno:lyrics"])
        mv = next((k[3:] for k in units if k.startswith("mv:")), DEFAULT_MV)
        return max(1, prices.get(f"suno:music:{mv}", prices["suno:music"]))

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...], prices: PriceTable) -> int:
        """Suno bills per call, whatever the clips' length: what was reserved."""
        return self.price(units, prices)

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("POST", f"/suno/submit/{ref.action.lower()}", json_body=ref.upstream_request,
                        headers=auth_header("Bearer", account.secret))

    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted:
        if 200 <= reply.status < 300:
            body = reply.json()
            if body.get("code") == "success" and isinstance(body.get("data"), str) and body["data"]:
                return Submitted(Outcome.ACCEPTED, upstream_id=body["data"], upstream_state="SUBMITTED", reply=body)
            code, message = envelope_error(reply)
            return Submitted(Outcome.REFUSED, error_code=code or "fail_to_submit", error_message=message)
        code, message = envelope_error(reply)
        said = f"{code or ''} {message}".lower()
        if "quota_not_enough" in said or "insufficient" in said:
            return Submitted(Outcome.NO_CREDIT, error_code=code, error_message=message)
        if reply.status in (401, 403):
            return Submitted(Outcome.AUTH, error_code=code, error_message=message)
        if reply.status in (408, 429) or reply.status >= 500:
            return Submitted(Outcome.RETRY, error_code=code, error_message=message)
        return Submitted(Outcome.REFUSED, error_code=code or "invalid_request", error_message=message)

    # ------------------------------------------------------------ poll (one batch fetch for many)
    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall:
        return self.build_poll_many(account, [ref])

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        return self.parse_poll_many(reply, [ref])[ref.upstream_id or ""]

    def build_poll_many(self, account: Account, refs: Sequence[TaskRef]) -> HttpCall:
        return HttpCall("POST", "/suno/fetch", json_body={"ids": [r.upstream_id for r in refs]},
                        headers=auth_header("Bearer", account.secret))

    def parse_poll_many(self, reply: HttpReply, refs: Sequence[TaskRef]) -> dict[str, Progress]:
        """Each task's progress by upstream id. An id the reply leaves out is unknown to the proxy
        (§8: unknown ids are simply absent): that task failed upstream."""
        body = reply.json()
        rows = body["data"]
        if not isinstance(rows, list):
            raise TypeError("fetch data is not a list")
        by_id = {str(r.get("task_id")): r for r in rows if isinstance(r, dict)}
        out: dict[str, Progress] = {}
        for ref in refs:
            key = ref.upstream_id or ""
            row = by_id.get(key)
            out[key] = (_progress(row, ref) if row is not None else
                        Progress(S.FAILED, "NOT_FOUND", error_code="TaskNotFound",
                                 error_message="the provider no longer knows this task"))
        return out

    # ------------------------------------------------------------ render (TaskDto, §3)
    def render(self, task: TaskView) -> dict[str, Any]:
        up = task.upstream_reply if isinstance(task.upstream_reply, dict) else {}
        status = suno_status(task)
        terminal = status in ("SUCCESS", "FAILURE")
        finish = int(task.updated_at) if terminal else 0
        start = up.get("start_time") if isinstance(up.get("start_time"), int) else 0
        if not start and task.state is S.SUCCEEDED:
            start = int(task.created_at)
        progress = 100 if terminal else min(task.progress or 0, 99)
        return {"task_id": task.public_id, "action": task.action, "status": status,
                "fail_reason": (task.error_message or task.error_code or "") if status == "FAILURE" else "",
                "submit_time": int(task.created_at), "start_time": start, "finish_time": finish,
                "progress": f"{progress}%", "data": self._data(task)}

    def _data(self, task: TaskView) -> Any:
        if task.action == "LYRICS":
            if task.state is not S.SUCCEEDED or not task.outputs:
                return None
            out = task.outputs[0]
            return {**out.meta, "id": out.public_id}
        if task.state is not S.SUCCEEDED:
            return []
        history = None
        if task.request.get("continue_clip_id") and not (task.request.get("gpt_description_prompt") or "").strip():
            history = [{"id": task.request["continue_clip_id"], "continue_at": task.request.get("continue_at"),
                        "type": "gen", "source": "web"}]
        clips = []
        for out in task.outputs:
            clip: dict[str, Any] = {"id": out.public_id, **out.meta}
            clip["id"] = out.public_id
            for f in URL_FIELDS:
                clip[f] = out.urls.get(f, "")
            clip["metadata"] = {**(clip.get("metadata") or {}), "history": history, "concat_history": None,
                                "audio_prompt_id": None}
            clips.append(clip)
        return clips

    def provider_state(self, task: TaskView) -> str:
        return suno_status(task)


def suno_status(task: TaskView) -> str:
    if task.state is S.RUNNING:
        raw = task.upstream_state or "SUBMITTED"
        return raw if raw in ("SUBMITTED", "QUEUED", "IN_PROGRESS") else "IN_PROGRESS"
    return {S.QUEUED: "NOT_START", S.SUBMITTING: "NOT_START", S.AMBIGUOUS: "SUBMITTED",
            S.REHOSTING: "IN_PROGRESS", S.SUCCEEDED: "SUCCESS", S.FAILED: "FAILURE",
            S.CANCELLED: "FAILURE"}[task.state]


def _percent(raw: Any) -> int | None:
    if isinstance(raw, str) and raw.endswith("%") and raw[:-1].isdigit():
        return min(int(raw[:-1]), 100)
    return None


def _progress(row: Mapping[str, Any], ref: TaskRef) -> Progress:
    raw = str(row.get("status") or "")
    state = STATES.get(raw)
    known = state is not None
    state = state or S.RUNNING
    percent = _percent(row.get("progress"))
    progress = _PROGRESS.get(raw, 50) if percent is None else percent
    # Keep the proxy's timing fields only: its clips (upstream URLs and ids) are read, not rendered.
    kept = {k: row.get(k) for k in ("status", "submit_time", "start_time", "finish_time", "progress")}
    if state is S.FAILED:
        reason = str(row.get("fail_reason") or "") or _first_error(row.get("data"))
        return Progress(S.FAILED, raw, error_code="FAILURE", error_message=reason or "the generation failed",
                        reply=kept)
    if state is S.SUCCEEDED:
        outputs = _outputs(row.get("data"), ref.action)
        if outputs is None:  # success without its results is not a result yet: keep polling
            return Progress(S.RUNNING, raw, progress=99, reply=kept, known=False)
        return Progress(S.SUCCEEDED, raw, progress=100, outputs=outputs, reply=kept)
    return Progress(S.RUNNING, raw, progress=min(progress, 99), reply=kept, known=known)


def _first_error(data: Any) -> str:
    for clip in data if isinstance(data, list) else []:
        message = ((clip or {}).get("metadata") or {}).get("error_message")
        if message:
            return str(message)
    return ""


def _outputs(data: Any, action: str) -> tuple[OutputSpec, ...] | None:
    if action == "LYRICS":
        if not isinstance(data, dict) or not data.get("text"):
            return None
        meta = {k: v for k, v in data.items() if k != "id"}
        return (OutputSpec(kind="lyrics", upstream_id=str(data.get("id") or ""), urls={}, meta=meta),)
    if not isinstance(data, list) or not data:
        return None
    specs = []
    for clip in data:
        if not isinstance(clip, dict) or not clip.get("audio_url"):
            return None
        urls = {f: clip[f] for f in URL_FIELDS if isinstance(clip.get(f), str) and clip[f]}
        meta = {k: v for k, v in clip.items() if k not in URL_FIELDS and k not in ("id", "user_id")}
        meta["metadata"] = {k: v for k, v in (clip.get("metadata") or {}).items() if k not in _UPSTREAM_REFS}
        specs.append(OutputSpec(kind="audio", upstream_id=str(clip.get("id")), urls=urls, meta=meta))
    return tuple(specs)


ADAPTORS = [SunoAdaptor()]
