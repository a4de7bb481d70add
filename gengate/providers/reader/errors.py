"""The two error envelopes of URL analysis, each built in one place.

Jina Reader: `{"code": <HTTP status>, "status": <code * 100 + n>, "name", "message", "readableMessage"}`
(url-analysis.md §1.4). Firecrawl v1: `{"success": false, "error": "...", "details": [...]}` with
`details` (zod-style schema problems) on validation errors only (§2.2).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from gengate.core import errors as e
from gengate.net.errors import ResponseTooLarge, URLRefused

# Core error -> (HTTP status, Jina status, Jina error name).
JINA: e.ErrorTable[tuple[int, int, str]] = e.ErrorTable({
    e.GengateError: (500, 50000, "InternalServerError"),
    e.AuthError: (401, 40103, "AuthenticationFailedError"),
    e.InvalidRequest: (422, 42206, "ParamValidationError"),
    URLRefused: (400, 40003, "SecurityCompromiseError"),
    ResponseTooLarge: (422, 42206, "AssertionFailureError"),
    e.BodyTooLarge: (413, 41300, "PayloadTooLargeError"),
    e.MethodNotAllowed: (405, 40500, "MethodNotAllowedError"),
    e.NotFound: (404, 40400, "NotFoundError"),
    e.InsufficientCredits: (402, 40203, "InsufficientBalanceError"),
    e.RateLimited: (429, 42903, "RateLimitTriggeredError"),
    e.FetchFailed: (422, 42206, "AssertionFailureError"),
    e.FetchTimeout: (422, 42206, "TimeoutError"),
    e.ClientGone: (499, 49900, "ClientClosedRequest"),
})


def jina_error(exc: e.GengateError) -> JSONResponse:
    matched, (status, code, name) = JINA.lookup(exc)
    message = "Internal server error" if matched is e.GengateError else exc.message
    body = {"data": None, "code": status, "name": name, "status": code, "message": message,
            "readableMessage": f"{name}: {message}"}
    return JSONResponse(body, status_code=status)


class ScrapeInvalid(e.InvalidRequest):
    """The scrape request breaks Firecrawl's schema; `details` lists each problem, zod-style."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(d.get("message")) for d in details))
        self.details = details


# Core error -> HTTP status. A target that cannot be reached is a 502, one that takes too long 408.
FIRECRAWL: e.ErrorTable[int] = e.ErrorTable({
    e.GengateError: 500,
    e.AuthError: 401,
    e.InvalidRequest: 400,
    e.BodyTooLarge: 413,
    e.MethodNotAllowed: 405,
    e.NotFound: 404,
    e.InsufficientCredits: 402,
    e.RateLimited: 429,
    e.FetchFailed: 502,
    e.FetchTimeout: 408,
    e.ClientGone: 499,
})


def firecrawl_error(exc: e.GengateError) -> JSONResponse:
    matched, status = FIRECRAWL.lookup(exc)
    if isinstance(exc, ScrapeInvalid):
        return JSONResponse({"success": False, "error": "Bad Request", "details": exc.details}, status_code=400)
    if matched is e.GengateError:
        message = "An unexpected error occurred. Please contact the operator."
    elif isinstance(exc, e.AuthError):
        message = f"Unauthorized: {exc.message}"
    elif isinstance(exc, e.InsufficientCredits):
        message = "Insufficient credits to perform this request."
    else:
        message = exc.message
    return JSONResponse({"success": False, "error": message}, status_code=status)
