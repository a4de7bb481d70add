"""Reading a client's body: the bytes (bounded), strict JSON (orjson: no NaN, no lone surrogates;
nesting bounded), and only the fields routing and billing need. The bytes themselves are what goes
upstream; a body is re-serialised only when the upstream must see something else (a mapped model
name, `stream_options.include_usage` asked for the client).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from gengate.core.errors import BodyTooLarge, ClientGone, InvalidRequest, ModelNotAllowed
from gengate.web.requests import MAX_JSON_DEPTH, json_depth_exceeds

# A body carrying inline images may use the media limit (interface.md "Bad requests").
_MEDIA_HINTS = (b'"image_url"', b'"input_image"', b'"input_audio"', b'"file_data"')


async def read_body(request: Request, limit: int, media_limit: int | None = None) -> bytes:
    """The raw body; over `limit` (or `media_limit` for a body with inline media) → 413."""
    hard = max(limit, media_limit or 0)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > hard:
        raise BodyTooLarge(f"request body larger than {hard} bytes")
    if declared is not None and declared.isdigit():
        try:
            raw = await request.body()
        except ClientDisconnect:
            raise ClientGone("the client closed the connection") from None
    else:
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > hard:
                    raise BodyTooLarge(f"request body larger than {hard} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise ClientGone("the client closed the connection") from None
        raw = b"".join(chunks)
    if len(raw) > limit and not (media_limit and any(h in raw for h in _MEDIA_HINTS)):
        raise BodyTooLarge(f"request body larger than {limit} bytes")
    return raw


def parse_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidRequest("We could not parse the JSON body of your request: the body is empty.")
    if json_depth_exceeds(raw):
        raise InvalidRequest(f"The JSON body of your request nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request ({exc.msg}).") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body of your request must be a JSON object.")
    return body


def _param(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise _param("you must provide a model parameter", "model")
    if not isinstance(model, str) or not model.strip():
        raise _param("Invalid type for 'model': expected a non-empty string.", "model")
    if model.startswith("g-"):  # a bare GPTs id: only `gpt-4-gizmo-g-...` names one (openai.md §7)
        raise ModelNotAllowed(f"The model `{model}` does not exist or you do not have access to it.")
    return model


def _optional(body: dict[str, Any], name: str, kinds: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise _param(f"Invalid type for '{name}': expected {what}.", name)
    return value


@dataclass(slots=True)
class CallSpec:
    """What routing and billing read of a JSON call."""

    model: str
    stream: bool
    include_usage: bool  # the client asked for the usage chunk itself
    input_estimate: int  # an upper bound of the input tokens
    max_output: int | None  # the client's cap on output tokens


def _stream_fields(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = _optional(body, "stream", bool, "a boolean") or False
    options = _optional(body, "stream_options", dict, "an object")
    include = False
    if options is not None:
        if not stream:
            raise _param("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        include = bool(options.get("include_usage"))
    return stream, include


def _input_estimate(raw: bytes) -> int:
    # A token is at least one byte of UTF-8 text in every tokenizer OpenAI uses; a third of the
    # bytes bounds any realistic prompt, JSON punctuation included, at no parsing cost.
    return max(1, len(raw) // 3)


def _max_int(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = _optional(body, name, int, "an integer")
        if value is not None:
            if value < 1:
                raise _param(f"Invalid '{name}': must be at least 1.", name)
            return int(value)
    return None


def chat_spec(body: dict[str, Any], raw: bytes) -> CallSpec:
    model = require_model(body)
    messages = body.get("messages")
    if messages is None:
        raise _param("Missing required parameter: 'messages'.", "messages")
    if not isinstance(messages, list):
        raise _param("Invalid type for 'messages': expected an array.", "messages")
    if not messages:
        raise _param("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _param(f"Invalid 'messages[{i}]': expected an object with a string 'role'.", f"messages[{i}]")
    _optional(body, "tools", list, "an array")
    _optional(body, "response_format", dict, "an object")
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        _optional(body, name, (int, float), "a number")
    _optional(body, "n", int, "an integer")
    stream, include = _stream_fields(body)
    return CallSpec(model, stream, include, _input_estimate(raw), _max_int(body, "max_completion_tokens",
                                                                           "max_tokens"))


def responses_spec(body: dict[str, Any], raw: bytes) -> CallSpec:
    model = require_model(body)
    given = body.get("input")
    if given is None:
        raise _param("Missing required parameter: 'input'.", "input")
    if not isinstance(given, str | list):
        raise _param("Invalid type for 'input': expected a string or an array.", "input")
    _optional(body, "instructions", str, "a string")
    stream = _optional(body, "stream", bool, "a boolean") or False
    return CallSpec(model, stream, True, _input_estimate(raw), _max_int(body, "max_output_tokens"))


def embeddings_spec(body: dict[str, Any], raw: bytes) -> CallSpec:
    model = require_model(body)
    given = body.get("input")
    if given is None:
        raise _param("Missing required parameter: 'input'.", "input")
    if isinstance(given, str):
        if not given:
            raise _param("'input' cannot be an empty string.", "input")
    elif not isinstance(given, list) or not given:
        raise _param("Invalid 'input': expected a string or a non-empty array.", "input")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise _param("Invalid value for 'encoding_format': expected 'float' or 'base64'.", "encoding_format")
    dims = _optional(body, "dimensions", int, "an integer")
    if dims is not None and dims < 1:
        raise _param("Invalid 'dimensions': must be at least 1.", "dimensions")
    return CallSpec(model, False, False, _input_estimate(raw), 0)


def with_changes(body: dict[str, Any], model: str | None, ask_usage: bool) -> bytes:
    """The body re-serialised with the upstream model name and/or `stream_options.include_usage`."""
    changed = dict(body)
    if model is not None:
        changed["model"] = model
    if ask_usage:
        changed["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(changed)


def glm_body(body: dict[str, Any], channel: Any, model: str) -> tuple[bytes, str]:
    """The body for a GLM channel: its upstream model, without `stream_options`."""
    upstream = channel.upstream_model(model)
    sent = {k: v for k, v in body.items() if k != "stream_options"}
    sent["model"] = upstream
    return orjson.dumps(sent), upstream
