"""Kling's official format (`/kling/v1/...`, kling.md): validate a create, build and parse the upstream
calls (each carrying a JWT minted from the channel's `ACCESS_KEY|SECRET_KEY`), render the task object.

The route decides the action (text2video, image2video, image generation, video extend, lip-sync,
virtual try-on; the last three in edits.py): `KlingAdaptor.bound(action)`
is the adaptor a create route hands to the core. gengate sends its own marker upstream as
`external_task_id`, so that a create whose reply was lost is found again in the upstream's list; the
client's own `external_task_id` stays gengate's (echoed in `task_info`, unique per key).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
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
    UniqueField,
)
from gengate.core.errors import InvalidRequest
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.kling import edits, rules
from gengate.providers.kling.token import bearer_token

log = logging.getLogger("gengate.kling")
S = TaskState

# Upstream state -> gengate state (kling.md §3). Anything else is in progress (and logged).
STATES: dict[str, TaskState] = {"submitted": S.RUNNING, "processing": S.RUNNING, "succeed": S.SUCCEEDED,
                                "failed": S.FAILED}
PROGRESS = {"submitted": 0, "processing": 50, "succeed": 100}


@dataclass(frozen=True)
class Action:
    name: str
    path: str  # below the channel's base URL, and below `/kling` for clients
    result_key: str  # `task_result.<key>`: videos | images


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("text2video", "/v1/videos/text2video", "videos"),
    Action("image2video", "/v1/videos/image2video", "videos"),
    Action("image_generation", "/v1/images/generations", "images"),
    Action("video_extend", "/v1/videos/video-extend", "videos"),
    Action("lip_sync", "/v1/videos/lip-sync", "videos"),
    Action("virtual_try_on", "/v1/images/kolors-virtual-try-on", "images"),
)}
INLINE_THRESHOLD = 64 * 1024  # a field longer than this (base64 media) is stashed out of the task row
MEDIA_FIELDS = ("image", "image_tail", "static_mask", "human_image", "cloth_image")

# Shipped prices (credits; 1 credit = US$0.000001): per second of video by mode, per image by resolution.
# The last four are gengate's estimates (override them in [prices]): an extension as one 5 s clip of
# the video's mode, lip-sync per second of the video, a try-on image as one unit.
PRICES: dict[str, int] = {
    "kling:video_second:std": 20_000,
    "kling:video_second:pro": 60_000,
    "kling:image:1k": 3_500,
    "kling:image:2k": 7_000,
    "kling:video_extend:std": 100_000,
    "kling:video_extend:pro": 300_000,
    "kling:lip_sync_second": 10_000,
    "kling:virtual_try_on": 100_000,
}

# Kling codes (kling.md §6) and what each says about a create.
_AUTH = frozenset({1000, 1001, 1002, 1003, 1004, 1100, 1103, 1304})
_NO_CREDIT = frozenset({1101, 1102})
_RETRY = frozenset({1302, 1303, 5000, 5001, 5002})


def _envelope(reply: HttpReply) -> tuple[int | None, str, Any]:
    """(code, message, data) of a Kling reply; raises ValueError when it is not Kling's JSON."""
    body = reply.json()
    if not isinstance(body, dict):
        raise ValueError("not a Kling envelope")
    code = body.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    return (code if isinstance(code, int) else None), str(body.get("message") or ""), body.get("data")


def error_of(reply: HttpReply) -> tuple[int | None, str]:
    try:
        code, message, _ = _envelope(reply)
    except ValueError:
        return None, reply.body[:200].decode("utf-8", "replace")
    return code, message


class KlingAdaptor:
    provider: ClassVar[str] = "kling"
    id_kind: ClassVar[str] = "digits18"
    prices: ClassVar[Mapping[str, int]] = PRICES

    def bound(self, action: str) -> KlingAdaptor:
        """The adaptor of one create route: `prepare` makes tasks of `action`."""
        return _BoundAdaptor(ACTIONS[action].name)

    # ------------------------------------------------------------ create
    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        """Without a bound action (another family's view over Kling): image2video when the body
        carries an image, else text2video."""
        action = "image2video" if isinstance(body, dict) and (body.get("image") or body.get("image_tail")) \
            else "text2video"
        return await self.prepare_action(action, body, resolver)

    async def prepare_action(self, action: str, body: Any, resolver: Resolver) -> Prepared:
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object", code="1200")
        callback = rules.optional_string(body, "callback_url")
        external = rules.optional_string(body, "external_task_id", limit=256)
        checked = await _checked(action, body, resolver)
        taken = rules.bad(f"external_task_id {external!r} is already used by another task of this key")
        if external is not None and await resolver.task_by_field("kling", "external_task_id", external):
            raise taken  # early, before any media is stashed; the insert checks again, atomically
        request = json.loads(json.dumps({k: v for k, v in body.items() if k != "callback_url"}))
        # gengate's video ids become Kling's in what goes upstream; the request keeps the client's.
        upstream = {k: v for k, v in request.items() if k != "external_task_id"} | json.loads(
            json.dumps(checked.upstream))
        for name in MEDIA_FIELDS:
            value = upstream.get(name)
            if isinstance(value, str) and len(value) > INLINE_THRESHOLD:
                request[name] = upstream[name] = await resolver.stash(value)
        audio = upstream["input"].get("audio_file") if isinstance(upstream.get("input"), dict) else None
        if isinstance(audio, str) and len(audio) > INLINE_THRESHOLD:
            request["input"]["audio_file"] = upstream["input"]["audio_file"] = await resolver.stash(audio)
        return Prepared(action=action, model=checked.model, request=request, upstream_request=upstream,
                        units=checked.units, parent=checked.parent, callback_url=callback, slots=checked.slots,
                        unique_field=UniqueField("external_task_id", external, taken) if external is not None else None)

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        """Video: whole seconds x the per-second rate of the mode (Kling bills the duration asked
        for: 5 s or 10 s units). Images: per image of the resolution, times n. An extension: one
        price by mode; lip-sync: whole seconds of the video; a try-on: one image. At least 1 credit."""
        if units.get("extend"):
            return max(1, prices["kling:video_extend:pro" if units.get("pro") else "kling:video_extend:std"])
        if units.get("lip_sync_seconds"):
            return max(1, prices["kling:lip_sync_second"] * max(1, math.ceil(units["lip_sync_seconds"] - 1e-9)))
        if units.get("try_on"):
            return max(1, prices["kling:virtual_try_on"])
        if units.get("images"):
            per = prices["kling:image:2k"] if units.get("2k") else prices["kling:image:1k"]
            return max(1, math.ceil(per * units["images"]))
        rate = prices["kling:video_second:pro"] if units.get("pro") else prices["kling:video_second:std"]
        return max(1, math.ceil(rate * max(1, math.ceil(units.get("seconds", 5) - 1e-9))))

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...],
                    prices: PriceTable) -> int:
        """Video: the duration asked for (what Kling deducts), once a video was produced. Images:
        the images produced."""
        if not outputs:
            return 0
        if units.get("lip_sync_seconds"):  # the video's own length, once made (capped at the reservation)
            made = edits.seconds_of(outputs[0].meta.get("duration"))
            return self.price(dict(units, lip_sync_seconds=made or units["lip_sync_seconds"]), prices)
        if units.get("images"):
            return self.price(dict(units, images=min(len(outputs), units["images"])), prices)
        return self.price(units, prices)

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        body = dict(ref.upstream_request)
        body["external_task_id"] = ref.marker  # gengate's marker: finds the job if the reply is lost
        return HttpCall("POST", ACTIONS[ref.action].path, json_body=body, headers=_auth(account))

    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted:
        try:
            code, message, data = _envelope(reply)
        except ValueError:
            if 200 <= reply.status < 300:
                raise  # a 2xx we cannot read: the job may exist (the core reconciles)
            code, message, data = None, reply.body[:200].decode("utf-8", "replace"), None
        if 200 <= reply.status < 300 and code == 0:
            if not isinstance(data, dict) or not data.get("task_id"):
                raise ValueError("accepted without a task_id")
            return Submitted(Outcome.ACCEPTED, upstream_id=str(data["task_id"]),
                             upstream_state=str(data.get("task_status") or "submitted"), reply=data)
        error_code = str(code) if code is not None else None
        if code in _NO_CREDIT:
            return Submitted(Outcome.NO_CREDIT, error_code=error_code, error_message=message)
        if code in _AUTH or (code is None and reply.status in (401, 403)):
            return Submitted(Outcome.AUTH, error_code=error_code, error_message=message)
        if code in _RETRY or (code is None and (reply.status in (408, 429) or reply.status >= 500)):
            return Submitted(Outcome.RETRY, error_code=error_code, error_message=message)
        if code is None and 200 <= reply.status < 300:
            raise ValueError("a 2xx without Kling's code")
        return Submitted(Outcome.REFUSED, error_code=error_code or "1200", error_message=message)

    # ------------------------------------------------------------ poll
    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall:
        return HttpCall("GET", f"{ACTIONS[ref.action].path}/{ref.upstream_id}", headers=_auth(account))

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        code, message, data = _envelope(reply)
        if code != 0 or not isinstance(data, dict):
            raise ValueError(f"poll answered code {code}: {message}")
        raw = str(data.get("task_status"))
        state = STATES.get(raw)
        known = state is not None
        state = state or S.RUNNING
        outputs: tuple[OutputSpec, ...] = ()
        if state is S.SUCCEEDED:
            result = data.get("task_result") or {}
            outputs = _outputs(result, ref)
            if not outputs:  # success without a result is not a result yet: keep polling
                return Progress(S.RUNNING, raw, reply=data, known=False)
        failed = state is S.FAILED
        return Progress(state, raw, progress=PROGRESS.get(raw), outputs=outputs, reply=data, known=known,
                        error_code="failed" if failed else None,
                        error_message=(str(data.get("task_status_msg") or "") or None) if failed else None)

    # ------------------------------------------------------------ reconcile (the action's list)
    def build_find(self, account: Account, ref: TaskRef, page: int) -> HttpCall:
        return HttpCall("GET", ACTIONS[ref.action].path, query={"pageNum": str(page), "pageSize": "500"},
                        headers=_auth(account))

    def parse_find(self, reply: HttpReply, ref: TaskRef, not_before: float) -> FindResult:
        """Newest first; the job is the one whose `task_info.external_task_id` is the task's marker."""
        code, message, data = _envelope(reply)
        if code != 0 or not isinstance(data, list):
            raise ValueError(f"list answered code {code}: {message}")
        found: list[str] = []
        older = False
        for item in data:
            if not isinstance(item, dict):
                continue
            created = item.get("created_at")
            if isinstance(created, int | float) and created / 1000 < not_before:
                older = True
                continue
            if (item.get("task_info") or {}).get("external_task_id") == ref.marker and item.get("task_id"):
                found.append(str(item["task_id"]))
        return FindResult(list(reversed(found)), more=len(data) >= 500 and not older)

    # ------------------------------------------------------------ render
    def render(self, task: TaskView) -> dict[str, Any]:
        """The task object (`data` of Kling's envelope; a webhook's body)."""
        out: dict[str, Any] = {
            "task_id": task.public_id,
            "task_status": kling_state(task),
            "task_status_msg": "",
            "task_info": _task_info(task),
            "created_at": int(task.created_at * 1000),
            "updated_at": int(task.updated_at * 1000),
        }
        if task.state in (S.FAILED, S.CANCELLED):
            out["task_status_msg"] = task.error_message or ("task cancelled" if task.state is S.CANCELLED
                                                            else "task failed")
        if task.state is S.SUCCEEDED:
            action = ACTIONS.get(task.action, ACTIONS["text2video"])
            if action.result_key == "images":
                out["task_result"] = {"images": [{"index": o.meta.get("index", i), "url": o.urls.get("url", "")}
                                                 for i, o in enumerate(task.outputs)]}
            else:
                out["task_result"] = {"videos": [{"id": o.public_id, "url": o.urls.get("url", ""),
                                                  "duration": str(o.meta.get("duration", ""))}
                                                 for o in task.outputs]}
            if task.settled is not None:
                out["final_unit_deduction"] = str(task.settled)
        if isinstance(task.request.get("watermark_info"), dict):
            out["watermark_info"] = {"enabled": bool(task.request["watermark_info"].get("enabled"))}
        return out

    def provider_state(self, task: TaskView) -> str:
        return kling_state(task)


class _BoundAdaptor(KlingAdaptor):
    def __init__(self, action: str) -> None:
        self.action = action

    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        return await self.prepare_action(self.action, body, resolver)


def kling_state(task: TaskView) -> str:
    if task.state is S.RUNNING:
        return task.upstream_state if task.upstream_state in ("submitted", "processing") else "processing"
    return {S.QUEUED: "submitted", S.SUBMITTING: "submitted", S.AMBIGUOUS: "submitted",
            S.REHOSTING: "processing", S.SUCCEEDED: "succeed", S.FAILED: "failed",
            S.CANCELLED: "failed"}[task.state]


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer_token(account.secret)}"}


async def _checked(action: str, body: Mapping[str, Any], resolver: Resolver) -> edits.Checked:
    """A create of `action`, validated: its model, what it is priced on, its slots and, for a task on
    a video, the parent it is pinned to."""
    if action == "video_extend":
        return await edits.video_extend(body, resolver)
    if action == "lip_sync":
        return await edits.lip_sync(body, resolver)
    if action == "virtual_try_on":
        return edits.virtual_try_on(body)
    model, units, slots = _image_request(body) if action == "image_generation" else _video_request(action, body)
    return edits.Checked(model=model, units=units, slots=slots)


def _video_request(action: str, body: Mapping[str, Any]) -> tuple[str, dict[str, float], int]:
    model_name = rules.model_of(body)
    model = rules.VIDEO_MODELS.get(model_name, rules.ANY_VIDEO_MODEL)
    if action == "text2video" and model_name in rules.IMAGE_TO_VIDEO_ONLY:
        raise rules.bad(f"model_name {model_name} is for image2video only")
    rules.text(body, "prompt", required=action == "text2video")
    rules.text(body, "negative_prompt")
    if body.get("cfg_scale") is not None:
        if not model.cfg_scale:
            raise rules.bad(f"cfg_scale is not supported by {model_name}")
        rules.fraction(body, "cfg_scale")
    mode = rules.one_of(body, "mode", ("std", "pro"), "std")
    if action == "text2video" or body.get("aspect_ratio") is not None:
        rules.one_of(body, "aspect_ratio", rules.VIDEO_ASPECTS, "16:9")
    seconds = rules.duration(body, model)
    if body.get("sound") is not None:
        rules.one_of(body, "sound", ("on", "off"), "off")
        if not model.sound:
            raise rules.bad(f"sound is not supported by {model_name}")
    camera = body.get("camera_control")
    if camera is not None:
        rules.camera_control(camera)
    rules.optional_object(body, "watermark_info")
    if action == "image2video":
        image, tail = body.get("image"), body.get("image_tail")
        if not image and not tail:
            raise rules.bad("image or image_tail is required")
        if image:
            rules.image_input(image, "image")
        if tail:
            rules.image_input(tail, "image_tail")
        brush = rules.masks(body)
        groups = [name for name, used in (("image_tail", bool(tail)), ("masks", brush),
                                          ("camera_control", camera is not None)) if used]
        if len(groups) > 1:
            raise rules.bad(f"{' and '.join(groups)} cannot be used together")
    return model_name, {"seconds": float(seconds), "pro": 1.0 if mode == "pro" else 0.0}, 1


def _image_request(body: Mapping[str, Any]) -> tuple[str, dict[str, float], int]:
    model_name = rules.model_of(body)
    rules.text(body, "prompt", required=True)
    rules.text(body, "negative_prompt")
    image = body.get("image")
    if image:
        rules.image_input(image, "image")
        if body.get("negative_prompt"):
            raise rules.bad("negative_prompt is not supported with image")
    reference = body.get("image_reference")
    if reference is not None:
        rules.one_of(body, "image_reference", ("subject", "face"), "subject")
    if model_name == "kling-v1-5" and image and reference is None:
        raise rules.bad("image_reference is required with kling-v1-5 and an image")
    rules.fraction(body, "image_fidelity")
    rules.fraction(body, "human_fidelity")
    resolution = rules.one_of(body, "resolution", ("1k", "2k"), "1k")
    rules.one_of(body, "aspect_ratio", rules.IMAGE_ASPECTS, "16:9")
    n = rules.count(body)
    return model_name, {"images": float(n), "2k": 1.0 if resolution == "2k" else 0.0}, n


def _task_info(task: TaskView) -> dict[str, Any]:
    """The client's `external_task_id`; for a task made on a video, that video as `parent_video`
    (kling.md §4.3, key UNCONFIRMED): gengate's id of it, and its length as the upstream reports it."""
    info: dict[str, Any] = {}
    external = task.request.get("external_task_id")
    if external is not None:
        info["external_task_id"] = external
    spec = task.request.get("input") if task.action == "lip_sync" else task.request
    video_id = spec.get("video_id") if isinstance(spec, dict) else None
    if task.action in ("video_extend", "lip_sync") and isinstance(video_id, str) and video_id:
        parent: dict[str, Any] = {"id": video_id}
        reply = task.upstream_reply if isinstance(task.upstream_reply, dict) else {}
        upstream_parent = (reply.get("task_info") or {}).get("parent_video")
        if isinstance(upstream_parent, dict) and edits.seconds_of(upstream_parent.get("duration")):
            parent["duration"] = str(upstream_parent["duration"])
        info["parent_video"] = parent
    return info


def _outputs(result: Mapping[str, Any], ref: TaskRef) -> tuple[OutputSpec, ...]:
    """Kling's results as outputs. A video also keeps the model and mode it was made with: a later
    extend of it runs on that model and is priced by that mode."""
    key = ACTIONS[ref.action].result_key
    made_with = {"model": ref.model, "mode": "pro" if ref.units.get("pro") else "std"}
    specs: list[OutputSpec] = []
    for i, item in enumerate(result.get(key) or []):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
            continue
        if key == "images":
            specs.append(OutputSpec(kind="image", upstream_id=str(item.get("index", i)), urls={"url": item["url"]},
                                    meta={"index": item.get("index", i)}))
        else:
            meta = {**{k: v for k, v in item.items() if k not in ("id", "url", "watermark_url")}, **made_with}
            specs.append(OutputSpec(kind="video", upstream_id=str(item.get("id") or i), urls={"url": item["url"]},
                                    meta=meta))
    return tuple(specs)


ADAPTORS = [KlingAdaptor()]
