"""Suno's (Suno-API relay) error envelope, built in one place: `{"code": "<string>", "message", "data": null}`
(suno.md §1.1; out of credit is 403 `quota_not_enough`, interface.md "Keys and credits")."""

from __future__ import annotations

from starlette.responses import JSONResponse

from gengate.core import errors as e

# Core error → (HTTP status, code string); the most specific registered class wins.
TABLE: e.ErrorTable[tuple[int, str]] = e.ErrorTable({
    e.GengateError: (500, "internal_error"),
    e.AuthError: (401, "invalid_api_key"),
    e.InvalidRequest: (400, "invalid_request"),
    e.BodyTooLarge: (413, "invalid_request"),
    e.IdempotencyMismatch: (422, "invalid_request"),
    e.MethodNotAllowed: (405, "invalid_request"),
    e.IdempotencyInProgress: (409, "conflict"),
    e.ModelNotAllowed: (400, "model_not_found"),
    e.NotFound: (404, "task_not_exist"),
    # A create that refers to a clip or task this key does not own: the client's input is wrong.
    e.ReferenceNotFound: (400, "invalid_request"),
    e.InsufficientCredits: (403, "quota_not_enough"),
    e.RateLimited: (429, "too_many_requests"),
    e.Conflict: (400, "invalid_request"),
    e.UpstreamRefused: (400, "fail_to_submit"),
    e.UpstreamUnavailable: (503, "upstream_unavailable"),
    e.FetchFailed: (400, "invalid_request"),
    e.ClientGone: (499, "client_closed_request"),
})


def suno_error(exc: e.GengateError) -> JSONResponse:
    matched, (status, code) = TABLE.lookup(exc)
    status = e.explicit_status(exc) or status
    if isinstance(exc, e.UpstreamRefused) and exc.upstream_code:
        code = exc.upstream_code
    elif exc.code == "path_not_found":
        code = "not_found"
    message = "internal error" if matched is e.GengateError else exc.message
    return JSONResponse({"code": code, "message": message, "data": None}, status_code=status)
