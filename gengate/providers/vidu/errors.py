"""Vidu's error envelope, built in one place: `{code, reason, message, metadata.trace_id}` (vidu.md §3.7;
the contract fixes it for the web format too). `code` repeats the HTTP status."""

from __future__ import annotations

import secrets

from starlette.responses import JSONResponse

from gengate.core import errors as e

# Core error → (HTTP status, Vidu reason); the most specific registered class wins. A core error
# whose `code` is already a Vidu reason keeps it.
TABLE: e.ErrorTable[tuple[int, str]] = e.ErrorTable({
    e.GengateError: (500, "InternalServiceFailure"),
    e.AuthError: (401, "Unauthorized"),
    e.InvalidRequest: (400, "BadRequest"),
    e.BodyTooLarge: (413, "BadRequest"),
    e.IdempotencyMismatch: (422, "BadRequest"),
    e.MethodNotAllowed: (405, "BadRequest"),
    e.IdempotencyInProgress: (409, "Conflict"),
    e.ModelNotAllowed: (400, "ModelUnavailable"),
    e.NotFound: (404, "TaskNotFound"),
    e.ReferenceNotFound: (404, "CreationNotFound"),
    e.InsufficientCredits: (400, "CreditInsufficient"),
    e.RateLimited: (429, "TooManyRequests"),
    e.Conflict: (400, "BadRequest"),
    e.UpstreamRefused: (400, "BadRequest"),
    e.UpstreamUnavailable: (503, "InternalServiceFailure"),
    # A URL from the request that cannot be fetched is the client's input problem, as Vidu says it.
    e.FetchFailed: (400, "ImageDownloadFailure"),
    e.ClientGone: (499, "Canceled"),
})
_VIDU_REASONS = {"BadRequest", "FieldLacking", "FieldUnwanted", "FieldItemCountOutOfRange", "FieldInvalid",
                 "CreditInsufficient", "CreationPolicyViolation", "ModelUnavailable", "TaskNotFound",
                 "CreationNotFound", "NotFound", "TaskPromptPolicyViolation", "ImageDownloadFailure",
                 "ImageFormatInvalid", "AuditSubmitIllegal"}


def vidu_error(exc: e.GengateError) -> JSONResponse:
    matched, (status, reason) = TABLE.lookup(exc)
    status = e.explicit_status(exc) or status
    if isinstance(exc, e.UpstreamRefused):
        reason = exc.upstream_code if exc.upstream_code in _VIDU_REASONS else reason
    elif exc.code in _VIDU_REASONS:
        reason = exc.code
    elif exc.code == "path_not_found":
        reason = "NotFound"
    message = "internal error" if matched is e.GengateError else exc.message
    body = {"code": status, "reason": reason, "message": message,
            "metadata": {"trace_id": secrets.token_hex(8)}}
    return JSONResponse(body, status_code=status)
