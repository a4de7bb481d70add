"""Runway's error body, built in one place: `{"error": "...", "issues": [...]?, "docUrl": "..."}`
(runway.md §5). Body validation (gengate's own, or the provider's refusal of a create) is a 400 with
`issues`; errors that must not be repeated carry `x-should-retry: false`, so that the `runwayml` SDK
does not re-send a create that gengate already answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

from gengate.core import errors as e

DOC_URL = "https://docs.dev.runwayml.com/api"
VALIDATION = "Validation of body failed"


class ValidationFailed(e.InvalidRequest):
    """A create body Runway would refuse, with Runway's `issues`."""

    code = "validation_failed"

    def __init__(self, issues: Sequence[dict[str, Any]]) -> None:
        first = issues[0] if issues else {}
        path = ".".join(str(p) for p in first.get("path", []))
        super().__init__(f"{VALIDATION}: {path + ': ' if path else ''}{first.get('message', '')}".rstrip(": "),
                         param=path or None)
        self.issues = list(issues)


# Core error → HTTP status; the most specific registered class wins.
TABLE: e.ErrorTable[int] = e.ErrorTable({
    e.GengateError: 500,
    e.AuthError: 401,
    e.InvalidRequest: 400,
    e.BodyTooLarge: 413,
    e.IdempotencyMismatch: 422,
    e.MethodNotAllowed: 405,
    e.IdempotencyInProgress: 409,
    e.ModelNotAllowed: 400,
    e.NotFound: 404,
    e.InsufficientCredits: 400,
    e.RateLimited: 429,
    e.Conflict: 400,
    e.UpstreamRefused: 400,
    e.UpstreamUnavailable: 503,
    e.FetchFailed: 400,
    e.ClientGone: 499,
})
# Statuses the SDK retries by itself (408, 409, 429, >= 500): say "do not" where a repeat cannot help.
_RETRYABLE = frozenset({408, 409, 429, 502, 503, 504})


def runway_error(exc: e.GengateError) -> JSONResponse:
    matched, status = TABLE.lookup(exc)
    status = e.explicit_status(exc) or status
    body: dict[str, Any]
    if isinstance(exc, ValidationFailed):
        body = {"error": VALIDATION, "issues": exc.issues, "docUrl": DOC_URL}
    elif isinstance(exc, e.ModelNotAllowed):
        body = {"error": VALIDATION, "docUrl": DOC_URL,
                "issues": [{"code": "custom", "path": ["model"], "message": exc.message}]}
    elif isinstance(exc, e.UpstreamRefused) and exc.upstream_code == "validation":
        body = {"error": VALIDATION, "docUrl": DOC_URL,
                "issues": [{"code": "custom", "path": [], "message": exc.message}]}
    elif isinstance(exc, e.InsufficientCredits):
        body = {"error": "You do not have enough credits to run this task."}
    elif isinstance(exc, e.InvalidRequest) and status == 400:
        path = [p for p in (exc.param or "").split(".") if p]
        body = {"error": VALIDATION, "docUrl": DOC_URL,
                "issues": [{"code": "custom", "path": path, "message": exc.message}]}
    else:
        body = {"error": "internal error" if matched is e.GengateError else exc.message}
    headers = {} if status in _RETRYABLE else {"x-should-retry": "false"}
    return JSONResponse(body, status_code=status, headers=headers)
