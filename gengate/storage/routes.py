"""``GET``/``HEAD /files/{key}``: serves stored media to anyone holding a valid signed URL.

Bodies are streamed from storage in chunks (bounded memory, whatever the file size), with single
``Range`` requests answered 206; a multi-range request gets the whole body, which RFC 9110 allows.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from gengate.core.errors import GengateError
from gengate.storage.base import InvalidKey, ObjectNotFound, Storage, StoredObject
from gengate.storage.signing import UrlSigner
from gengate.web.family import Family

# Browsers may cache a download at most this long, and never past the URL's own expiry.
MAX_CACHE_SECONDS = 24 * 3600

# One range-spec, lenient about spaces. The digit caps keep int() cheap and away from its length limit.
_SINGLE_RANGE = re.compile(r"\s*bytes\s*=\s*(\d{0,19})\s*-\s*(\d{0,19})\s*", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The half-open byte span ``[start, end)`` one ``Range`` header asks for, or None for the whole body.

    Syntax we do not serve (multi-range, other units, malformed) means the whole body, as RFC 9110
    allows a server to ignore Range. Raises :class:`RangeNotSatisfiable` when no byte can be sent.
    """
    match = _SINGLE_RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-n: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range-spec is ignored, not refused
    if start >= size:
        raise RangeNotSatisfiable
    end = min(int(last) + 1, size) if last else size
    return start, end


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class FileErrorDetail(BaseModel):
    message: str
    type: str
    code: str


class FileError(BaseModel):
    """`{"error": {"message", "type", "code"}}`."""

    error: FileErrorDetail


class SignedUrlQuery(BaseModel):
    exp: int
    sig: str


def _render(exc: GengateError) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message if exc.status < 500 else "internal error")


FILES = Family(name="files", prefix="/files", render_error=_render, error_model=FileError, auth=False)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        # Close the file now rather than whenever the garbage collector gets to it (client hung up).
        if isinstance(rest, AsyncGenerator):
            await rest.aclose()


def file_routes(storage_getter: Callable[[], Storage], signer_getter: Callable[[], UrlSigner]) -> list[BaseRoute]:
    """The download route; the getters are called per request so the app can bind both at startup."""

    async def serve_file(request: Request) -> Response:
        key: str = request.path_params["key"]
        exp = request.query_params.get("exp", "")
        sig = request.query_params.get("sig", "")
        signer = signer_getter()
        if not signer.verify(key, exp, sig):
            return _error(403, "invalid_signature", "The file URL signature is invalid or has expired.")

        storage = storage_getter()
        try:
            stored = await storage.stat(key)
        except InvalidKey:
            stored = None
        if stored is None:
            return _error(404, "file_not_found", "No such file.")

        headers = _headers(stored, signer.seconds_left(int(exp)))
        if _matches(request.headers.get("if-none-match"), headers["ETag"]):
            return Response(status_code=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})

        status, start, end = 200, 0, stored.size
        range_header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        # If-Range: the client holds an older copy, so partial bytes of this one would corrupt it.
        if range_header is not None and (if_range is None or if_range.strip() == headers["ETag"]):
            try:
                span = parse_range(range_header, stored.size)
            except RangeNotSatisfiable:
                return _error(
                    416,
                    "range_not_satisfiable",
                    f"The requested range is outside the file's {stored.size} bytes.",
                    {"Content-Range": f"bytes */{stored.size}"},
                )
            if span is not None:
                status, (start, end) = 206, span
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
        headers["Content-Length"] = str(end - start)

        if request.method == "HEAD" or start == end:
            return Response(status_code=status, headers=headers)
        chunks = storage.open_range(key, start, end)
        # Read the first chunk before committing to a status: the object may have been deleted since stat.
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except ObjectNotFound:
            return _error(404, "file_not_found", "No such file.")
        return StreamingResponse(_prepend(first, chunks), status_code=status, headers=headers)

    # Any other method reaches the family's fallback: this module's JSON 405 with `Allow: GET, HEAD`.
    routes: list[BaseRoute] = [
        FILES.route("/{key:path}", serve_file, ["GET"], name="download", summary="Download a stored file",
                    query=SignedUrlQuery, reply_media_type="application/octet-stream"),
        FILES.route("/{key:path}", serve_file, ["HEAD"], name="head", summary="A stored file's headers",
                    query=SignedUrlQuery, reply_media_type="application/octet-stream"),
    ]
    return [*routes, FILES.fallback(routes)]


def _headers(stored: StoredObject, seconds_left: int) -> dict[str, str]:
    return {
        "Content-Type": stored.content_type,
        "Accept-Ranges": "bytes",
        "ETag": f'"{stored.sha256}"',
        "Cache-Control": f"private, max-age={min(seconds_left, MAX_CACHE_SECONDS)}",
        # Stored bytes come from upstreams; never let a browser run them as a page on gengate's origin.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
