"""Reading what a client sent: its key, its JSON body (bounded), its Idempotency-Key.

A body is accepted only as RFC 8259 JSON in UTF-8 that can be stored and sent upstream as it is:
no NaN/Infinity, no number that overflows to infinity, no lone surrogate escape (`"\\ud800"`), no
nesting deeper than `MAX_JSON_DEPTH`. Everything else is the family's 400, before anything is saved.
"""

from __future__ import annotations

import json
import logging
import math
import re
from itertools import accumulate
from typing import Any

from starlette.requests import ClientDisconnect, Request

from gengate.core.errors import BodyTooLarge, ClientGone, InvalidRequest

log = logging.getLogger("gengate.web")

MAX_JSON_DEPTH = 512

# A surrogate escape anywhere: the cheap test that lets almost every body skip the exact scan.
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]")
# Every escape in order, so that `\\ud800` (an escaped backslash, then text) is not mistaken for one;
# a high surrogate followed by a low one is a valid pair, any other surrogate escape is lone.
_ESCAPE = re.compile(r"\\(?:(?P<pair>u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                     r"|(?P<lone>u[dD][89a-fA-F][0-9a-fA-F]{2})|.)", re.DOTALL)
# JSON strings (brackets inside them do not nest), and the bracket characters kept after removing them.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python accepts them, and no reply could echo them back.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 would be stored as Infinity, which no JSON reader takes back
        raise ValueError("number out of range")
    return value


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `raw` nests arrays/objects deeper than `limit`, found without recursion.

    Counting every opening bracket is a bound that answers almost every body at C speed; only a body
    with more than `limit` of them has its strings removed and its running depth computed."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def has_lone_surrogate(text: str) -> bool:
    """Whether the JSON text holds a `\\uD800`-`\\uDFFF` escape that is not half of a valid pair."""
    if not _SURROGATE_HINT.search(text):
        return False
    return any(m.group("lone") for m in _ESCAPE.finditer(text))


def parse_json(raw: bytes) -> Any:
    """The JSON value of a request body, or InvalidRequest saying what is wrong with it."""
    if not raw.strip():
        raise InvalidRequest("request body is empty; a JSON object is expected")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid UTF-8") from None
    if has_lone_surrogate(text):
        raise InvalidRequest("request body holds a lone surrogate escape (e.g. \\ud800); "
                             "strings must be valid Unicode")
    if json_depth_exceeds(raw):
        raise InvalidRequest(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # bad JSON, int digit limit, a number out of range
        raise InvalidRequest("request body is not valid JSON") from None


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
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"request body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # an ordinary event on the internet, not a server error
        log.info("client went away while sending the body of %s %s", request.method, request.url.path)
        raise ClientGone("the client closed the connection") from None
    return parse_json(b"".join(chunks))
