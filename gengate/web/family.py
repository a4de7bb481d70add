"""A route family: one error envelope for every reply of its routes, including unmatched paths.

Each provider's routes are built through its `Family`: handlers raise typed core errors and the
family turns them into its envelope in one place; an unexpected exception becomes the family's
500 without a traceback (logged server-side).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from gengate.core.errors import GengateError, MethodNotAllowed, NotFound

log = logging.getLogger("gengate.web")

Handler = Callable[[Request], Awaitable[Response]]

__all__ = ["Family", "Handler", "MethodNotAllowed"]  # MethodNotAllowed lives in gengate.core.errors


@dataclass
class Family:
    name: str
    prefix: str  # unmatched paths below it answer in this family's envelope
    render_error: Callable[[GengateError], Response]

    def wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except GengateError as exc:
                return self.render_error(exc)
            except Exception:
                log.exception("%s: unexpected error on %s %s", self.name, request.method, request.url.path)
                return self.render_error(GengateError("internal error"))

        endpoint.__name__ = getattr(handler, "__name__", "endpoint")
        return endpoint

    def route(self, path: str, handler: Handler, methods: Sequence[str]) -> Route:
        return Route(self.prefix + path, self.wrap(handler), methods=list(methods))

    def fallback(self, routes: Sequence[BaseRoute]) -> Route:
        """The last route of the family: 405 where a route has the path, else 404, in this envelope."""

        async def unmatched(request: Request) -> Response:
            scope = dict(request.scope)
            for r in routes:
                match, _ = r.matches(scope)
                if match is Match.PARTIAL:
                    return self.render_error(MethodNotAllowed(f"Method {request.method} not allowed."))
            return self.render_error(NotFound(f"Unknown path {request.url.path}", code="path_not_found"))

        return Route(self.prefix + "/{rest:path}", unmatched,
                     methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
