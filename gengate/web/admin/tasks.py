"""`/admin/api/tasks`: any key's tasks (filters provider, state, key_id, model), newest first; one
task by the id its family shows, with its outputs and its event trail. A task item is the unified
task object plus `key_id` and `channel`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gengate.core.states import UNIFIED_STATUS
from gengate.db.models import channels, task_events, tasks
from gengate.web.admin.common import admin_route, int_param, invalid, not_found
from gengate.web.unified import render_with_origin


async def _item(request: Request, row: Row[Any], names: dict[int, str]) -> dict[str, Any]:
    ctx = request.app.state.ctx
    body = render_with_origin(await ctx.engine.view(row), ctx.engine.views)
    body["key_id"] = row.key_id
    channel_id = row.channel_id or row.last_channel_id
    body["channel"] = names.get(channel_id) if channel_id is not None else None
    return body


async def _channel_names(conn: Any) -> dict[int, str]:
    rows = (await conn.execute(select(channels.c.id, channels.c.name))).all()
    return {r.id: r.name.split("#deleted-")[0] for r in rows}


async def list_tasks(request: Request) -> Response:
    q = request.query_params
    limit = int_param(q.get("limit"), "limit", default=50, low=1, high=500) or 50
    cond = and_(tasks.c.id > 0)
    if q.get("provider"):
        cond = and_(cond, tasks.c.provider == q["provider"])
    if q.get("model"):
        cond = and_(cond, tasks.c.model == q["model"])
    if q.get("key_id"):
        cond = and_(cond, tasks.c.key_id == int_param(q["key_id"], "key_id"))
    if q.get("state"):
        states = [s.value for s, unified in UNIFIED_STATUS.items() if unified == q["state"]]
        if not states:
            raise invalid(f"state must be one of {', '.join(sorted(set(UNIFIED_STATUS.values())))}")
        cond = and_(cond, tasks.c.state.in_(states))
    db = request.app.state.ctx.db
    async with db.read() as conn:
        if q.get("after"):
            anchor = await conn.scalar(select(tasks.c.id).where(tasks.c.public_id == q["after"]))
            if anchor is None:
                return JSONResponse({"data": [], "has_more": False})
            cond = and_(cond, tasks.c.id < anchor)
        rows = (await conn.execute(select(tasks).where(cond).order_by(tasks.c.id.desc()).limit(limit + 1))).all()
        names = await _channel_names(conn)
    data = [await _item(request, r, names) for r in rows[:limit]]
    return JSONResponse({"data": data, "has_more": len(rows) > limit})


async def get_task(request: Request) -> Response:
    public_id = request.path_params["task_id"]
    db = request.app.state.ctx.db
    async with db.read() as conn:
        row = (await conn.execute(select(tasks).where(or_(tasks.c.public_id == public_id)))).first()
        if row is None:
            raise not_found("task")
        events = (await conn.execute(select(task_events).where(task_events.c.task_id == row.id)
                                     .order_by(task_events.c.id))).all()
        names = await _channel_names(conn)
    body = await _item(request, row, names)
    body["action"] = row.action
    body["events"] = [{"from": UNIFIED_STATUS.get(_state(e.from_state)) if e.from_state else None,
                       "to": UNIFIED_STATUS.get(_state(e.to_state)), "from_state": e.from_state,
                       "to_state": e.to_state, "reason": e.reason, "at": e.at} for e in events]
    return JSONResponse(body)


def _state(raw: str) -> Any:
    from gengate.core.states import TaskState
    try:
        return TaskState(raw)
    except ValueError:
        return None


def routes() -> list[Route]:
    return [admin_route("/tasks", list_tasks, ["GET"]), admin_route("/tasks/{task_id}", get_task, ["GET"])]
