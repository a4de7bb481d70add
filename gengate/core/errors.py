"""Typed errors raised by the core; each route family maps them to its own envelope in one place.

    GengateError
    ├── AuthError                      missing, unknown, revoked or expired client key      (401)
    ├── InvalidRequest                 the client's body or query is wrong                 (400)
    │   ├── BodyTooLarge                                                                   (413)
    │   └── IdempotencyMismatch        same Idempotency-Key, another body                  (422)
    ├── IdempotencyInProgress          the first request with that key is still running    (409)
    ├── ModelNotAllowed                unknown model, or one the key may not use           (404/403)
    ├── NotFound                       no such task/object for this key                    (404)
    │   └── ReferenceNotFound          a create refers to an object the key does not own   (404/400)
    ├── InsufficientCredits            nothing sent upstream                               (402/429)
    ├── Conflict                       e.g. cancelling a terminal task                     (400/409)
    ├── UpstreamRefused                the provider refused the job definitively           (upstream's 4xx)
    └── UpstreamUnavailable            no channel could take the request                   (503)
"""

from __future__ import annotations


class GengateError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.param = param


class AuthError(GengateError):
    status = 401
    code = "invalid_api_key"


class InvalidRequest(GengateError):
    status = 400
    code = "invalid_request"


class BodyTooLarge(InvalidRequest):
    status = 413
    code = "body_too_large"


class IdempotencyMismatch(InvalidRequest):
    status = 422
    code = "idempotency_key_reused"


class IdempotencyInProgress(GengateError):
    status = 409
    code = "idempotency_in_progress"


class ModelNotAllowed(GengateError):
    status = 404
    code = "model_not_found"


class NotFound(GengateError):
    status = 404
    code = "not_found"


class ReferenceNotFound(NotFound):
    code = "reference_not_found"


class InsufficientCredits(GengateError):
    status = 402
    code = "insufficient_credits"


class Conflict(GengateError):
    status = 409
    code = "conflict"


class UpstreamRefused(GengateError):
    """A definitive refusal by the provider; `upstream_code` is the provider's own reason if known."""

    status = 400
    code = "upstream_refused"

    def __init__(self, message: str, *, upstream_status: int = 400, upstream_code: str | None = None) -> None:
        super().__init__(message, status=upstream_status if 400 <= upstream_status < 500 else 400)
        self.upstream_code = upstream_code


class UpstreamUnavailable(GengateError):
    status = 503
    code = "upstream_unavailable"
