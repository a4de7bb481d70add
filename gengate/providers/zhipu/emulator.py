"""The Zhipu GLM emulator (zhipu.md §9), written from the spec alone: chat completions in GLM's own
shape (no `object`, `id` = `request_id`, role repeated in every delta, usage on the last chunk),
GLM's error envelope `{"error": {"code": "1211", "message"}}` and its codes, every fault rule (op
`create`); videos and asynchronous chats (the sync chat's answer, later) read at `/async-result/{id}`.

Auth (zhipu.md §1): `Bearer {id}.{secret}` (a raw key) or `Bearer <JWT>` signed HS256 with the
secret, header `sign_type: SIGN`, payload `{"api_key": id, "exp": ms, "timestamp": ms}`; the
signature and `exp` (milliseconds) are checked. The emulator's keys are `S.S` for each accepted S.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator import clock
from gengate.emulator.auth import BEARER, hs256_claims, unverified_claims
from gengate.emulator.base import EmulatorContext
from gengate.emulator.ids import digits_id
from gengate.emulator.media import MediaSpec
from gengate.emulator.replies import ProviderError, json_response, read_json
from gengate.emulator.sse import DONE, sse_event
from gengate.emulator.timeline import Phase

IMAGE_MODELS = ("cogview-4", "cogview-4-250304", "cogview-3-flash", "glm-image")
VIDEO_MODELS = ("cogvideox-3", "cogvideox-flash")
CHAT_MODELS = ("glm-4-flash", "glm-4-plus", "glm-4.5", "glm-4.5-air", "glm-4.6")
STREAM_PACE = 0.002
MAX_PROMPT_CHARS = 400_000  # beyond it: 1261 (prompt too long)
# The code answered when a fault or the framework names only an HTTP status.
CODES = {400: "1210", 401: "1000", 403: "1220", 404: "1222", 405: "1212", 429: "1302", 500: "500", 503: "1234"}


def _verify(credential: str) -> str | None:
    """The secret a raw key `S.S` or a JWT proves, or None."""
    parts = credential.split(".")
    if len(parts) == 2:
        return parts[1] if parts[0] == parts[1] and parts[1] else None
    if len(parts) != 3:
        return None
    try:
        header = jwt.get_unverified_header(credential)
    except jwt.PyJWTError:
        return None
    claims = unverified_claims(credential)
    if header.get("alg") != "HS256" or header.get("sign_type") != "SIGN" or not claims:
        return None
    ident = claims.get("api_key")
    exp, stamp = claims.get("exp"), claims.get("timestamp")
    if not isinstance(ident, str) or not isinstance(exp, int) or not isinstance(stamp, int):
        return None
    if exp <= clock.now() * 1000:  # expired (milliseconds)
        return None
    if hs256_claims(credential, ident) is None:  # signed with the secret (= the id part here)
        return None
    return ident


GLM_AUTH = BEARER.verified_by(_verify, "Authorization: Bearer {id}.{secret} or an HS256 JWT")


def _text(messages: list[Any]) -> str:
    parts: list[str] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return " ".join(parts)


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0}}


def _bad(message: str, code: str = "1214") -> ProviderError:
    return ProviderError(400, message, code)


def _check_chat(body: dict[str, Any]) -> str:
    """A chat body's model, or GLM's error for the body (sync and async chat alike)."""
    model = body.get("model")
    if model is None:
        raise _bad("Missing required parameter: model", "1213")
    if not isinstance(model, str):
        raise _bad("Illegal parameter: model")
    messages = body.get("messages")
    if messages is None:
        raise _bad("Missing required parameter: messages", "1213")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise _bad("Illegal parameter: messages")
    if model not in CHAT_MODELS:
        raise ProviderError(400, "Model not found", "1211")
    if len(_text(messages)) > MAX_PROMPT_CHARS:
        raise ProviderError(400, "Prompt exceeds max length", "1261")
    return model


class _Chat:
    def __init__(self, body: dict[str, Any]) -> None:
        prompt = _text(body["messages"])
        self.prompt_tokens = max(1, math.ceil(len(prompt) / 4)) + 3 * len(body["messages"])
        self.tool_calls: list[dict[str, Any]] = []
        self.web_search: list[dict[str, Any]] | None = None
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        functions = [t for t in tools if t.get("type") == "function"]
        if any(t.get("type") == "web_search" for t in tools):
            self.web_search = [{"title": "Emulated result", "link": "https://example.com/glm",
                                "content": "An emulated search result.", "icon": "", "media": "Example",
                                "refer": "[ref_1]", "publish_date": "2025-10-02"}]
        if functions:
            fn = functions[0].get("function") or {}
            self.tool_calls.append({"id": "call_" + digits_id(19), "type": "function", "index": 0,
                                    "function": {"name": fn.get("name", "tool"), "arguments": "{}"}})
            self.content = ""
            self.finish = "tool_calls"
            self.completion_tokens = 8
            return
        words = prompt.split()[-12:] or ["hello"]
        self.content = "Hello! You said: " + " ".join(words)
        parts = self.content.split(" ")
        limit = body.get("max_tokens")
        self.finish = "stop"
        if isinstance(limit, int) and 0 < limit < len(parts):
            parts = parts[:limit]
            self.content = " ".join(parts)
            self.finish = "length"
        self.completion_tokens = len(parts)

    def result(self) -> dict[str, Any]:
        """`choices`, `usage` (and `web_search`) of the non-stream reply."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        out: dict[str, Any] = {"choices": [{"index": 0, "finish_reason": self.finish, "message": message}],
                               "usage": _usage(self.prompt_tokens, self.completion_tokens)}
        if self.web_search is not None:
            out["web_search"] = self.web_search
        return out


class ZhipuEmulator:
    provider: ClassVar[str] = "zhipu"
    base_path: ClassVar[str] = "/api/paas/v4"
    sandbox_models: ClassVar[tuple[str, ...]] = ("glm-4-flash", "cogview-4", "cogvideox-3")

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        return [Route("/api/paas/v4/chat/completions", api.chat, methods=["POST"]),
                Route("/api/paas/v4/images/generations", api.images, methods=["POST"]),
                Route("/api/paas/v4/async/chat/completions", api.create_async_chat, methods=["POST"]),
                Route("/api/paas/v4/videos/generations", api.create_video, methods=["POST"]),
                Route("/api/paas/v4/async-result/{task_id}", api.async_result, methods=["GET"])]

    def error_response(self, status: int, message: str, reason: str | None = None,
                       headers: Mapping[str, str] | None = None) -> Response:
        code = reason if reason and reason.isdigit() else CODES.get(status, str(status))
        return json_response({"error": {"code": code, "message": message}}, status, headers)


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    async def chat(self, request: Request) -> Response:
        secret = self.ctx.authenticate(request, GLM_AUTH, "Authentication failed: invalid token.")
        fault = await self.ctx.before(request, "create", secret)
        if fault is not None:
            return fault
        body = await read_json(request)
        model = _check_chat(body)
        chat = _Chat(body)
        call_id = digits_id(20)
        created = int(self.ctx.now())
        if body.get("stream"):
            return await self.ctx.stream_call(request, secret, _paced(_chunks(chat, call_id, created, model)))
        reply: dict[str, Any] = {"id": call_id, "request_id": body.get("request_id") or call_id,
                                 "created": created, "model": model, **chat.result()}
        return await self.ctx.answer_call(request, secret, reply)

    async def create_async_chat(self, request: Request) -> Response:
        """Async chat (§3.4): the same body and answer as the sync chat, read from `/async-result/{id}`
        once the job's seconds have passed (PROCESSING until then)."""
        ctx = self.ctx
        secret = ctx.authenticate(request, GLM_AUTH, "Authentication failed: invalid token.")
        if (fault := await ctx.before(request, "create", secret)) is not None:
            return fault
        body = await read_json(request)
        model = _check_chat(body)
        task_id = digits_id(19)
        data = {"kind": "chat", "model": model, "request_id": body.get("request_id") or task_id,
                "created": int(ctx.now()), **_Chat(body).result()}
        task = ctx.new_task(task_id, secret, data)
        if not ctx.accept(task, fail_code="1301", fail_message="The chat completion failed a content check."):
            raise ProviderError(429, "High concurrency, please retry later.", "1302")
        if (fault := await ctx.after_accept(request, secret)) is not None:
            return fault
        return json_response({"id": task_id, "request_id": data["request_id"], "model": model,
                              "task_status": "PROCESSING"})


    async def images(self, request: Request) -> Response:
        """CogView (§5): synchronous, one PNG URL."""
        ctx = self.ctx
        secret = ctx.authenticate(request, GLM_AUTH, "Authentication failed: invalid token.")
        if (fault := await ctx.before(request, "create", secret)) is not None:
            return fault
        body = await read_json(request)
        model, prompt = body.get("model"), body.get("prompt")
        if model is None or prompt is None:
            raise _bad("Missing required parameter: " + ("model" if model is None else "prompt"), "1213")
        if model not in IMAGE_MODELS:
            raise ProviderError(400, "Model not found", "1211")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _bad("Illegal parameter: prompt")
        size = body.get("size") or ("1280x1280" if model == "glm-image" else "1024x1024")
        try:
            width, height = (int(v) for v in str(size).split("x"))
        except ValueError:
            raise _bad("Illegal parameter: size") from None
        now = ctx.now()
        url = ctx.media_url(MediaSpec("png", digits_id(19), max(16, width // 8), max(16, height // 8)), "img.png", now)
        return await ctx.answer_call(request, secret, {"created": int(now), "data": [{"url": url}],
                                                      "content_filter": [{"role": "assistant", "level": 3}]})

    # Videos (§6): PROCESSING -> SUCCESS | FAIL over the task's seconds; real MP4 and PNG bytes.

    async def create_video(self, request: Request) -> Response:
        ctx = self.ctx
        secret = ctx.authenticate(request, GLM_AUTH, "Authentication failed: invalid token.")
        if (fault := await ctx.before(request, "create", secret)) is not None:
            return fault
        body = await read_json(request)
        model = body.get("model")
        if model is None:
            raise _bad("Missing required parameter: model", "1213")
        if model not in VIDEO_MODELS:
            raise ProviderError(400, "Model not found", "1211")
        prompt, image = body.get("prompt"), body.get("image_url")
        if prompt is None and image is None:
            raise _bad("Missing required parameter: prompt or image_url", "1213")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 512):
            raise _bad("Illegal parameter: prompt")
        duration = body.get("duration", 5)
        if duration not in (5, 10) or isinstance(duration, bool):
            raise _bad("Illegal parameter: duration")
        size = body.get("size") or "1920x1080"
        try:
            width, height = (int(v) for v in str(size).split("x"))
        except ValueError:
            raise _bad("Illegal parameter: size") from None
        task_id = digits_id(19)
        task = ctx.new_task(task_id, secret, {"model": model, "request_id": body.get("request_id") or task_id,
                                              "width": width // 8, "height": height // 8, "duration": duration})
        if not ctx.accept(task, fail_code="1301", fail_message="The video generation failed a content check."):
            raise ProviderError(429, "High concurrency, please retry later.", "1302")
        if (fault := await ctx.after_accept(request, secret)) is not None:
            return fault
        return json_response({"model": model, "id": task_id, "request_id": task.data["request_id"],
                              "task_status": "PROCESSING"})

    async def async_result(self, request: Request) -> Response:
        ctx = self.ctx
        secret = ctx.authenticate(request, GLM_AUTH, "Authentication failed: invalid token.")
        task_id = request.path_params["task_id"]
        async with ctx.polling(secret, task_id):
            if (fault := await ctx.before(request, "poll", secret)) is not None:
                return fault
            task = ctx.own_task(task_id, secret)
            if task is None:
                raise ProviderError(404, "Task not found", "1222")
            now = ctx.now()
            data, progress = task.data, task.progress(now)
            out: dict[str, Any] = {"model": data["model"], "request_id": data["request_id"],
                                   "task_status": "PROCESSING"}
            if ctx.unknown_state(secret):
                out["task_status"] = "QUEUING"
            elif progress.phase is Phase.SUCCEEDED and data.get("kind") == "chat":
                out.update({"id": task.id, "task_status": "SUCCESS", "created": data["created"],
                            "choices": data["choices"], "usage": data["usage"]})
                if data.get("web_search") is not None:
                    out["web_search"] = data["web_search"]
            elif progress.phase is Phase.SUCCEEDED:
                w, h = max(16, data["width"] // 2 * 2), max(16, data["height"] // 2 * 2)
                out["task_status"] = "SUCCESS"
                out["video_result"] = [{
                    "url": ctx.media_url(MediaSpec("mp4", task.id, w, h, float(data["duration"]), 8), "v.mp4", now),
                    "cover_image_url": ctx.media_url(MediaSpec("png", task.id, w, h), "v.png", now)}]
            elif progress.phase in (Phase.FAILED, Phase.CANCELED):
                out["task_status"] = "FAIL"
                out["error"] = {"code": task.fail_code or "1301", "message": task.fail_message or "failed"}
            return json_response(out)


async def _paced(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for i, chunk in enumerate(chunks):
        if i:
            await asyncio.sleep(STREAM_PACE)
        yield chunk


def _chunks(chat: _Chat, call_id: str, created: int, model: str) -> Iterator[bytes]:
    base = {"id": call_id, "created": created, "model": model}

    def chunk(delta: dict[str, Any], **extra: Any) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": {"role": "assistant", **delta}}
        if "finish_reason" in extra:
            choice = {"index": 0, "finish_reason": extra.pop("finish_reason"), **{"delta": choice["delta"]}}
        return sse_event({**base, "choices": [choice], **extra})

    if chat.tool_calls:
        yield chunk({"tool_calls": chat.tool_calls})
    else:
        for i, word in enumerate(chat.content.split(" ")):
            yield chunk({"content": word if i == 0 else " " + word})
    extra: dict[str, Any] = {"usage": _usage(chat.prompt_tokens, chat.completion_tokens)}
    if chat.web_search is not None:
        extra["web_search"] = chat.web_search
    yield chunk({"content": ""}, finish_reason=chat.finish, **extra)
    yield DONE


EMULATORS = [ZhipuEmulator()]
