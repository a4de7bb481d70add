"""Typed errors raised by the core; each route family maps them to its own envelope in one place.

    GengateError                       anything unexpected: the family's 500               (500)
    ├── AuthError                      missing, unknown, revoked or expired client key      (401)
    ├── InvalidRequest                 the client's body or query is wrong                 (400)
    │   ├── BodyTooLarge                                                                   (413)
    │   ├── IdempotencyMismatch        same Idempotency-Key, another body                  (422)
    │   ├── ReferenceUnavailable       a referenced result's upstream account is disabled/gone (400)
    │   ├── URLRefused                 (gengate.net) a client URL breaks the SSRF rules    (400)
    │   └── ResponseTooLarge           (gengate.net) a client URL's body is over the cap   (400)
    ├── MethodNotAllowed               the path exists, the method does not                (405)
    ├── IdempotencyInProgress          the first request with that key is still running    (409)
    ├── ModelNotAllowed                unknown model, or one the key may not use           (404/403)
    ├── NotFound                       no such task/object for this key                    (404)
    │   └── ReferenceNotFound          a create refers to an object the key does not own   (404/400)
    ├── InsufficientCredits            nothing sent upstream                               (402/429)
    ├── RateLimited                    the key is over its requests per minute (Retry-After) (429)
    ├── Conflict                       e.g. cancelling a terminal task                     (400/409)
    ├── UpstreamRefused                the provider refused the job definitively           (upstream's 4xx)
    ├── UpstreamUnavailable            no channel could take the request                   (503)
    ├── ClientGone                     the client closed the connection mid-request        (499, unseen)
    └── FetchFailed                    a client-given URL could not be fetched             (502; 400 in
        └── FetchTimeout               ... not completely within the time limit     (504)  provider families)

A family maps errors with an `ErrorTable`: the most specific registered class of the error wins
(the error's `__mro__` is walked, as starlette does for exception handlers), and a status given to
the error itself (`UpstreamRefused(upstream_status=422)`, `GengateError(..., status=...)`) beats the
table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar


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


class ReferenceUnavailable(InvalidRequest):
    """A create refers to a result (a video to extend) whose upstream account, the only one that
    holds it, is disabled or removed: no task can be made on it."""

    code = "reference_unavailable"


class MethodNotAllowed(GengateError):
    status = 405
    code = "method_not_allowed"


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


class RateLimited(GengateError):
    """The client key is over its `rpm`; `retry_after` (whole seconds) goes out as `Retry-After`."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


class ClientGone(GengateError):
    """The client dropped the connection before its request was read: nothing to answer, logged at INFO."""

    status = 499
    code = "client_closed_request"


class FetchFailed(GengateError):
    """A URL the client gave could not be fetched (refused connection, bad reply); see gengate.net."""

    status = 502
    code = "fetch_failed"


class FetchTimeout(FetchFailed):
    status = 504
    code = "fetch_timeout"


Entry = TypeVar("Entry")


class ErrorTable(Generic[Entry]):
    """One family's answer for each error class, looked up by the error's class hierarchy.

    `entries` must register `GengateError` itself (the answer to anything unexpected)."""

    def __init__(self, entries: Mapping[type[GengateError], Entry]) -> None:
        if GengateError not in entries:
            raise ValueError("an error table must register GengateError")
        self.entries = dict(entries)

    def lookup(self, exc: GengateError) -> tuple[type[GengateError], Entry]:
        """The most specific registered class of `exc` and its entry."""
        for cls in type(exc).__mro__:
            if cls in self.entries:
                return cls, self.entries[cls]
        raise TypeError(f"{type(exc).__name__} is not a GengateError")  # unreachable for a GengateError


def explicit_status(exc: GengateError) -> int | None:
    """The status given to this error itself (not its class default), which a family honours."""
    status = vars(exc).get("status")
    return status if isinstance(status, int) else None
