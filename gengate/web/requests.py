"""Reading what a client sent: its key, its JSON body (bounded), its Idempotency-Key."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from gengate.core.errors import BodyTooLarge, InvalidRequest


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python accepts them, and no reply could echo them back.
    raise ValueError(f"{name} is not valid JSON")


def bearer(request: Request, schemes: tuple[str, ...] = ("bearer",)) -> str | None:
    raw = request.headers.get("authorization")
    if not raw:
        return None
    scheme, _, value = raw.strip().partition(" ")
    if scheme.lower() in schemes and value.strip():
        return value.strip()
    return None


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("request body is empty; a JSON object is expected")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, int digit limit, nesting depth
        raise InvalidRequest("request body is not valid JSON") from None
