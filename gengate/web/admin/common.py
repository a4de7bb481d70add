"""What every admin route shares: the admin-token guard, the one error envelope
(`{"error": {"code", "message"}}`), JSON bodies, paging and time parameters."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gengate.core.errors import GengateError
from gengate.web.sandbox import is_admin

log = logging.getLogger("gengate.admin")
PREFIX = "/admin/api"
MAX_BODY = 1 << 20
Handler = Callable[[Request], Awaitable[Response]]


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_reply(status: int, code: str, message: str) -> JSONResponse:
    """The envelope of every admin error (built here only)."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def guarded(handler: Handler) -> Handler:
    """Refuses any call without `Authorization: Bearer <admin token>` (a client key is never one)."""

    async def endpoint(request: Request) -> Response:
        token = getattr(request.app.state, "admin_token", None)
        if not token or not is_admin(request.headers, token):
            return error_reply(401, "unauthorized", "this API needs Authorization: Bearer <admin token>")
        try:
            return await handler(request)
        except AdminError as exc:
            return error_reply(exc.status, exc.code, exc.message)
        except GengateError as exc:
            status = exc.status if 400 <= exc.status < 500 else 500
            return error_reply(status, exc.code, exc.message)
        except Exception:
            log.exception("admin API: unexpected error on %s %s", request.method, request.url.path)
            return error_reply(500, "internal_error", "internal error")

    return endpoint


def admin_route(path: str, handler: Handler, methods: Sequence[str]) -> Route:
    return Route(PREFIX + path, guarded(handler), methods=list(methods), include_in_schema=False)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise AdminError(413, "body_too_large", "the body is over 1 MiB")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise AdminError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise AdminError(400, "invalid_request", "the body must be a JSON object")
    return body


def not_found(what: str) -> AdminError:
    return AdminError(404, "not_found", f"no such {what}")


def invalid(message: str) -> AdminError:
    return AdminError(400, "invalid_request", message)


def int_param(raw: Any, name: str, *, default: int | None = None, low: int = 0, high: int = 2**62) -> int | None:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isascii()
                                                              and raw.lstrip("-").isdigit())):
        raise invalid(f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise invalid(f"{name} must be from {low} to {high}")
    return value


def timestamp(raw: Any, name: str) -> float | None:
    """Unix seconds, or ISO-8601 (accepted on input)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise invalid(f"{name} must be Unix seconds or ISO-8601") from None
        if parsed.tzinfo is None:
            from datetime import UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    raise invalid(f"{name} must be Unix seconds or ISO-8601")


def models_param(raw: Any) -> str | None:
    """`models`: a list of names/patterns or null -> the stored comma-separated form."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(m, str) and m.strip() and "," not in m for m in raw):
        raise invalid("models must be a list of model names or null")
    return ",".join(m.strip() for m in raw) or None


def models_out(stored: str | None) -> list[str] | None:
    return [m.strip() for m in stored.split(",") if m.strip()] if stored else None


def page(items: list[dict[str, Any]], request: Request, default: int = 50) -> JSONResponse:
    """Newest first, `limit` and `after` (the id of the previous page's last item)."""
    limit = int_param(request.query_params.get("limit"), "limit", default=default, low=1, high=500) or default
    after = request.query_params.get("after")
    if after:
        ids = [str(i["id"]) for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return JSONResponse({"data": items[:limit], "has_more": len(items) > limit})
