"""The OpenAI emulator (openai.md §9): models, chat completions (stream, tool calls, response_format,
`stream_options.include_usage`), the Responses API (stream and non-stream), embeddings (`float` and
`base64`, `dimensions`) and images (dall-e-3 generations, dall-e-2 generations and edits, `url` and
`b64_json`, real PNG bytes). Bearer auth, OpenAI's error envelope, every fault rule (op `create`).

Written from the spec alone: it imports nothing from `gengate.providers`. Replies are cheap to build
(no media on the chat path) so that the emulator is not the bottleneck of a load test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import struct
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gengate.emulator import (
    BEARER,
    DONE,
    EmulatorContext,
    MediaSpec,
    ProviderError,
    epoch_s,
    json_response,
    prefixed_id,
    read_json,
    sse_event,
)
from gengate.emulator.media import render_image

CHAT_MODELS = ("gpt-4o-mini", "gpt-4o")
GPT_PATTERNS = ("gpt-4-gizmo-*", "gpt-4o-gizmo-*")
EMBEDDING_DIMS = {"text-embedding-3-small": 1536}
IMAGE_MODELS = ("dall-e-3", "dall-e-2")
CREATED = {"gpt-4o-mini": 1721172741, "gpt-4o": 1715367049, "text-embedding-3-small": 1705948997,
           "dall-e-3": 1698785189, "dall-e-2": 1698798177}
SIZES = {"dall-e-3": ("1024x1024", "1792x1024", "1024x1792"), "dall-e-2": ("256x256", "512x512", "1024x1024")}
# Seconds between two chunks of a chat stream, as a model takes time per token.
STREAM_PACE = 0.002
# Emulated pictures are rendered smaller than the size named (same aspect ratio), so a reply stays cheap.
RENDER_SCALE = 4

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
               404: "invalid_request_error", 413: "invalid_request_error", 429: "requests",
               500: "server_error", 502: "server_error", 503: "server_error"}
ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def _is_chat_model(model: str) -> bool:
    return model in CHAT_MODELS or "-gizmo-g-" in model


def _words(text: str) -> list[str]:
    return text.split() or ["ok"]


def _message_text(messages: list[Any]) -> str:
    parts: list[str] = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return " ".join(parts)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _example(schema: Any, depth: int = 0) -> Any:
    """A value that fits a JSON schema (the fields a function or `json_schema` format asks for)."""
    if not isinstance(schema, dict) or depth > 8:
        return "example"
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _example(v, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [_example(schema.get("items"), depth + 1)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return "example"


class _Chat:
    """One chat completion worked out from the request: text or tool calls, and its usage."""

    def __init__(self, body: dict[str, Any]) -> None:
        messages = body["messages"]
        prompt = _message_text(messages)
        self.prompt_tokens = _tokens(prompt) + 3 * len(messages)
        self.tool_calls: list[dict[str, Any]] = []
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        choice = body.get("tool_choice", "auto")
        if tools and choice != "none":
            tool = tools[0]
            if isinstance(choice, dict):
                wanted = (choice.get("function") or {}).get("name")
                tool = next((t for t in tools if t["function"].get("name") == wanted), tool)
            fn = tool.get("function") or {}
            self.tool_calls.append({"id": prefixed_id("call_", 24), "type": "function",
                                    "function": {"name": fn.get("name", "tool"),
                                                 "arguments": json.dumps(_example(fn.get("parameters")))}})
            self.content: str | None = None
            self.completion_tokens = 12
            self.finish = "tool_calls"
            return
        fmt = body.get("response_format") or {}
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        # The reply echoes the prompt's last words: 12, or up to the token cap the client set.
        echo = min(limit, 4096) if isinstance(limit, int) and limit > 12 else 12
        last = prompt.split()[-echo:] if prompt.split() else ["hello"]
        if fmt.get("type") == "json_schema":
            self.content = json.dumps(_example((fmt.get("json_schema") or {}).get("schema")))
        elif fmt.get("type") == "json_object":
            self.content = json.dumps({"reply": " ".join(last)})
        else:
            self.content = "Hello! You said: " + " ".join(last)
        words = _words(self.content)
        self.finish = "stop"
        if isinstance(limit, int) and 0 < limit < len(words) and fmt.get("type") not in ("json_schema", "json_object"):
            words = words[:limit]
            self.content = " ".join(words)
            self.finish = "length"
        self.completion_tokens = len(words)


class OpenAIEmulator:
    provider: ClassVar[str] = "openai"
    base_path: ClassVar[str] = "/v1"
    sandbox_models: ClassVar[tuple[str, ...]] = (*CHAT_MODELS, *GPT_PATTERNS, *EMBEDDING_DIMS, *IMAGE_MODELS)

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        api = _Api(ctx)
        return [
            Route("/v1/models", api.models, methods=["GET"]),
            Route("/v1/models/{model:path}", api.model, methods=["GET"]),
            Route("/v1/chat/completions", api.chat, methods=["POST"]),
            Route("/v1/responses", api.responses, methods=["POST"]),
            Route("/v1/embeddings", api.embeddings, methods=["POST"]),
            Route("/v1/images/generations", api.images, methods=["POST"]),
            Route("/v1/images/edits", api.edits, methods=["POST"]),
        ]

    def error_response(self, status: int, message: str, reason: str | None = None,
                       headers: Mapping[str, str] | None = None) -> Response:
        body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                          "param": None, "code": reason or ERROR_CODES.get(status)}}
        return json_response(body, status, headers)


def _bad(message: str, param: str | None = None) -> ProviderError:
    return ProviderError(400, message + (f" (param: {param})" if param else ""), None)


def _no_model(model: object) -> ProviderError:
    return ProviderError(404, f"The model `{model}` does not exist or you do not have access to it.",
                         "model_not_found")


class _Api:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    async def _begin(self, request: Request) -> tuple[str, Response | None]:
        secret = self.ctx.authenticate(request, BEARER, "Incorrect API key provided.")
        return secret, await self.ctx.before(request, "create", secret)

    # Models.

    async def models(self, request: Request) -> Response:
        self.ctx.authenticate(request, BEARER, "Incorrect API key provided.")
        names = [*CHAT_MODELS, *EMBEDDING_DIMS, *IMAGE_MODELS]
        return json_response({"object": "list", "data": [_model(n) for n in names]})

    async def model(self, request: Request) -> Response:
        self.ctx.authenticate(request, BEARER, "Incorrect API key provided.")
        name = request.path_params["model"]
        if name not in (*CHAT_MODELS, *EMBEDDING_DIMS, *IMAGE_MODELS) and not _is_chat_model(name):
            raise _no_model(name)
        return json_response(_model(name))

    # Chat.

    async def chat(self, request: Request) -> Response:
        secret, fault = await self._begin(request)
        if fault is not None:
            return fault
        body = await read_json(request)
        model = body.get("model")
        if not isinstance(model, str):
            raise _bad("you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _bad("'messages' must be a non-empty array of message objects", "messages")
        if not _is_chat_model(model):
            raise _no_model(model)
        chat = _Chat(body)
        call_id, created = prefixed_id("chatcmpl-", 29), epoch_s(self.ctx.now())
        shown = "gpt-4-gizmo" if "-gizmo-g-" in model else model
        if body.get("stream"):
            usage_on = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = _chat_chunks(chat, call_id, created, shown, usage_on)
            return await self.ctx.stream_call(request, secret, _paced(chunks))
        message: dict[str, Any] = {"role": "assistant", "content": chat.content, "refusal": None, "annotations": []}
        if chat.tool_calls:
            message["tool_calls"] = chat.tool_calls
        reply = {"id": call_id, "object": "chat.completion", "created": created, "model": shown,
                 "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": chat.finish}],
                 "usage": _usage(chat.prompt_tokens, chat.completion_tokens),
                 "service_tier": "default", "system_fingerprint": "fp_emulated01"}
        return await self.ctx.answer_call(request, secret, reply)

    # Responses.

    async def responses(self, request: Request) -> Response:
        secret, fault = await self._begin(request)
        if fault is not None:
            return fault
        body = await read_json(request)
        model = body.get("model")
        if not isinstance(model, str):
            raise _bad("you must provide a model parameter", "model")
        given = body.get("input")
        if isinstance(given, str):
            prompt = given
        elif isinstance(given, list) and given:
            prompt = _message_text([m for m in given if isinstance(m, dict)])
        else:
            raise _bad("'input' must be a string or a non-empty array", "input")
        if model not in CHAT_MODELS:
            raise _no_model(model)
        if isinstance(body.get("instructions"), str):
            prompt = body["instructions"] + " " + prompt
        words = prompt.split()[-12:] or ["hello"]
        text = "Hello! You said: " + " ".join(words)
        usage = {"input_tokens": _tokens(prompt) + 3, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": len(text.split()), "output_tokens_details": {"reasoning_tokens": 0}}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        resp_id, msg_id = prefixed_id("resp_", 48), prefixed_id("msg_", 48)
        created = epoch_s(self.ctx.now())
        if body.get("stream"):
            return await self.ctx.stream_call(request, secret,
                                              _response_events(body, resp_id, msg_id, created, text, usage))
        return await self.ctx.answer_call(request, secret,
                                          _response_object(body, resp_id, created, "completed",
                                                           [_message_item(msg_id, text)], usage))

    # Embeddings.

    async def embeddings(self, request: Request) -> Response:
        secret, fault = await self._begin(request)
        if fault is not None:
            return fault
        body = await read_json(request)
        model, given = body.get("model"), body.get("input")
        if not isinstance(model, str):
            raise _bad("you must provide a model parameter", "model")
        if isinstance(given, str) or (isinstance(given, list) and given and isinstance(given[0], int)):
            inputs: list[Any] = [given]
        elif isinstance(given, list) and given:
            inputs = given
        else:
            raise _bad("'input' must be a string or a non-empty array", "input")
        if any(not isinstance(i, str | list) or (isinstance(i, str) and not i) for i in inputs):
            raise _bad("'input' items must be non-empty strings or token arrays", "input")
        if model not in EMBEDDING_DIMS:
            raise _no_model(model)
        native = EMBEDDING_DIMS[model]
        dims = body.get("dimensions", native)
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= native:
            raise _bad(f"'dimensions' must be an integer from 1 to {native}", "dimensions")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise _bad("'encoding_format' must be 'float' or 'base64'", "encoding_format")
        data, tokens = [], 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            tokens += _tokens(text) if isinstance(item, str) else len(item)
            vector = _vector(text, dims)
            value: Any = (base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if fmt == "base64"
                          else vector)
            data.append({"object": "embedding", "index": i, "embedding": value})
        reply = {"object": "list", "data": data, "model": model,
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return await self.ctx.answer_call(request, secret, reply)

    # Images.

    async def images(self, request: Request) -> Response:
        secret, fault = await self._begin(request)
        if fault is not None:
            return fault
        body = await read_json(request)
        model = body.get("model") or "dall-e-2"
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _bad("'prompt' is required", "prompt")
        if model not in IMAGE_MODELS:
            raise _no_model(model)
        return await self._image_reply(request, secret, model, prompt, body)

    async def edits(self, request: Request) -> Response:
        secret, fault = await self._begin(request)
        if fault is not None:
            return fault
        try:
            form = await request.form()
        except Exception:
            raise _bad("the body must be multipart/form-data") from None
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        image = form.get("image") or form.get("image[]")
        if image is None or isinstance(image, str):
            raise _bad("'image' is required (a PNG file)", "image")
        head = await image.read(8)
        if head != b"\x89PNG\r\n\x1a\n":
            raise _bad("'image' must be a PNG file", "image")
        model = fields.get("model") or "dall-e-2"
        prompt = fields.get("prompt")
        if not prompt:
            raise _bad("'prompt' is required", "prompt")
        if model != "dall-e-2":
            raise _bad(f"Invalid model {model}. The model must be dall-e-2 for edits.", "model")
        params: dict[str, Any] = dict(fields)
        if "n" in params:
            try:
                params["n"] = int(params["n"])
            except ValueError:
                raise _bad("'n' must be an integer", "n") from None
        return await self._image_reply(request, secret, model, prompt, params)

    async def _image_reply(self, request: Request, secret: str, model: str, prompt: str,
                           body: Mapping[str, Any]) -> Response:
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10 or (model == "dall-e-3" and n != 1):
            raise _bad("'n' must be 1-10 (dall-e-3: 1)", "n")
        size = body.get("size") or "1024x1024"
        if size not in SIZES[model]:
            raise _bad(f"'size' must be one of {', '.join(SIZES[model])} for {model}", "size")
        fmt = body.get("response_format") or "url"
        if fmt not in ("url", "b64_json"):
            raise _bad("'response_format' must be 'url' or 'b64_json'", "response_format")
        width, height = (int(x) // RENDER_SCALE for x in size.split("x"))
        seed = hashlib.sha256(f"{model}|{size}|{prompt}".encode()).hexdigest()[:16]
        now = self.ctx.now()
        data = []
        for i in range(n):
            spec = MediaSpec("png", f"{seed}-{i}", width, height)
            item: dict[str, Any] = ({"b64_json": base64.b64encode(render_image(spec)).decode()} if fmt == "b64_json"
                                    else {"url": self.ctx.media_url(spec, f"img-{seed}-{i}.png", now)})
            if model == "dall-e-3":
                item["revised_prompt"] = f"{prompt.strip()}, in a detailed illustration"
            data.append(item)
        return await self.ctx.answer_call(request, secret, {"created": epoch_s(now), "data": data})


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED.get(name, 1700000000),
            "owned_by": "system" if name.startswith(("dall-e", "text-embedding")) else "openai"}


def _vector(text: str, dims: int) -> list[float]:
    """A unit vector that depends on the text (different inputs, different vectors)."""
    out: list[float] = []
    block = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{block}|{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        block += 1
    out = out[:dims]
    norm = math.sqrt(sum(v * v for v in out)) or 1.0
    return [round(v / norm, 6) for v in out]


async def _paced(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for i, chunk in enumerate(chunks):
        if i:
            await asyncio.sleep(STREAM_PACE)
        yield chunk


def _chat_chunks(chat: _Chat, call_id: str, created: int, model: str, usage_on: bool) -> Iterator[bytes]:
    base = {"id": call_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_emulated01"}
    extra = {"usage": None} if usage_on else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_event({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                               "finish_reason": finish}], **extra})

    if chat.tool_calls:
        call = chat.tool_calls[0]
        yield chunk({"role": "assistant", "content": None, "refusal": None,
                     "tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                     "function": {"name": call["function"]["name"], "arguments": ""}}]})
        args = call["function"]["arguments"]
        for start in range(0, len(args), 8):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[start:start + 8]}}]})
    else:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        words = (chat.content or "").split(" ")
        for i, word in enumerate(words):
            yield chunk({"content": word if i == 0 else " " + word})
    yield chunk({}, chat.finish)
    if usage_on:
        yield sse_event({**base, "choices": [], "usage": _usage(chat.prompt_tokens, chat.completion_tokens)})
    yield DONE


def _message_item(msg_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": msg_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def _response_object(body: Mapping[str, Any], resp_id: str, created: int, status: str,
                     output: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": resp_id, "object": "response", "created_at": created, "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"], "output": output, "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None}, "service_tier": "default", "store": True,
            "temperature": body.get("temperature", 1.0), "text": {"format": {"type": "text"}},
            "tool_choice": "auto", "tools": [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": usage, "user": None, "metadata": body.get("metadata") or {}}


def _response_events(body: Mapping[str, Any], resp_id: str, msg_id: str, created: int, text: str,
                     usage: dict[str, Any]) -> Iterator[bytes]:
    seq = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        data = {"type": kind, "sequence_number": seq, **fields}
        seq += 1
        return sse_event(data, kind)

    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    yield event("response.created", response=_response_object(body, resp_id, created, "in_progress", [], None))
    yield event("response.in_progress", response=_response_object(body, resp_id, created, "in_progress", [], None))
    item = {"type": "message", "id": msg_id, "status": "in_progress", "role": "assistant", "content": []}
    yield event("response.output_item.added", output_index=0, item=item)
    yield event("response.content_part.added", item_id=msg_id, output_index=0, content_index=0, part=part)
    for i, word in enumerate(text.split(" ")):
        yield event("response.output_text.delta", item_id=msg_id, output_index=0, content_index=0,
                    delta=word if i == 0 else " " + word, logprobs=[])
    yield event("response.output_text.done", item_id=msg_id, output_index=0, content_index=0, text=text, logprobs=[])
    yield event("response.content_part.done", item_id=msg_id, output_index=0, content_index=0,
                part={**part, "text": text})
    done_item = _message_item(msg_id, text)
    yield event("response.output_item.done", output_index=0, item=done_item)
    yield event("response.completed",
                response=_response_object(body, resp_id, created, "completed", [done_item], usage))


EMULATORS = [OpenAIEmulator()]
