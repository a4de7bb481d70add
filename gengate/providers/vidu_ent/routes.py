"""Vidu platform routes under `/vidu/ent/v2` (vidu.md §3.1). Auth: `Token sk-...` or `Bearer sk-...`.

One create path per action; the task's reads answer in the platform's shapes, and a task created
through another view (`/v1/videos`) is not one of this family's tasks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.adaptor import Prepared, Resolver, TaskView
from gengate.core.errors import InvalidRequest, NotFound
from gengate.core.keys import ClientKey
from gengate.providers.vidu.errors import vidu_error
from gengate.providers.vidu.schemas import ViduError
from gengate.providers.vidu_ent import schemas as s
from gengate.providers.vidu_ent.adaptor import PROVIDER, ViduEntAdaptor
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer
from gengate.web.tasks import create_task, read_task

FAMILY = Family(name="vidu_ent", prefix="/vidu/ent/v2", render_error=vidu_error, error_model=ViduError,
                tag="vidu-ent")
CREATES: dict[str, type[BaseModel]] = {
    "text2video": s.Text2VideoRequest, "img2video": s.Img2VideoRequest, "start-end2video": s.StartEnd2VideoRequest,
    "reference2video": s.Reference2VideoRequest, "upscale": s.UpscaleRequest, "upscale-new": s.UpscaleNewRequest,
}
STATES = ("created", "queueing", "processing", "success", "failed")


class ActionAdaptor:
    """The platform adaptor with its action fixed by the path: what `create_task` prepares with."""

    def __init__(self, adaptor: ViduEntAdaptor, action: str) -> None:
        self._adaptor, self._action = adaptor, action

    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        return await self._adaptor.prepare_action(self._action, body, resolver)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adaptor, name)


def routes(ctx: AppContext) -> list[BaseRoute]:
    adaptor = ctx.adaptors[PROVIDER]
    assert isinstance(adaptor, ViduEntAdaptor)

    async def key_of(request: Request) -> ClientKey:
        return await ctx.authenticate(bearer(request, ("bearer", "token")))

    async def own(key: ClientKey, task_id: str) -> TaskView:
        view = await read_task(ctx, key, task_id, PROVIDER)
        if view.origin != PROVIDER:
            raise NotFound("task not found")
        return view

    def creator(action: str) -> Any:
        bound = ActionAdaptor(adaptor, action)

        async def create(request: Request) -> Response:
            key = await key_of(request)
            view = await create_task(ctx, request, key, bound, route=f"vidu-ent:/ent/v2/{action}",  # type: ignore[arg-type]
                                     body_limit=ctx.settings.max_media_body_bytes)
            return JSONResponse(adaptor.render_created(view))

        create.__name__ = action.replace("-", "_")
        return create

    async def creations(request: Request) -> Response:
        key = await key_of(request)
        return JSONResponse(adaptor.render(await own(key, request.path_params["task_id"])))

    async def cancel(request: Request) -> Response:
        key = await key_of(request)
        task_id = request.path_params["task_id"]
        await own(key, task_id)
        await ctx.engine.cancel(key, task_id, PROVIDER)
        return JSONResponse({})

    async def list_tasks(request: Request) -> Response:
        key = await key_of(request)
        q = request.query_params
        size = _int(q.get("pager.pagesz"), "pager.pagesz", 10, 1, 100)
        token = q.get("pager.page_token")
        if token:
            offset = _int(token, "pager.page_token", 0, 0, 10**9)
        else:
            offset = (max(_int(q.get("pager.page"), "pager.page", 1, 0, 10**6), 1) - 1) * size
        ids = {i for i in q.get("task_ids", "").replace(",", " ").split() if i} or None
        ids = ids or set(q.getlist("task_ids[]")) or None
        states = {x for x in q.get("states", "").replace(",", " ").split() if x} or None
        views = await ctx.engine.list_owned(key, provider=PROVIDER, limit=size + 1, offset=offset)
        more = len(views) > size
        shown = [adaptor.render_created(v) | {"state": adaptor.provider_state(v)} for v in views[:size]
                 if v.origin == PROVIDER and (ids is None or v.public_id in ids)]
        if states is not None:
            shown = [t for t in shown if t["state"] in states]
        return JSONResponse({"tasks": shown, "next_page_token": str(offset + size) if more else ""})

    family_routes: list[BaseRoute] = [
        FAMILY.route(f"/{action}", creator(action), ["POST"], summary=f"Create a {action} task", body=body,
                     reply=s.CreatedTask)
        for action, body in CREATES.items()
    ]
    family_routes += [
        FAMILY.route("/tasks", list_tasks, ["GET"], summary="List this key's tasks, newest first", reply=s.TaskList),
        FAMILY.route("/tasks/{task_id}/creations", creations, ["GET"], summary="Read a task and its creations",
                     reply=s.TaskCreations),
        FAMILY.route("/tasks/{task_id}/cancel", cancel, ["POST"], summary="Cancel a task", body=s.CancelRequest,
                     reply=s.Empty),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]


def _int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}", code="FieldInvalid", param=name)
    return int(raw)
