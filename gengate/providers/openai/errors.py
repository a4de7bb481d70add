"""OpenAI's error envelope, built in one place: `{"error": {"message", "type", "param", "code"}}`.

Used by every `/v1` route that answers in OpenAI's shape (models, chat, files, `/v1/videos`, and the
unified `/v1/tasks` API)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from gengate.core import errors as e


class UpstreamReply(e.GengateError):
    """An upstream's own 4xx, relayed to the client as it is (status, body, content type): the client's
    request was wrong for the upstream, or no other channel was left after an upstream refusal."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(f"upstream answered {status}", status=status)
        self.body, self.content_type = body, content_type

# Core error → (HTTP status, OpenAI error type, code; None: the error's own code). The most specific
# registered class wins.
TABLE: e.ErrorTable[tuple[int, str, str | None]] = e.ErrorTable({
    e.GengateError: (500, "server_error", "internal_error"),
    e.AuthError: (401, "invalid_request_error", "invalid_api_key"),
    e.InvalidRequest: (400, "invalid_request_error", None),
    e.BodyTooLarge: (413, "invalid_request_error", "request_too_large"),
    e.IdempotencyMismatch: (422, "invalid_request_error", "idempotency_key_reused"),
    e.MethodNotAllowed: (405, "invalid_request_error", "method_not_allowed"),
    e.IdempotencyInProgress: (409, "invalid_request_error", "idempotency_in_progress"),
    e.ModelNotAllowed: (404, "invalid_request_error", "model_not_found"),
    e.NotFound: (404, "invalid_request_error", "not_found"),
    e.InsufficientCredits: (429, "insufficient_quota", "insufficient_quota"),
    e.RateLimited: (429, "requests", "rate_limit_exceeded"),
    e.Conflict: (409, "invalid_request_error", "conflict"),
    e.UpstreamRefused: (400, "invalid_request_error", "upstream_refused"),
    e.UpstreamUnavailable: (503, "server_error", "upstream_unavailable"),
    # OpenAI answers an image URL it cannot download with a 400: the URL is the client's input.
    e.FetchFailed: (400, "invalid_request_error", None),
    e.ClientGone: (499, "invalid_request_error", "client_closed_request"),
})


def openai_error(exc: e.GengateError) -> Response:
    if isinstance(exc, UpstreamReply):
        return Response(exc.body, status_code=exc.status, media_type=exc.content_type)
    matched, (status, kind, code) = TABLE.lookup(exc)
    status = e.explicit_status(exc) or status
    code = code or exc.code
    if exc.code == "path_not_found":
        code = "unknown_url"
    if matched is e.GengateError:
        message = "The server had an error while processing your request."
    else:
        message = exc.message
    body = {"error": {"message": message, "type": kind, "param": exc.param, "code": code}}
    return JSONResponse(body, status_code=status)
