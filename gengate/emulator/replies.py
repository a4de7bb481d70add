"""Errors and JSON bodies shared by every provider emulator.

A handler raises `ProviderError(status, message, reason)` anywhere; the framework answers it with
the provider's own `error_response` (its error-shape builder), so no emulator writes a try/except.
`read_json` refuses what a strict JSON API refuses (RFC 8259 only, valid Unicode, bounded depth)
with a 400, so that nothing the emulator cannot echo back is ever stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

MAX_DEPTH = 512


class ProviderError(Exception):
    """An error reply in the provider's shape. `reason` is the provider's code when the raiser
    knows it (`"TaskNotFound"`, `"1211"`); None lets the emulator pick the one it uses for `status`."""

    def __init__(
        self, status: int, message: str, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason
        self.headers = dict(headers or {})


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Compact UTF-8 JSON, as providers send it."""
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, headers=dict(headers or {}), media_type="application/json")


def parse_json(raw: bytes | str, what: str = "the body") -> Any:
    """Strict JSON: no NaN/Infinity, no lone surrogates, nesting at most `MAX_DEPTH`; else a 400."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if _depth(text) > MAX_DEPTH:
            raise ProviderError(400, f"{what} is nested deeper than {MAX_DEPTH} levels")
        value = json.loads(text, parse_constant=_refuse_constant)
        # A lone surrogate (`"\ud800"`) parses, but can never be sent back as UTF-8.
        json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeError and JSONDecodeError are ValueErrors
        raise ProviderError(400, f"{what} is not valid JSON") from None
    return value


async def read_json(request: Request, *, want_object: bool = True) -> Any:
    """The request body as strict JSON (see `parse_json`); with `want_object`, a JSON object."""
    body = parse_json(await request.body())
    if want_object and not isinstance(body, dict):
        raise ProviderError(400, "the body must be a JSON object")
    return body


def _depth(text: str) -> int:
    """The deepest bracket nesting outside strings (cheap: json's own recursion would be the 500)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
