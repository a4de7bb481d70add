"""Vidu web/app format routes under `/vidu/v1` (vidu.md §2.1). Auth: `Token sk-...` or `Bearer sk-...`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.errors import InvalidRequest
from gengate.providers.vidu.adaptor import ViduWebAdaptor
from gengate.providers.vidu.errors import vidu_error
from gengate.providers.vidu.schemas import (
    ViduCreateRequest,
    ViduEmpty,
    ViduError,
    ViduStateEvent,
    ViduStateQuery,
    ViduTask,
)
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer
from gengate.web.tasks import create_task, read_task, sse_stream

FAMILY = Family(name="vidu", prefix="/vidu", render_error=vidu_error, error_model=ViduError)


def routes(ctx: AppContext) -> list[BaseRoute]:
    adaptor = ctx.adaptors["vidu"]
    assert isinstance(adaptor, ViduWebAdaptor)

    async def key_of(request: Request):
        return await ctx.authenticate(bearer(request, ("bearer", "token")))

    async def create(request: Request) -> Response:
        key = await key_of(request)
        view = await create_task(ctx, request, key, adaptor, route="vidu:/vidu/v1/tasks",
                                 body_limit=ctx.settings.max_media_body_bytes)
        return JSONResponse(adaptor.render(view))

    async def get(request: Request) -> Response:
        key = await key_of(request)
        view = await read_task(ctx, key, request.path_params["task_id"], "vidu")
        return JSONResponse(adaptor.render(view))

    async def state(request: Request) -> Response:
        key = await key_of(request)
        task_id = request.query_params.get("id")
        if not task_id:
            raise InvalidRequest("id is required", code="FieldLacking")
        row = await ctx.engine.owned(key, task_id, "vidu")
        return sse_stream(ctx, row, adaptor.render_state)

    async def cancel(request: Request) -> Response:
        key = await key_of(request)
        await ctx.engine.cancel(key, request.path_params["task_id"], "vidu")
        return JSONResponse({})

    family_routes: list[BaseRoute] = [
        FAMILY.route("/v1/tasks", create, ["POST"], summary="Create a task", body=ViduCreateRequest, reply=ViduTask),
        FAMILY.route("/v1/tasks/state", state, ["GET"], summary="Progress stream (SSE)", query=ViduStateQuery,
                     reply=ViduStateEvent, reply_media_type="text/event-stream"),
        FAMILY.route("/v1/tasks/{task_id}", get, ["GET"], summary="Read a task", reply=ViduTask),
        FAMILY.route("/v1/tasks/{task_id}", cancel, ["DELETE"], summary="Cancel a task", reply=ViduEmpty),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
