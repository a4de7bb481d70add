"""The unified task API for tasks of every provider: `GET /v1/tasks/{id}`, `/events` (SSE), `/cancel`,
and beyond the contract's three, the key's list (`GET /v1/tasks`) and `DELETE /v1/tasks/{id}`.

Its object is gengate's own (interface.md "Unified task API"), rendered from any task by one function;
a provider adds nothing here. Errors use OpenAI's envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.adaptor import TaskRenderer, TaskView
from gengate.core.errors import InvalidRequest
from gengate.core.states import UNIFIED_STATUS, TaskState
from gengate.providers.openai.errors import openai_error
from gengate.providers.openai.schemas import OpenAIError
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer
from gengate.web.tasks import read_task, sse_stream
from gengate.web.unified_schemas import TaskDeleted, TaskList, TaskListQuery, TaskObject

FAMILY = Family(name="tasks", prefix="/v1/tasks", render_error=openai_error, error_model=OpenAIError)


def render_unified(task: TaskView) -> dict[str, Any]:
    progress = 100 if task.state is TaskState.SUCCEEDED else task.progress
    error = None
    if task.state in (TaskState.FAILED, TaskState.CANCELLED):
        error = {"code": task.error_code or task.state.value,
                 "message": task.error_message or f"the task was {task.state.value}"}
    return {
        "id": task.public_id, "object": "task", "provider": task.provider, "model": task.model,
        "status": UNIFIED_STATUS[task.state], "progress": progress,
        "created_at": int(task.created_at), "updated_at": int(task.updated_at),
        "outputs": [{"url": next(iter(o.urls.values())), "type": o.kind} for o in task.outputs if o.urls],
        "error": error,
        "cost": {"reserved": task.reserved, "settled": task.settled},
    }


def render_with_origin(task: TaskView, views: Mapping[str, TaskRenderer]) -> dict[str, Any]:
    """The unified object; a task created through another view (`/v1/videos`) also carries that view's
    object under its `object` name (`"video": {...}`), so the unified API shows it as its client does."""
    body = render_unified(task)
    view = views.get(task.origin) if task.origin != task.provider else None
    if view is not None:
        rendered = view.render(task)
        body[str(rendered.get("object") or task.origin)] = rendered
    return body


def _int_param(raw: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}", param=name)
    return int(raw)


def routes(ctx: AppContext) -> list[BaseRoute]:
    async def get(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        view = await read_task(ctx, key, request.path_params["task_id"], None)
        return JSONResponse(render_with_origin(view, ctx.engine.views))

    async def events(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        row = await ctx.engine.owned(key, request.path_params["task_id"])
        return sse_stream(ctx, row, render_unified)

    async def cancel(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        row = await ctx.engine.cancel(key, request.path_params["task_id"])
        return JSONResponse(render_unified(await ctx.engine.view(row)))

    async def list_tasks(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        q = request.query_params
        limit = _int_param(q.get("limit"), "limit", default=20, low=1, high=100)
        provider = q.get("provider") or None
        views = await ctx.engine.list_owned(key, provider=provider, limit=limit + 1, after=q.get("after") or None)
        data = [render_unified(v) for v in views[:limit]]
        return JSONResponse({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None, "has_more": len(views) > limit})

    async def delete(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        row = await ctx.engine.delete(key, request.path_params["task_id"])
        return JSONResponse({"id": row.public_id, "object": "task.deleted", "deleted": True})

    family_routes: list[BaseRoute] = [
        FAMILY.route("", list_tasks, ["GET"], summary="List this key's tasks, newest first", query=TaskListQuery,
                     reply=TaskList),
        FAMILY.route("/{task_id}", get, ["GET"], summary="Read a task of any provider", reply=TaskObject),
        FAMILY.route("/{task_id}", delete, ["DELETE"], summary="Delete a task (a live one is cancelled first)",
                     reply=TaskDeleted),
        FAMILY.route("/{task_id}/events", events, ["GET"], summary="Progress stream (SSE)", reply=TaskObject,
                     reply_media_type="text/event-stream"),
        FAMILY.route("/{task_id}/cancel", cancel, ["POST"], summary="Cancel a task", reply=TaskObject),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
