"""Suno-API relay routes under `/suno` (suno.md §1). Auth: `Authorization: Bearer sk-...`.

Both fetch routes answer from gengate's own tasks (as new-api does); only the poller calls upstream.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.errors import InvalidRequest, NotFound
from gengate.providers.suno.adaptor import ACTIONS, SunoAdaptor
from gengate.providers.suno.errors import suno_error
from gengate.providers.suno.schemas import (
    SunoError,
    SunoFetchRequest,
    SunoLyricsRequest,
    SunoMusicRequest,
    SunoSubmitReply,
    SunoTaskListReply,
    SunoTaskReply,
)
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer, read_json
from gengate.web.tasks import create_task, read_task

FAMILY = Family(name="suno", prefix="/suno", render_error=suno_error, error_model=SunoError)
MAX_FETCH_IDS = 100


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": "success", "message": "", "data": data})


def routes(ctx: AppContext) -> list[BaseRoute]:
    adaptor = ctx.adaptors["suno"]
    assert isinstance(adaptor, SunoAdaptor)

    async def key_of(request: Request) -> Any:
        return await ctx.authenticate(bearer(request))

    async def submit(request: Request, action: str) -> Response:
        key = await key_of(request)
        if action not in ACTIONS:
            raise InvalidRequest("invalid_action", code="invalid_request")
        view = await create_task(ctx, request, key, adaptor.for_action(action),
                                 route=f"suno:/suno/submit/{action.lower()}")
        return ok(view.public_id)

    async def submit_music(request: Request) -> Response:
        return await submit(request, "MUSIC")

    async def submit_lyrics(request: Request) -> Response:
        return await submit(request, "LYRICS")

    async def submit_action(request: Request) -> Response:
        return await submit(request, request.path_params["action"].upper())

    async def fetch_one(request: Request) -> Response:
        key = await key_of(request)
        view = await read_task(ctx, key, request.path_params["task_id"], "suno")
        return ok(adaptor.render(view))

    async def fetch_many(request: Request) -> Response:
        key = await key_of(request)
        body = await read_json(request, ctx.settings.max_body_bytes)
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        ids = body.get("ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InvalidRequest("ids must be an array of task ids", param="ids")
        if len(ids) > MAX_FETCH_IDS:
            raise InvalidRequest(f"at most {MAX_FETCH_IDS} ids per fetch", param="ids")
        tasks = []
        for task_id in dict.fromkeys(ids):  # unknown ids (and other keys' tasks) are simply absent
            try:
                tasks.append(adaptor.render(await read_task(ctx, key, task_id, "suno")))
            except NotFound:
                continue
        return ok(tasks)

    family_routes: list[BaseRoute] = [
        FAMILY.route("/submit/music", submit_music, ["POST"], summary="Generate music", body=SunoMusicRequest,
                     reply=SunoSubmitReply),
        FAMILY.route("/submit/lyrics", submit_lyrics, ["POST"], summary="Generate lyrics", body=SunoLyricsRequest,
                     reply=SunoSubmitReply),
        FAMILY.route("/submit/{action}", submit_action, ["POST"], summary="Submit by action (MUSIC or LYRICS, "
                     "any case)", body=SunoMusicRequest, reply=SunoSubmitReply),
        FAMILY.route("/fetch", fetch_many, ["POST"], summary="Read many tasks", body=SunoFetchRequest,
                     reply=SunoTaskListReply),
        FAMILY.route("/fetch/{task_id}", fetch_one, ["GET"], summary="Read a task", reply=SunoTaskReply),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
