"""Luma Dream Machine routes under `/luma/dream-machine/v1` (luma.md §2), what the `lumaai` SDK calls
with `base_url=http://HOST/luma/dream-machine/v1`. Auth: `Bearer sk-...`; errors `{"detail"}`."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.adaptor import NATIVE, TaskView
from gengate.core.errors import InvalidRequest
from gengate.core.keys import ClientKey
from gengate.core.states import TERMINAL
from gengate.providers.luma.adaptor import LumaAdaptor
from gengate.providers.luma.errors import luma_error
from gengate.providers.luma.schemas import (
    LumaError,
    LumaGeneration,
    LumaGenerationList,
    LumaImageRequest,
    LumaListQuery,
    LumaPing,
    LumaVideoRequest,
)
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer
from gengate.web.tasks import create_task, read_task

FAMILY = Family(name="luma", prefix="/luma", render_error=luma_error, error_model=LumaError)
API = "/dream-machine/v1"
SYNC_WAIT = 60.0  # a `sync` image create waits at most this long (or its `sync_timeout`)


def _int_param(raw: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}", status=422, param=name)
    return int(raw)


def routes(ctx: AppContext) -> list[BaseRoute]:
    adaptor = ctx.adaptors["luma"]
    assert isinstance(adaptor, LumaAdaptor)
    creators = {kind: LumaAdaptor(kind) for kind in ("generations", "video", "image")}

    async def key_of(request: Request) -> ClientKey:
        return await ctx.authenticate(bearer(request))

    async def create(request: Request, kind: str) -> Response:
        key = await key_of(request)
        view = await create_task(ctx, request, key, creators[kind], route=f"luma:{API}/generations/{kind}",
                                 body_limit=ctx.settings.max_media_body_bytes)
        if kind == "image" and view.request.get("sync") is True:
            view = await _wait(key, view)
        return JSONResponse(adaptor.render(view), status_code=201)

    async def _wait(key: ClientKey, view: TaskView) -> TaskView:
        """`sync: true`: answer once the image is done, or as it stands after the wait."""
        asked = view.request.get("sync_timeout")
        end = time.monotonic() + (float(asked) if isinstance(asked, int | float) else SYNC_WAIT)
        while view.state not in TERMINAL and time.monotonic() < end:
            await asyncio.sleep(0.2)
            view = await read_task(ctx, key, view.public_id, "luma")
        return view

    async def create_legacy(request: Request) -> Response:
        return await create(request, "generations")

    async def create_video(request: Request) -> Response:
        return await create(request, "video")

    async def create_image(request: Request) -> Response:
        return await create(request, "image")

    async def get(request: Request) -> Response:
        key = await key_of(request)
        view = await read_task(ctx, key, request.path_params["generation_id"], "luma")
        return JSONResponse(adaptor.render(view))

    async def list_generations(request: Request) -> Response:
        key = await key_of(request)
        q = request.query_params
        limit = _int_param(q.get("limit"), "limit", default=10, low=1, high=100)
        offset = _int_param(q.get("offset"), "offset", default=0, low=0, high=10**9)
        views = await ctx.engine.list_owned(key, provider="luma", origin=NATIVE, limit=limit + 1, offset=offset)
        page = [adaptor.render(v) for v in views[:limit]]
        return JSONResponse({"generations": page, "has_more": len(views) > limit, "count": len(page),
                             "limit": limit, "offset": offset})

    async def delete(request: Request) -> Response:
        key = await key_of(request)
        await ctx.engine.delete(key, request.path_params["generation_id"], "luma")
        return Response(status_code=204)

    async def ping(request: Request) -> Response:
        await key_of(request)
        return JSONResponse({"message": "pong"})

    family_routes: list[BaseRoute] = [
        FAMILY.route(f"{API}/generations", create_legacy, ["POST"], summary="Create a video generation "
                     "(lumaai 1.0 path; model defaults to ray-2)", body=LumaVideoRequest, reply=LumaGeneration),
        FAMILY.route(f"{API}/generations", list_generations, ["GET"], summary="List this key's generations, "
                     "newest first", query=LumaListQuery, reply=LumaGenerationList),
        FAMILY.route(f"{API}/generations/video", create_video, ["POST"], summary="Create a video generation",
                     body=LumaVideoRequest, reply=LumaGeneration),
        FAMILY.route(f"{API}/generations/image", create_image, ["POST"], summary="Create an image generation",
                     body=LumaImageRequest, reply=LumaGeneration),
        FAMILY.route(f"{API}/generations/{{generation_id}}", get, ["GET"], summary="Read a generation",
                     reply=LumaGeneration),
        FAMILY.route(f"{API}/generations/{{generation_id}}", delete, ["DELETE"],
                     summary="Delete a generation (a running one is stopped first; refunded once)"),
        FAMILY.route(f"{API}/ping", ping, ["GET"], summary="Check the key", reply=LumaPing),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
