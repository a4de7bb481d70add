"""Luma's error body, built in one place: FastAPI's `{"detail": "..."}` (luma.md §7), with the HTTP
status saying what went wrong (400, 401, 402 credits, 404, 422 validation, 429, 5xx)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from gengate.core import errors as e

# Core error → HTTP status; the most specific registered class wins, and a status given to the
# error itself (a 422 validation error, an upstream's own 4xx) beats the table's.
TABLE: e.ErrorTable[int] = e.ErrorTable({
    e.GengateError: 500,
    e.AuthError: 401,
    e.InvalidRequest: 400,
    e.BodyTooLarge: 413,
    e.IdempotencyMismatch: 422,
    e.MethodNotAllowed: 405,
    e.IdempotencyInProgress: 409,
    e.ModelNotAllowed: 422,  # Luma validates `model` against its enum: FastAPI's 422
    e.NotFound: 404,
    e.ReferenceNotFound: 400,  # a keyframe naming a generation this key does not have
    e.InsufficientCredits: 402,
    e.RateLimited: 429,
    e.Conflict: 409,
    e.UpstreamRefused: 400,
    e.UpstreamUnavailable: 503,
    e.FetchFailed: 400,
    e.ClientGone: 499,
})


def luma_error(exc: e.GengateError) -> JSONResponse:
    matched, status = TABLE.lookup(exc)
    status = e.explicit_status(exc) or status
    if matched is e.GengateError:
        detail = "Internal server error"
    elif exc.code == "path_not_found":
        detail = "Not Found"
    else:
        detail = exc.message
    return JSONResponse({"detail": detail}, status_code=status)
