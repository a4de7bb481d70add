"""Emulated Suno-API proxy (suno.md §1, §4, §5, §8), written from the spec alone.

Served below `/suno` by the emulator app, so a channel's base URL is `http://HOST:P/suno` and the
proxy's own paths follow: `POST /suno/submit/music`, `POST /suno/submit/lyrics`, `POST /suno/fetch`
(`{ids: [...]}`, one call for many tasks), `GET /suno/fetch/{id}` (the raw clip/lyrics payload) and
`GET /suno/account`. It must not import gengate's Suno adaptor: a misread of the format must not hide
on both sides.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator.auth import BEARER
from gengate.emulator.base import EmulatorContext
from gengate.emulator.clock import epoch_s, iso_z
from gengate.emulator.ids import derived_digits_id, derived_uuid, uuid_id
from gengate.emulator.media import MediaSpec
from gengate.emulator.replies import ProviderError, json_response, read_json
from gengate.emulator.timeline import Phase, StateWalk, TaskRecord

DEFAULT_MV = "chirp-v3-0"
CLIPS_PER_SONG = 2
# The §4 clip walk: each running state ends at that share of the task's duration.
CLIP_WALK = StateWalk(
    ((0.1, "submitted"), (0.25, "queued"), (1.0, "streaming")),
    {Phase.SUCCEEDED: "complete", Phase.FAILED: "error", Phase.CANCELED: "error"},
)
TASK_STATUS = {"submitted": "SUBMITTED", "queued": "QUEUED", "streaming": "IN_PROGRESS", "complete": "SUCCESS"}
UNKNOWN_STATUS = "MYSTERY"
FAIL_CODE = "content_policy"
FAIL_MESSAGE = "Unable to generate audio: the lyrics break the content policy"
LYRICS_BLOCK_SECONDS = 0.3  # the proxy waits for the lyrics before it answers (up to 2 min for real)
SECONDS = (6.0, 12.0)  # clip length range (kept short so files render fast)
COVER = (256, 256)
COVER_LARGE = (512, 512)
VIDEO_FPS = 1
REASONS = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "task_not_exist",
           405: "invalid_request", 429: "too_many_requests"}
_STRINGS = ("prompt", "gpt_description_prompt", "mv", "title", "tags", "negative_tags", "continue_clip_id",
            "task_id", "task")


def _bad(message: str) -> ProviderError:
    return ProviderError(400, message, "invalid_request")


class SunoEmulator:
    provider: ClassVar[str] = "suno"
    sandbox_models: ClassVar[tuple[str, ...]] = ("chirp-v3-0", "chirp-v3-5", "suno_lyrics")

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        return [
            Route("/suno/submit/{action}", api.submit, methods=["POST"]),
            Route("/suno/fetch", api.fetch_many, methods=["POST"]),
            Route("/suno/fetch/{task_id}", api.fetch_one, methods=["GET"]),
            Route("/suno/account", api.account, methods=["GET"]),
        ]

    def error_response(
        self, status: int, message: str, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        code = reason or REASONS.get(status, "internal_error")
        return json_response({"code": code, "message": message, "data": None}, status, headers)


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def _secret(self, request: Request) -> str:
        return self.ctx.authenticate(request, BEARER, "invalid api key")

    # ------------------------------------------------------------------ submit
    async def submit(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        action = request.path_params["action"].upper()
        if action not in ("MUSIC", "LYRICS"):
            raise _bad("invalid_action")
        if (reply := await ctx.before(request, "create", secret)) is not None:
            return reply
        body = await read_json(request)
        task_id = uuid_id()
        if action == "LYRICS":
            data = self._plan_lyrics(body, task_id)
        else:
            data = self._plan_music(body, task_id, secret)
        task = ctx.new_task(task_id, secret, data)
        if action == "LYRICS":
            task.duration = 0.0  # the proxy answers once the lyrics exist
        aliases = [c["id"] for c in data.get("clips", [])]
        if not ctx.accept(task, aliases, fail_code=FAIL_CODE, fail_message=FAIL_MESSAGE):
            raise ProviderError(429, "too many running tasks for this account", "too_many_requests")
        if action == "LYRICS":
            await asyncio.sleep(LYRICS_BLOCK_SECONDS)
        if (reply := await ctx.after_accept(request, secret)) is not None:
            return reply
        return json_response({"code": "success", "message": "", "data": task_id})

    def _plan_lyrics(self, body: dict[str, Any], task_id: str) -> dict[str, Any]:
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise _bad("prompt must be a string")
        if not prompt or not prompt.strip():
            raise _bad("prompt_empty")
        title = " ".join(prompt.split()[:3]).title()
        lines = [w.capitalize() for w in prompt.split()][:8]
        text = "[Verse]\n" + "\n".join(lines) + "\n\n[Chorus]\n" + title + ", " + title.lower()
        return {"action": "LYRICS", "lyrics": {"id": derived_uuid(task_id + ":lyrics"), "title": title,
                                                "text": text}}

    def _plan_music(self, body: dict[str, Any], task_id: str, secret: str) -> dict[str, Any]:
        for name in _STRINGS:
            if body.get(name) is not None and not isinstance(body[name], str):
                raise _bad(f"{name} must be a string")
        if body.get("make_instrumental") is not None and not isinstance(body["make_instrumental"], bool):
            raise _bad("make_instrumental must be a boolean")
        at = body.get("continue_at")
        if at is not None and (isinstance(at, bool) or not isinstance(at, int | float) or at < 0):
            raise _bad("continue_at must be a non-negative number")
        description = body.get("gpt_description_prompt") or ""
        inspiration = bool(description.strip())
        prompt = "" if inspiration else (body.get("prompt") or "")
        instrumental = bool(body.get("make_instrumental"))
        if not inspiration and not prompt.strip() and not instrumental:
            raise _bad("prompt_empty")
        parent: dict[str, Any] | None = None
        if not inspiration and body.get("continue_clip_id"):
            if not body.get("task_id"):
                raise _bad("task id is empty")
            parent = self._parent_clip(body["continue_clip_id"], secret)
            if at is None:
                raise _bad("continue_at is required to extend a clip")
            if at > parent["duration"]:
                raise _bad(f"continue_at is past the end of the clip ({parent['duration']} s)")
        mv = body.get("mv") or DEFAULT_MV
        if inspiration:
            title = " ".join(description.split()[:4]).title()
            tags = "pop, electronic"
        else:
            title = body.get("title") or (parent["title"] if parent else "Untitled")
            tags = body.get("tags") or ""
        rng = random.Random(task_id)
        clips = []
        for index in range(CLIPS_PER_SONG):
            clip_id = derived_uuid(f"{task_id}:{index}")
            clips.append({
                "id": clip_id, "title": title, "tags": tags, "negative_tags": body.get("negative_tags") or "",
                "prompt": "[Instrumental]" if instrumental and not prompt else prompt,
                "gpt_description_prompt": description if inspiration else None, "mv": mv,
                "duration": round(rng.uniform(*SECONDS), 1), "instrumental": instrumental,
                "history": ([{"id": parent["id"], "continue_at": at, "type": "gen", "source": "web"}]
                            if parent else None),
            })
        return {"action": "MUSIC", "clips": clips}

    def _parent_clip(self, clip_id: str, secret: str) -> dict[str, Any]:
        """A clip of this account's finished song; another account's clip does not exist for it."""
        ctx = self.ctx
        task = ctx.store.find_alias(ctx.provider, clip_id)
        if task is None or task.secret != secret or task.progress(ctx.now()).phase is not Phase.SUCCEEDED:
            raise _bad(f"clip {clip_id} not found")
        for clip in task.data["clips"]:
            if clip["id"] == clip_id:
                return dict(clip)
        raise _bad(f"clip {clip_id} not found")

    # ------------------------------------------------------------------ fetch
    async def fetch_many(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        body = await read_json(request)
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _bad("ids must be an array of task ids")
        async with ctx.polling(secret, ",".join(sorted(ids))):
            if (reply := await ctx.before(request, "poll", secret)) is not None:
                return reply
            unknown = ctx.unknown_state(secret)
            now = ctx.now()
            rows = []
            for task_id in dict.fromkeys(ids):
                task = ctx.own_task(task_id, secret)
                if task is not None:  # unknown ids are simply absent (§8)
                    rows.append(self.row(task, now, unknown_state=unknown))
            return json_response({"code": "success", "message": "", "data": rows})

    async def fetch_one(self, request: Request) -> Response:
        secret = self._secret(request)
        task_id = request.path_params["task_id"]

        def answer(_unknown: object) -> Response:  # one task's fetch shows documented states only
            task = self.ctx.own_task(task_id, secret)
            if task is None:
                raise ProviderError(404, "task not exist", "task_not_exist")
            return json_response({"code": "success", "message": "", "data": self.row(task, self.ctx.now())["data"]})

        return await self.ctx.poll(request, secret, task_id, answer)

    async def account(self, request: Request) -> Response:
        ctx = self.ctx
        secret = self._secret(request)
        if (reply := await ctx.before(request, "list", secret)) is not None:
            return reply
        return json_response({"code": "success", "message": "",
                              "data": {"credits_left": 5000, "period": "month", "monthly_limit": 5000,
                                       "monthly_usage": 0}})

    # ------------------------------------------------------------------ rendering
    def row(self, task: TaskRecord, now: float, *, unknown_state: bool = False) -> dict[str, Any]:
        """One batch-fetch row: the TaskDto fields plus the proxy's bookkeeping (§3)."""
        progress = task.progress(now)
        data = task.data
        finished = progress.finished_at
        start = task.accepted_at + 0.1 * task.duration
        out: dict[str, Any] = {
            "id": int(derived_digits_id(task.id, 9)), "task_id": task.id, "action": data["action"], "status": "",
            "fail_reason": "", "submit_time": epoch_s(task.accepted_at),
            "start_time": epoch_s(start) if now >= start or finished else 0,
            "finish_time": epoch_s(finished) if finished else 0, "progress": "0%",
            "created_at": iso_z(task.accepted_at, 3), "updated_at": iso_z(now, 3),
        }
        if data["action"] == "LYRICS":
            lyrics = data["lyrics"]
            done = progress.phase is Phase.SUCCEEDED
            out["data"] = {"id": lyrics["id"], "status": "complete" if done else "running",
                           "title": lyrics["title"] if done else "", "text": lyrics["text"] if done else ""}
            out["status"] = "SUCCESS" if done else ("FAILURE" if progress.terminal else "IN_PROGRESS")
            if progress.phase is Phase.FAILED:
                out["fail_reason"] = task.fail_message or FAIL_MESSAGE
        else:
            clip_state = CLIP_WALK.state(progress)
            clips = [self._clip(task, c, clip_state, progress.phase, now) for c in data["clips"]]
            out["data"] = clips
            # The task takes the status of a clip that is not complete yet (§4).
            pending = [c["status"] for c in clips if c["status"] != "complete"]
            out["status"] = TASK_STATUS.get(pending[0], "FAILURE") if pending else "SUCCESS"
            if out["status"] == "FAILURE":
                out["fail_reason"] = next((c["metadata"]["error_message"] for c in clips
                                           if c["metadata"].get("error_message")), "")
        out["progress"] = f"{int(progress.fraction * 100)}%" if not progress.terminal else "100%"
        if unknown_state:
            out["status"] = UNKNOWN_STATUS
        return out

    def _clip(self, task: TaskRecord, c: dict[str, Any], status: str, phase: Phase, now: float) -> dict[str, Any]:
        ctx = self.ctx
        complete = status == "complete"
        duration = c["duration"]
        audio = ctx.media_url(MediaSpec("mp3", c["id"], duration=duration), f"{c['id']}.mp3", now)
        streaming_or_done = status in ("streaming", "complete")
        failed = status == "error"
        clip: dict[str, Any] = {
            "id": c["id"], "video_url": "", "audio_url": audio if streaming_or_done else "",
            "image_url": "", "image_large_url": "", "is_video_pending": not complete,
            "major_model_version": c["mv"].split("-")[1] if "-" in c["mv"] else c["mv"],
            "model_name": c["mv"], "status": status, "title": c["title"], "created_at": iso_z(task.accepted_at, 3),
            "play_count": 0, "upvote_count": 0, "is_public": False, "is_liked": False, "is_trashed": False,
            "user_id": derived_uuid("user:" + task.secret), "handle": "emulated",
            "display_name": "Emulated", "reaction": None,
            "metadata": {
                "tags": c["tags"], "negative_tags": c["negative_tags"], "prompt": c["prompt"],
                "gpt_description_prompt": c["gpt_description_prompt"], "audio_prompt_id": None,
                "history": c["history"], "concat_history": None, "type": "gen",
                "duration": duration if complete else None, "refund_credits": failed,
                "stream": True, "infill": False, "error_type": "moderation" if failed else None,
                "error_message": (task.fail_message or FAIL_MESSAGE) if failed else None,
            },
        }
        if streaming_or_done or complete:
            clip["image_url"] = ctx.media_url(MediaSpec("jpeg", c["id"], *COVER), f"image_{c['id']}.jpeg", now)
            clip["image_large_url"] = ctx.media_url(MediaSpec("jpeg", c["id"] + "-large", *COVER_LARGE),
                                                    f"image_large_{c['id']}.jpeg", now)
        if complete:
            clip["video_url"] = ctx.media_url(MediaSpec("mp4", c["id"], *COVER, duration=duration, fps=VIDEO_FPS),
                                              f"{c['id']}.mp4", now)
        return clip


EMULATORS = [SunoEmulator()]
