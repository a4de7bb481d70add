"""The route composer: concrete routes before fallbacks, fallbacks longest prefix first, whatever order the
families are declared in (fake families with overlapping prefixes, as `/v1`, `/v1/tasks`, `/v1/files`)."""

from __future__ import annotations

import itertools

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.errors import GengateError
from gengate.web.family import Family
from gengate.web.routing import FallbackRoute, compose_routes


def fake_family(name: str, prefix: str, paths: list[tuple[str, str]]) -> list[BaseRoute]:
    """A family whose envelope names it and whose handlers answer `{"family": name}`."""

    def render(exc: GengateError) -> Response:
        return JSONResponse({"envelope": name, "code": exc.code}, status_code=exc.status)

    family = Family(name=name, prefix=prefix, render_error=render)

    async def ok(request: Request) -> Response:
        return JSONResponse({"family": name})

    routes: list[BaseRoute] = [family.route(path, ok, [method], name=f"{method}{i}")
                               for i, (method, path) in enumerate(paths)]
    return [*routes, family.fallback(routes)]


def families() -> list[list[BaseRoute]]:
    return [
        fake_family("openai", "/v1", [("GET", "/models"), ("GET", "/{anything}/list")]),
        fake_family("tasks", "/v1/tasks", [("GET", "/{task_id}"), ("POST", "/{task_id}/cancel")]),
        fake_family("files", "/v1/files", [("POST", ""), ("GET", "/{file_id}")]),
    ]


# (method, path) -> (status, what answers it)
CASES = {
    ("GET", "/v1/models"): (200, {"family": "openai"}),
    ("GET", "/v1/tasks/abc"): (200, {"family": "tasks"}),
    ("POST", "/v1/tasks/abc/cancel"): (200, {"family": "tasks"}),
    ("POST", "/v1/files"): (200, {"family": "files"}),
    ("GET", "/v1/files/f1"): (200, {"family": "files"}),
    # A concrete route of the shorter prefix is still tried before any fallback.
    ("GET", "/v1/tasks/list"): (200, {"family": "tasks"}),
    ("GET", "/v1/x/list"): (200, {"family": "openai"}),
    # Unmatched below a longer prefix: that family's envelope, never `/v1`'s.
    ("GET", "/v1/tasks/abc/nope"): (404, {"envelope": "tasks", "code": "path_not_found"}),
    ("GET", "/v1/tasks"): (404, {"envelope": "tasks", "code": "path_not_found"}),
    ("DELETE", "/v1/files/f1/x"): (404, {"envelope": "files", "code": "path_not_found"}),
    ("GET", "/v1/files/f1/content"): (404, {"envelope": "files", "code": "path_not_found"}),
    # ... and the reverse: `/v1` keeps what is not below a longer prefix (`/v1/tasksx` is not `/v1/tasks`).
    ("GET", "/v1/nope/deeper/still"): (404, {"envelope": "openai", "code": "path_not_found"}),
    ("GET", "/v1/tasksx/abc/def"): (404, {"envelope": "openai", "code": "path_not_found"}),
    ("GET", "/v1"): (404, {"envelope": "openai", "code": "path_not_found"}),
    # A wrong method is the family's 405, with Allow.
    ("PUT", "/v1/tasks/abc"): (405, {"envelope": "tasks", "code": "method_not_allowed"}),
    ("GET", "/v1/files"): (405, {"envelope": "files", "code": "method_not_allowed"}),
    ("POST", "/v1/models"): (405, {"envelope": "openai", "code": "method_not_allowed"}),
}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
async def test_overlapping_prefixes_answer_in_the_longest_prefix_family(order: tuple[int, ...]) -> None:
    groups = families()
    routes = compose_routes([groups[i] for i in order])
    fallbacks = [r.prefix for r in routes if isinstance(r, FallbackRoute)]
    assert fallbacks in (["/v1/tasks", "/v1/files", "/v1"], ["/v1/files", "/v1/tasks", "/v1"])
    first_fallback = next(i for i, r in enumerate(routes) if isinstance(r, FallbackRoute))
    assert all(isinstance(r, FallbackRoute) for r in routes[first_fallback:])

    transport = httpx.ASGITransport(app=Starlette(routes=routes))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        for (method, path), (status, body) in CASES.items():
            reply = await client.request(method, path)
            assert (reply.status_code, reply.json()) == (status, body), (order, method, path)
            if status == 405:
                assert reply.headers["allow"], (method, path)
        reply = await client.put("/v1/tasks/abc/cancel")
        assert reply.headers["allow"] == "POST"


def test_conflicts_are_refused_at_composition() -> None:
    with pytest.raises(ValueError, match="two routes for GET /v1/models"):
        compose_routes([fake_family("a", "/v1", [("GET", "/models")]), fake_family("b", "/v2", [("GET", "/x")]),
                        fake_family("c", "/v1/models", [("GET", "")])])
    with pytest.raises(ValueError, match="two fallbacks"):
        compose_routes([fake_family("a", "/v1", [("GET", "/a")]), fake_family("b", "/v1", [("GET", "/b")])])
    with pytest.raises(ValueError, match="duplicate operation ids"):
        compose_routes([fake_family("a", "/v1", [("GET", "/a")]), fake_family("a", "/v2", [("GET", "/a")])])


def test_a_route_declares_one_method() -> None:
    family = Family(name="x", prefix="/x", render_error=lambda exc: Response(status_code=exc.status))

    async def h(request: Request) -> Response:
        return Response()

    with pytest.raises(ValueError, match="one route per method"):
        family.route("/a", h, ["GET", "POST"])
