"""Emulated Kling upstream (kling.md), written from the spec alone.

Served below `/kling`, so a channel's base URL is `http://HOST:P/kling` and Kling's own paths follow:
`POST /v1/videos/text2video`, `/v1/videos/image2video`, `/v1/images/generations` and the creates on
existing media of emulator_edits.py (`video-extend`, `lip-sync`, `kolors-virtual-try-on`), each with
`GET P/{task_id}` and `GET P?pageNum=&pageSize=`. Every call carries `Authorization: Bearer <JWT>`
(HS256, `iss` = access key, signed with the secret key, `exp` and `nbf` checked): an accepted secret
`AK|SK` is that pair, a secret without `|` is both keys. It must not import gengate's Kling adaptor.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator.base import EmulatorContext
from gengate.emulator.clock import epoch_ms
from gengate.emulator.ids import derived_digits_id, derived_uuid, digits_id
from gengate.emulator.media import MediaSpec, frame_size, whole_frames
from gengate.emulator.paging import page_params
from gengate.emulator.replies import ProviderError, json_response, read_json
from gengate.emulator.store import cap_for
from gengate.emulator.timeline import Phase, StateWalk, TaskRecord
from gengate.providers.kling import emulator_edits as edits

PATHS: dict[str, str] = {
    "/v1/videos/text2video": "videos",
    "/v1/videos/image2video": "videos",
    "/v1/images/generations": "images",
    edits.EXTEND_PATH: "videos",
    edits.LIP_SYNC_PATH: "videos",
    edits.TRY_ON_PATH: "images",
}
WALK = StateWalk(((0.3, "submitted"), (1.0, "processing")),
                 {Phase.SUCCEEDED: "succeed", Phase.FAILED: "failed", Phase.CANCELED: "failed"})
UNKNOWN_STATE = "mystery_state"
FAIL_CODE = "1301"
FAIL_MESSAGE = "content risk detected"
FPS = 8
VIDEO_MODELS = frozenset({"kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-1-master", "kling-v2-5-turbo",
                          "kling-v2-6", "kling-v3"})
I2V_ONLY_MODELS = frozenset({"kling-v1-5", "kling-v2-1"})
IMAGE_MODELS = frozenset({"kling-v1", "kling-v1-5", "kling-v2", "kling-v2-new", "kling-v2-1"})
VIDEO_ASPECTS = frozenset({"16:9", "9:16", "1:1"})
IMAGE_ASPECTS = frozenset({"16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"})
# The code a reply gets when a fault or the framework names only an HTTP status (§6).
DEFAULT_CODES: dict[int, int] = {400: 1200, 401: 1000, 403: 1103, 404: 1202, 405: 1202, 409: 1200, 413: 1200,
                                 429: 1302, 500: 5000, 502: 5000, 503: 5001, 504: 5002}
LEEWAY = 2.0  # seconds of clock difference forgiven on exp and nbf


def _error(status: int, code: int, message: str) -> ProviderError:
    return ProviderError(status, message, str(code))


def key_pairs(secrets: frozenset[str]) -> dict[str, tuple[str, str]]:
    """Access key -> (secret key, the accepted secret it stands for)."""
    pairs: dict[str, tuple[str, str]] = {}
    for secret in secrets:
        access, sep, secret_key = secret.partition("|")
        pairs[access.strip()] = ((secret_key if sep else access).strip(), secret)
    return pairs


def verify_jwt(request: Request, pairs: Mapping[str, tuple[str, str]]) -> str:
    """The accepted secret whose key pair signed the request's JWT; else Kling's 401 (1001-1004)."""
    raw = request.headers.get("authorization", "").strip()
    scheme, _, token = raw.partition(" ")
    token = token.strip()
    if not raw:
        raise _error(401, 1001, "Authorization header is empty")
    if scheme.lower() != "bearer" or not token:
        raise _error(401, 1002, "Authorization header is invalid: expected Bearer <JWT>")
    try:
        header = jwt.get_unverified_header(token)
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise _error(401, 1002, "Authorization token is invalid") from None
    if header.get("alg") != "HS256" or not isinstance(issuer, str) or issuer not in pairs:
        raise _error(401, 1002, "Authorization token is invalid")
    secret_key, secret = pairs[issuer]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            jwt.decode(token, secret_key, algorithms=["HS256"], leeway=LEEWAY,
                       options={"require": ["iss", "exp", "nbf"], "verify_aud": False})
    except jwt.ExpiredSignatureError:
        raise _error(401, 1004, "Authorization token expired") from None
    except jwt.ImmatureSignatureError:
        raise _error(401, 1003, "Authorization token not yet valid") from None
    except jwt.PyJWTError:
        raise _error(401, 1002, "Authorization token is invalid") from None
    return secret


class KlingEmulator:
    provider: ClassVar[str] = "kling"
    # kling-lip-sync: gengate's name for lip-sync, which takes no model_name.
    sandbox_models: ClassVar[tuple[str, ...]] = ("kling-v1", "kling-lip-sync", "kolors-virtual-try-on-v1")

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        found: list[BaseRoute] = []
        for path in PATHS:
            found += [Route(path, api.create, methods=["POST"]), Route(path, api.list, methods=["GET"]),
                      Route(path + "/{task_id}", api.read, methods=["GET"])]
        return found

    def error_response(self, status: int, message: str, reason: str | None = None,
                       headers: Mapping[str, str] | None = None) -> Response:
        code = int(reason) if reason is not None and reason.isdigit() else DEFAULT_CODES.get(status, 5000)
        return json_response({"code": code, "message": message, "request_id": str(uuid.uuid4())}, status, headers)


def _path_of(request: Request) -> str:
    """The create path a request is about (`/v1/videos/text2video`), below the mount."""
    path = request.url.path
    for known in PATHS:
        if known in path:
            return known
    raise _error(404, 1202, "invalid path")


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx
        self.pairs = key_pairs(ctx.secrets)

    def _secret(self, request: Request) -> str:
        return verify_jwt(request, self.pairs)

    async def create(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "create", secret)) is not None:
            return reply
        path = _path_of(request)
        body = await read_json(request)
        task_id = digits_id(18)
        data = self._validate(path, body, secret, task_id)
        external = data.get("external_task_id")
        alias = _external_alias(secret, external) if external else None
        if alias is not None and ctx.store.find_alias(ctx.provider, alias) is not None:
            raise _error(400, 1201, f"external_task_id {external} already exists")
        task = ctx.new_task(task_id, secret, data)
        aliases = [alias] if alias else []
        if PATHS[path] == "videos":  # its video, by the id the result shows, for extend and lip-sync
            aliases.append(derived_uuid(task.id))
        units = self._hold_units(task, int(data.get("n", 1)))
        if units is None or not ctx.accept(task, aliases, fail_code=FAIL_CODE, fail_message=FAIL_MESSAGE):
            self._release_units(units or [])
            raise _error(429, 1303, "parallel task over resource pack limit")
        if (reply := await ctx.after_accept(request, secret)) is not None:
            return reply
        return _envelope(self.render(task, ctx.now()))

    def _validate(self, path: str, body: dict[str, Any], secret: str, task_id: str) -> dict[str, Any]:
        if path == edits.EXTEND_PATH:
            data = edits.extend(body, task_id, self._videos_of(secret), FPS)
        elif path == edits.LIP_SYNC_PATH:
            data = edits.lip_sync(body, self._videos_of(secret), FPS, frame_size("16:9", 288))
        elif path == edits.TRY_ON_PATH:
            data = edits.try_on(body)
        else:
            return validate(path, body)
        data["external_task_id"] = _string(body, "external_task_id", limit=256)
        return data

    def _videos_of(self, secret: str) -> edits.FindVideo:
        """Finds a video by its id among this account's finished video tasks."""
        ctx = self.ctx

        def find(video_id: str) -> dict[str, Any] | None:
            task = ctx.store.find_alias(ctx.provider, video_id)
            if (task is None or task.secret != secret or PATHS.get(task.data.get("path", "")) != "videos"
                    or task.progress(ctx.now()).phase is not Phase.SUCCEEDED):
                return None
            data = task.data
            return {"id": video_id, "seconds": data["seconds"], "width": data["width"], "height": data["height"],
                    "mode": data.get("mode", "std")}

        return find

    def _hold_units(self, task: TaskRecord, n: int) -> list[TaskRecord] | None:
        """An image task of `n` images holds `n` concurrency units (§6): the task itself and `n - 1`
        hidden unit records that run alongside it, so that `running` and the per-secret cap count
        units. None when the cap leaves no room for them (those already held are released)."""
        ctx = self.ctx
        cap = cap_for(ctx.store.caps(), ctx.provider, task.secret)
        held: list[TaskRecord] = []
        for i in range(1, n):
            unit = TaskRecord(provider=ctx.provider, id=f"{task.id}-unit{i}", secret=task.secret,
                              accepted_at=task.accepted_at, duration=task.duration, data={"unit_of": task.id})
            if ctx.store.add_task(unit, [], None if cap is None else cap - 1, task.accepted_at) is None:
                self._release_units(held)
                return None
            held.append(unit)
        return held

    def _release_units(self, units: list[TaskRecord]) -> None:
        for unit in units:
            self.ctx.store.cancel_task(self.ctx.provider, unit.id, self.ctx.now())

    async def read(self, request: Request) -> Response:
        secret = self._secret(request)
        task_id = request.path_params["task_id"]

        def answer(unknown: Callable[[], bool]) -> Response:
            task = self.ctx.own_task(task_id, secret)
            if task is None or task.data.get("path") != _path_of(request):
                raise _error(404, 1203, f"task {task_id} not found")
            return _envelope(self.render(task, self.ctx.now(), unknown_state=unknown()))

        return await self.ctx.poll(request, secret, task_id, answer)

    async def list(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "list", secret)) is not None:
            return reply
        page = page_params(request, "pageNum", "pageSize", default_size=30, max_size=500, reason="1201")
        if page.number > 1000:
            raise _error(400, 1201, "pageNum must be from 1 to 1000")
        path = _path_of(request)
        tasks, _ = ctx.store.list_tasks(ctx.provider, secret, 0, 10**9)
        mine = [t for t in tasks if t.data.get("path") == path]
        now = ctx.now()
        return _envelope([self.render(t, now) for t in mine[page.offset:page.offset + page.size]])

    def render(self, task: TaskRecord, now: float, *, unknown_state: bool = False) -> dict[str, Any]:
        data = task.data
        progress = task.progress(now)
        state = UNKNOWN_STATE if unknown_state else WALK.state(progress)
        if progress.finished_at is not None:
            updated = progress.finished_at
        elif state == "processing":
            updated = task.accepted_at + task.paused + 0.3 * task.duration
        else:
            updated = task.accepted_at
        external = data.get("external_task_id")
        obj: dict[str, Any] = {
            "task_id": task.id,
            "task_status": state,
            "task_status_msg": "",
            "task_info": {"external_task_id": external} if external else {},
            "created_at": epoch_ms(task.accepted_at),
            "updated_at": epoch_ms(updated),
        }
        parent = data.get("parent")
        if parent is not None:
            clip = MediaSpec("mp4", parent["id"], parent["width"], parent["height"], parent["seconds"], FPS)
            obj["task_info"]["parent_video"] = {"id": parent["id"], "url": self.ctx.media_url(clip, "video.mp4", now),
                                                "duration": f"{parent['seconds']:.1f}"}
        if unknown_state:
            return obj
        if progress.phase is Phase.FAILED:
            obj["task_status_msg"] = task.fail_message or "task failed"
        elif progress.phase is Phase.SUCCEEDED:
            obj["final_unit_deduction"] = f"{data['units']:g}"
            obj["watermark_info"] = {"enabled": False}
            obj["task_result"] = self._result(task, now)
        return obj

    def _result(self, task: TaskRecord, now: float) -> dict[str, Any]:
        data = task.data
        width, height = data["width"], data["height"]
        if PATHS[data["path"]] == "images":
            return {"images": [{"index": i, "url": self.ctx.media_url(
                MediaSpec("png", f"{task.id}-{i}", width, height), f"image-{i}.png", now)}
                for i in range(data["n"])]}
        seconds = data["seconds"]
        video_id = derived_uuid(task.id)
        clip = MediaSpec("mp4", video_id, width, height, seconds, FPS)
        return {"videos": [{"id": video_id, "url": self.ctx.media_url(clip, "video.mp4", now),
                            "watermark_url": "", "duration": f"{seconds:.1f}"}]}


def _envelope(data: Any) -> Response:
    return json_response({"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data})


def _external_alias(secret: str, external: str) -> str:
    """An alias that finds a task by (account, external_task_id), without the secret in it."""
    return "ext-" + derived_digits_id(f"{secret}\x00{external}", 24)


def _string(body: Mapping[str, Any], name: str, *, required: bool = False, limit: int = 2500) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _error(400, 1201, f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _error(400, 1201, f"{name} must be a string of at most {limit} characters")
    return value


def validate(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Check a create against §4 and §7; return what the task keeps."""
    images = PATHS[path] == "images"
    model = body.get("model_name", body.get("model", "kling-v1"))
    if not isinstance(model, str):
        raise _error(400, 1201, "model_name must be a string")
    allowed = IMAGE_MODELS if images else VIDEO_MODELS | (I2V_ONLY_MODELS if "image2video" in path else frozenset())
    if model not in allowed:
        raise _error(404, 1203, f"model_name {model} not found")
    image2video = path.endswith("image2video")
    _string(body, "prompt", required=not image2video)
    _string(body, "negative_prompt")
    external = _string(body, "external_task_id", limit=256)
    if images:
        n = body.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 9:
            raise _error(400, 1201, "n must be an integer from 1 to 9")
        aspect = body.get("aspect_ratio", "16:9")
        if aspect not in IMAGE_ASPECTS:
            raise _error(400, 1201, "aspect_ratio is invalid")
        if body.get("resolution", "1k") not in ("1k", "2k"):
            raise _error(400, 1201, "resolution must be 1k or 2k")
        width, height = frame_size(aspect, 288)
        return {"path": path, "model": model, "n": n, "width": width, "height": height, "units": n,
                "external_task_id": external}
    mode = body.get("mode", "std")
    if mode not in ("std", "pro"):
        raise _error(400, 1201, "mode must be std or pro")
    duration = body.get("duration", "5")
    offered = [str(s) for s in range(3, 16)] if model == "kling-v3" else ["5", "10"]
    if not isinstance(duration, str | int) or isinstance(duration, bool) or str(duration) not in offered:
        raise _error(400, 1201, f"duration must be one of {', '.join(offered)}")
    aspect = body.get("aspect_ratio", "16:9")
    if aspect not in VIDEO_ASPECTS:
        raise _error(400, 1201, "aspect_ratio must be 16:9, 9:16 or 1:1")
    if image2video:
        image, tail = body.get("image"), body.get("image_tail")
        if not image and not tail:
            raise _error(400, 1201, "image or image_tail is required")
        for name, value in (("image", image), ("image_tail", tail)):
            if value is not None and (not isinstance(value, str) or value.startswith("data:")):
                raise _error(400, 1201, f"{name} must be a URL or bare base64")
    seconds = float(whole_frames(int(duration), FPS))
    width, height = frame_size(aspect, 288)
    units = (1 if int(duration) <= 5 else 2) * (35 if mode == "pro" else 10) / 10
    return {"path": path, "model": model, "seconds": seconds, "width": width, "height": height, "mode": mode,
            "units": units, "external_task_id": external}


EMULATORS = [KlingEmulator()]
