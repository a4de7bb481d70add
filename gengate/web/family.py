"""A route family: one error envelope for every reply of its routes, including unmatched paths.

Each provider's routes are built through its `Family`: handlers raise typed core errors and the
family turns them into its envelope in one place; an unexpected exception becomes the family's
500 without a traceback (logged server-side). `Family.route` declares a route FastAPI documents
(request/reply models, the envelope as every 4XX/5XX); `Family.fallback` ends the family's list, and
`gengate.web.routing` orders every family's routes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

from gengate.core.errors import GengateError, MethodNotAllowed, NotFound, RateLimited
from gengate.web.documented import JSON, DocumentedRoute
from gengate.web.routing import FallbackRoute

log = logging.getLogger("gengate.web")

Handler = Callable[[Request], Awaitable[Response]]

__all__ = ["Family", "Handler", "MethodNotAllowed"]  # MethodNotAllowed lives in gengate.core.errors


@dataclass
class Family:
    name: str
    prefix: str  # unmatched paths below it answer in this family's envelope
    render_error: Callable[[GengateError], Response]
    error_model: type[BaseModel] | None = None  # documents the envelope (every 4XX/5XX reply)
    tag: str | None = None  # the OpenAPI tag of its routes; the family's name by default
    auth: bool = True  # its routes take a client key

    def wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except GengateError as exc:
                return self.error_response(exc)
            except Exception:
                log.exception("%s: unexpected error on %s %s", self.name, request.method, request.url.path)
                return self.render_error(GengateError("internal error"))

        endpoint.__name__ = getattr(handler, "__name__", "endpoint")
        return endpoint

    def error_response(self, exc: GengateError) -> Response:
        """The family's envelope for `exc`, with `Retry-After` on a rate limit."""
        response = self.render_error(exc)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    def route(self, path: str, handler: Handler, methods: Sequence[str], *, name: str | None = None,
              summary: str | None = None, body: type[BaseModel] | None = None, body_media_type: str = JSON,
              query: type[BaseModel] | None = None, reply: type[BaseModel] | None = None,
              reply_media_type: str = JSON) -> DocumentedRoute:
        """One method at `prefix + path`. `body`/`query` document the request (the handler still reads
        and validates it), `reply` the 200 body; the operation id is `<family>_<name or handler name>`."""
        if len(methods) != 1:
            raise ValueError(f"{self.name} {path}: declare one route per method (one operation id each)")
        operation = f"{self.name}_{name or getattr(handler, '__name__', 'endpoint')}"
        return DocumentedRoute(self.prefix + path, self.wrap(handler), methods[0], operation_id=operation,
                               tags=[self.tag or self.name], summary=summary, body=body,
                               body_media_type=body_media_type, query=query, reply=reply,
                               reply_media_type=reply_media_type, error_model=self.error_model,
                               auth=self.auth, family=self.name, family_prefix=self.prefix)

    def fallback(self, routes: Sequence[BaseRoute]) -> FallbackRoute:
        """The last route of the family: 405 where a route has the path, else 404, in this envelope."""

        async def unmatched(request: Request) -> Response:
            scope = dict(request.scope)
            allowed = [m for r in routes if r.matches(scope)[0] is Match.PARTIAL
                       for m in getattr(r, "methods", None) or ()]
            if allowed:
                response = self.render_error(MethodNotAllowed(f"Method {request.method} not allowed."))
                response.headers["Allow"] = ", ".join(dict.fromkeys(allowed))
                return response
            return self.render_error(NotFound(f"Unknown path {request.url.path}", code="path_not_found"))

        return FallbackRoute(self.prefix, unmatched, name=f"{self.name}_fallback")
