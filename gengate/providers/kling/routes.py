"""Kling's official routes under `/kling/v1` (kling.md §4): for each create path `P`, `POST P`,
`GET P/{task_id}` (also by the client's `external_task_id`) and `GET P?pageNum=&pageSize=` (the key's
own tasks of that kind, newest first). Every reply is Kling's envelope; auth is `Bearer sk-...`."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.adaptor import NATIVE, TaskView
from gengate.core.errors import AuthError, NotFound
from gengate.core.keys import ClientKey
from gengate.providers.kling import rules
from gengate.providers.kling.adaptor import ACTIONS, KlingAdaptor
from gengate.providers.kling.errors import kling_error
from gengate.providers.kling.schemas import (
    KlingError,
    KlingImage2VideoRequest,
    KlingImageRequest,
    KlingLipSyncRequest,
    KlingListQuery,
    KlingTaskList,
    KlingTaskReply,
    KlingText2VideoRequest,
    KlingTryOnRequest,
    KlingVideoExtendRequest,
)
from gengate.web.context import AppContext
from gengate.web.family import Family, Handler
from gengate.web.requests import bearer, read_json
from gengate.web.tasks import KeyResolver, create_task, read_task

FAMILY = Family(name="kling", prefix="/kling", render_error=kling_error, error_model=KlingError)
BODIES: dict[str, type[BaseModel]] = {"text2video": KlingText2VideoRequest, "image2video": KlingImage2VideoRequest,
                                      "image_generation": KlingImageRequest, "video_extend": KlingVideoExtendRequest,
                                      "lip_sync": KlingLipSyncRequest, "virtual_try_on": KlingTryOnRequest}
SUMMARIES = {"text2video": "text-to-video task", "image2video": "image-to-video task",
             "image_generation": "image generation task", "video_extend": "video extension task",
             "lip_sync": "lip-sync task", "virtual_try_on": "virtual try-on task"}


def envelope(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data})


def page_param(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= high:
        raise rules.bad(f"{name} must be an integer from 1 to {high}")
    return int(raw)


def routes(ctx: AppContext) -> list[BaseRoute]:
    adaptor = ctx.adaptors["kling"]
    assert isinstance(adaptor, KlingAdaptor)

    async def key_of(request: Request) -> ClientKey:
        presented = bearer(request)
        if presented is None:
            raise AuthError("Authorization header is empty", code="1001")
        return await ctx.authenticate(presented)

    async def find(key: ClientKey, action: str, task_id: str) -> TaskView:
        """The key's task of this kind by gengate's task id, or else by the client's external_task_id."""
        try:
            view = await read_task(ctx, key, task_id, "kling")
        except NotFound:
            owned = await KeyResolver(ctx, key).task_by_field("kling", "external_task_id", task_id)
            if owned is None:
                raise NotFound(f"task {task_id} not found") from None
            view = await read_task(ctx, key, owned.public_id, "kling")
        if view.action != action:
            raise NotFound(f"task {task_id} not found")
        return view

    def handlers(action: str) -> tuple[Handler, Handler, Handler]:
        bound = adaptor.bound(action)
        path = ACTIONS[action].path

        async def create(request: Request) -> Response:
            key = await key_of(request)
            body = await read_json(request, ctx.settings.max_media_body_bytes)
            # A client's external_task_id is unique per key: the engine checks it in the insert's
            # transaction (UniqueField), so racing creates on any processes cannot both pass.
            view = await create_task(ctx, request, key, bound, route=f"kling:{path}", body=body)
            return envelope(adaptor.render(view))

        async def get(request: Request) -> Response:
            key = await key_of(request)
            return envelope(adaptor.render(await find(key, action, request.path_params["task_id"])))

        async def list_tasks(request: Request) -> Response:
            key = await key_of(request)
            number = page_param(request, "pageNum", 1, 1000)
            size = page_param(request, "pageSize", 30, 500)
            views = await ctx.engine.list_owned(key, provider="kling", origin=NATIVE, action=action, limit=size,
                                                offset=(number - 1) * size)
            return envelope([adaptor.render(v) for v in views])

        return create, get, list_tasks

    family_routes: list[BaseRoute] = []
    for action, spec in ACTIONS.items():
        create, get, list_tasks = handlers(action)
        what = SUMMARIES[action]
        family_routes += [
            FAMILY.route(spec.path, create, ["POST"], name=f"{action}_create", summary=f"Create: {what}",
                         body=BODIES[action], reply=KlingTaskReply),
            FAMILY.route(spec.path, list_tasks, ["GET"], name=f"{action}_list",
                         summary=f"List this key's tasks: {what}s", query=KlingListQuery, reply=KlingTaskList),
            FAMILY.route(spec.path + "/{task_id}", get, ["GET"], name=f"{action}_get", summary=f"Read one: {what}",
                         reply=KlingTaskReply),
        ]
    return [*family_routes, FAMILY.fallback(family_routes)]
