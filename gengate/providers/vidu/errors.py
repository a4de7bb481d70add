"""Vidu's error envelope, built in one place: `{code, reason, message, metadata.trace_id}` (vidu.md §3.7;
the contract fixes it for the web format too). `code` repeats the HTTP status."""

from __future__ import annotations

import secrets

from starlette.responses import JSONResponse

from gengate.core import errors as e

# Core error → (HTTP status, Vidu reason). A core error whose `code` is already a Vidu reason keeps it.
_REASONS: list[tuple[type[e.GengateError], int, str]] = [
    (e.AuthError, 401, "Unauthorized"),
    (e.BodyTooLarge, 413, "BadRequest"),
    (e.IdempotencyMismatch, 422, "BadRequest"),
    (e.IdempotencyInProgress, 409, "Conflict"),
    (e.ReferenceNotFound, 404, "CreationNotFound"),
    (e.NotFound, 404, "TaskNotFound"),
    (e.InsufficientCredits, 400, "CreditInsufficient"),
    (e.ModelNotAllowed, 400, "ModelUnavailable"),
    (e.Conflict, 400, "BadRequest"),
    (e.UpstreamUnavailable, 503, "InternalServiceFailure"),
    (e.InvalidRequest, 400, "BadRequest"),
]
_VIDU_REASONS = {"BadRequest", "FieldLacking", "FieldUnwanted", "FieldItemCountOutOfRange", "FieldInvalid",
                 "CreditInsufficient", "CreationPolicyViolation", "ModelUnavailable", "TaskNotFound",
                 "CreationNotFound", "NotFound", "TaskPromptPolicyViolation", "ImageDownloadFailure",
                 "ImageFormatInvalid", "AuditSubmitIllegal"}


def vidu_error(exc: e.GengateError) -> JSONResponse:
    status, reason = 500, "InternalServiceFailure"
    for cls, cls_status, cls_reason in _REASONS:
        if isinstance(exc, cls):
            status, reason = cls_status, cls_reason
            break
    if isinstance(exc, e.UpstreamRefused):
        status = exc.status
        reason = exc.upstream_code if exc.upstream_code in _VIDU_REASONS else "BadRequest"
    elif exc.code in _VIDU_REASONS:
        reason = exc.code
    if exc.code == "path_not_found":
        reason = "NotFound"
    elif exc.code == "method_not_allowed":
        status, reason = 405, "BadRequest"
    message = exc.message if status < 500 else "internal error"
    body = {"code": status, "reason": reason, "message": message,
            "metadata": {"trace_id": secrets.token_hex(8)}}
    return JSONResponse(body, status_code=status)
