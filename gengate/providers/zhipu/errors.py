"""GLM's error envelope, built in one place: `{"error": {"code": "1211", "message": "..."}}` (zhipu.md §2).

`code` is a string of digits; the HTTP statuses pair with the codes as zhipu.md's table says."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from gengate.core import errors as e
from gengate.providers.openai.errors import UpstreamReply

# Core error -> (HTTP status, GLM code). The most specific registered class wins.
TABLE: e.ErrorTable[tuple[int, str]] = e.ErrorTable({
    e.GengateError: (500, "500"),
    e.AuthError: (401, "1000"),
    e.InvalidRequest: (400, "1210"),
    e.BodyTooLarge: (400, "1261"),
    e.IdempotencyMismatch: (400, "1210"),
    e.MethodNotAllowed: (400, "1212"),
    e.IdempotencyInProgress: (429, "1302"),
    e.ModelNotAllowed: (400, "1211"),
    e.NotFound: (404, "1222"),
    e.InsufficientCredits: (429, "1113"),
    e.RateLimited: (429, "1303"),
    e.Conflict: (400, "1210"),
    e.UpstreamRefused: (400, "1301"),
    e.UpstreamUnavailable: (503, "1234"),
    e.FetchFailed: (400, "1214"),
    e.ClientGone: (499, "1234"),
})

# GLM codes a handler may give an InvalidRequest (`code=`): the envelope keeps them.
GLM_CODES = frozenset({"1210", "1211", "1212", "1213", "1214", "1220", "1221", "1222", "1261", "1301"})


class GLMErrorBody(BaseModel):
    code: str
    message: str


class GLMError(BaseModel):
    error: GLMErrorBody


def glm_error(exc: e.GengateError) -> Response:
    if isinstance(exc, UpstreamReply):  # the GLM upstream's own 4xx, as it sent it
        return Response(exc.body, status_code=exc.status, media_type=exc.content_type)
    matched, (status, code) = TABLE.lookup(exc)
    if exc.code in GLM_CODES:
        code = exc.code
    if exc.code == "path_not_found":
        status, code = 404, "1222"
    explicit = e.explicit_status(exc)
    if explicit and not isinstance(exc, e.InvalidRequest):
        status = explicit
    message = "Internal error, please retry later." if matched is e.GengateError else exc.message
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def bad(message: str, code: str = "1214", param: str | None = None) -> e.InvalidRequest:
    """A GLM parameter error: 1213 a missing field, 1214 an illegal value, 1210 otherwise."""
    return e.InvalidRequest(message, code=code, param=param)
