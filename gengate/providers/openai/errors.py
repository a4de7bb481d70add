"""OpenAI's error envelope, built in one place: `{"error": {"message", "type", "param", "code"}}`.

Used by every `/v1` route that answers in OpenAI's shape (models, chat, files, `/v1/videos`, and the
unified `/v1/tasks` API)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from gengate.core import errors as e

# Core error → (HTTP status, OpenAI error type, code).
_MAP: list[tuple[type[e.GengateError], int, str, str | None]] = [
    (e.AuthError, 401, "invalid_request_error", "invalid_api_key"),
    (e.BodyTooLarge, 413, "invalid_request_error", "request_too_large"),
    (e.IdempotencyMismatch, 422, "invalid_request_error", "idempotency_key_reused"),
    (e.IdempotencyInProgress, 409, "invalid_request_error", "idempotency_in_progress"),
    (e.ModelNotAllowed, 404, "invalid_request_error", "model_not_found"),
    (e.NotFound, 404, "invalid_request_error", "not_found"),
    (e.InsufficientCredits, 429, "insufficient_quota", "insufficient_quota"),
    (e.Conflict, 409, "invalid_request_error", "conflict"),
    (e.UpstreamRefused, 400, "invalid_request_error", "upstream_refused"),
    (e.UpstreamUnavailable, 503, "server_error", "upstream_unavailable"),
    (e.InvalidRequest, 400, "invalid_request_error", None),
]


def openai_error(exc: e.GengateError) -> JSONResponse:
    status, kind, code = 500, "server_error", "internal_error"
    for cls, cls_status, cls_kind, cls_code in _MAP:
        if isinstance(exc, cls):
            status, kind, code = cls_status, cls_kind, cls_code or exc.code
            break
    if exc.code == "path_not_found":
        code = "unknown_url"
    elif exc.code == "method_not_allowed":
        status, code = 405, "method_not_allowed"
    message = exc.message if status < 500 else "The server had an error while processing your request."
    body = {"error": {"message": message, "type": kind, "param": exc.param, "code": code}}
    return JSONResponse(body, status_code=status)
