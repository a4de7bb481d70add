"""Kling's error envelope, built in one place: `{code, message, request_id}` with the HTTP status of
Kling's code table (kling.md §6). A core error whose `code` is already a Kling code keeps it."""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse

from gengate.core import errors as e

# Core error -> (HTTP status, Kling code); the most specific registered class wins.
TABLE: e.ErrorTable[tuple[int, int]] = e.ErrorTable({
    e.GengateError: (500, 5000),
    e.AuthError: (401, 1002),
    e.InvalidRequest: (400, 1200),
    e.BodyTooLarge: (413, 1200),
    e.IdempotencyMismatch: (422, 1200),
    e.MethodNotAllowed: (405, 1202),
    e.IdempotencyInProgress: (409, 1200),
    e.ModelNotAllowed: (404, 1203),
    e.NotFound: (404, 1203),
    e.ReferenceNotFound: (404, 1203),
    e.ReferenceUnavailable: (400, 1201),
    e.InsufficientCredits: (429, 1102),
    e.RateLimited: (429, 1302),
    e.Conflict: (400, 1201),
    e.UpstreamRefused: (400, 1200),
    e.UpstreamUnavailable: (503, 5001),
    e.FetchFailed: (400, 1201),
    e.FetchTimeout: (400, 1201),
    e.ClientGone: (499, 5000),
})

# Kling's codes and the HTTP status each is sent with.
STATUS_OF: dict[int, int] = {
    1000: 401, 1001: 401, 1002: 401, 1003: 401, 1004: 401,
    1100: 429, 1101: 429, 1102: 429, 1103: 403,
    1200: 400, 1201: 400, 1202: 404, 1203: 404,
    1300: 400, 1301: 400,
    1302: 429, 1303: 429, 1304: 429,
    5000: 500, 5001: 503, 5002: 504,
}


def kling_code(raw: object) -> int | None:
    """A Kling code given as text or number, if it is one of the table's."""
    text = str(raw) if raw is not None else ""
    return int(text) if text.isdigit() and int(text) in STATUS_OF else None


def kling_error(exc: e.GengateError) -> JSONResponse:
    matched, (status, code) = TABLE.lookup(exc)
    explicit = e.explicit_status(exc)
    own = kling_code(exc.upstream_code if isinstance(exc, e.UpstreamRefused) else exc.code)
    if own is not None:
        code = own
        status = STATUS_OF[own] if not isinstance(exc, e.UpstreamRefused) else (explicit or STATUS_OF[own])
    elif exc.code == "path_not_found":
        code = 1202
    if own is None and explicit is not None:
        status = explicit
    message = "internal error" if matched is e.GengateError else exc.message
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    headers = {"Retry-After": "1"} if status == 429 and code in (1302, 1303) else None
    return JSONResponse(body, status_code=status, headers=headers)
