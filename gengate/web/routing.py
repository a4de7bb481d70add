"""All routes composed in one place: every concrete route before any family's fallback, fallbacks ordered
longest prefix first, so that a request under `/v1/tasks/...` that matches no route gets the `/v1/tasks`
family's envelope and not `/v1`'s (and the reverse for `/v1/...` outside `/v1/tasks`). Concrete routes
too are tried longest family prefix first (the app's own routes, which have no family, before them), so
the order in which families are found never changes which route answers.

Each family declares its routes (a list of routes ending in its `FallbackRoute`, see `Family`); the app
hands every list to `install_routes`, which knows no family by name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette._utils import get_route_path  # the path below the app's root_path, as Route.matches reads it
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from gengate.web.documented import errors_as_json


class FallbackRoute(Route):
    """Takes every request at `prefix` or below it, whatever the method: the family's 404/405."""

    def __init__(self, prefix: str, endpoint: Callable[[Request], Awaitable[Response]], name: str) -> None:
        super().__init__(prefix.rstrip("/") + "/{rest:path}", endpoint, name=name, include_in_schema=False)
        self.methods = None  # every method: the handler answers 405 itself, in the family's envelope
        self.prefix = prefix.rstrip("/")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path = get_route_path(scope)
            if path == self.prefix or path.startswith(self.prefix + "/"):
                return Match.FULL, {"endpoint": self.endpoint, "path_params": {}}
        return Match.NONE, {}


def compose_routes(groups: Iterable[Sequence[BaseRoute]]) -> list[BaseRoute]:
    """One ordered list: the app's own routes, family routes (longest family prefix first, then in
    declaration order), then fallbacks, longest prefix first.

    Raises ValueError when two routes claim the same path and method, two fallbacks the same prefix, or
    two documented operations the same operation id: each would silently hide the other."""
    routes = [route for group in groups for route in group]
    concrete = [r for r in routes if not isinstance(r, FallbackRoute)]
    fallbacks = [r for r in routes if isinstance(r, FallbackRoute)]
    _check_unique(concrete, fallbacks)
    concrete.sort(key=_concrete_order)  # stable: declaration order within one prefix
    fallbacks.sort(key=lambda r: len(r.prefix), reverse=True)
    return [*concrete, *fallbacks]


def install_routes(app: FastAPI, groups: Iterable[Sequence[BaseRoute]]) -> None:
    """Adds the groups to the app's own routes (docs, health, mounts) and orders the whole list."""
    app.router.routes[:] = compose_routes([list(app.router.routes), *groups])
    app.openapi_schema = None  # generated again, with the new routes, on the next /openapi.json

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = errors_as_json(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _concrete_order(route: BaseRoute) -> tuple[int, int]:
    prefix = getattr(route, "family_prefix", "")
    return (1, -len(prefix)) if prefix else (0, 0)


def _check_unique(concrete: Sequence[BaseRoute], fallbacks: Sequence[FallbackRoute]) -> None:
    seen: dict[tuple[str, str], BaseRoute] = {}
    for route in concrete:
        if not isinstance(route, Route) or route.methods is None:
            continue
        for method in route.methods:
            if (route.path, method) in seen:
                raise ValueError(f"two routes for {method} {route.path}")
            seen[route.path, method] = route
    prefixes = [f.prefix for f in fallbacks]
    if len(set(prefixes)) != len(prefixes):
        raise ValueError(f"two fallbacks for one prefix among {sorted(prefixes)}")
    ids = [r.operation_id for r in concrete if isinstance(r, APIRoute) and r.include_in_schema and r.operation_id]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate operation ids: {sorted({i for i in ids if ids.count(i) > 1})}")
