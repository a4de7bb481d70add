"""`/admin/api/usage` (aggregates per hour/day/model/key/channel/provider over the per-request usage
records of synchronous calls and the tasks) and `/admin/api/requests` (the usage records, newest first)."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gengate.core.states import TaskState
from gengate.db.models import channels, keys, tasks, usage_records
from gengate.web.admin.common import admin_route, int_param, invalid, timestamp

GROUPS = ("hour", "day", "model", "key", "channel", "provider")
FIELDS = ("requests", "tasks", "errors", "input_tokens", "output_tokens", "credits")


def _bucket(at: float, size: str) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:00:00Z" if size == "hour" else "%Y-%m-%d")


async def usage(request: Request) -> Response:
    q = request.query_params
    group_by = q.get("group_by") or "day"
    if group_by not in GROUPS:
        raise invalid(f"group_by must be one of {', '.join(GROUPS)}")
    start, end = timestamp(q.get("from"), "from"), timestamp(q.get("to"), "to")
    async with request.app.state.ctx.db.read() as conn:
        data = await aggregate(conn, group_by, start, end)
    return JSONResponse({"data": data, "group_by": group_by,
                         "from": start, "to": end, "generated_at": int(time.time())})


async def aggregate(conn: Any, group_by: str, start: float | None, end: float | None) -> list[dict[str, Any]]:
    """The usage rows `{"group", requests, tasks, errors, input_tokens, output_tokens, credits}` (also
    `gengate usage`)."""
    chans = {r.id: (r.name.split("#deleted-")[0], r.provider)
             for r in (await conn.execute(select(channels.c.id, channels.c.name, channels.c.provider))).all()}
    key_names = {r.id: r.name for r in (await conn.execute(select(keys.c.id, keys.c.name))).all()}
    rec_cond = and_(usage_records.c.id > 0)
    task_cond = and_(tasks.c.id > 0)
    if start is not None:
        rec_cond = and_(rec_cond, usage_records.c.created_at >= start)
        task_cond = and_(task_cond, tasks.c.created_at >= start)
    if end is not None:
        rec_cond = and_(rec_cond, usage_records.c.created_at < end)
        task_cond = and_(task_cond, tasks.c.created_at < end)
    records = (await conn.execute(select(usage_records.c.created_at, usage_records.c.key_id,
                                         usage_records.c.price_model, usage_records.c.channel_id,
                                         usage_records.c.status, usage_records.c.input_tokens,
                                         usage_records.c.output_tokens, usage_records.c.credits)
                                  .where(rec_cond))).all()
    task_rows = (await conn.execute(select(tasks.c.created_at, tasks.c.key_id, tasks.c.model, tasks.c.provider,
                                           tasks.c.channel_id, tasks.c.last_channel_id, tasks.c.state,
                                           tasks.c.reserved, tasks.c.settled).where(task_cond))).all()

    def group(at: float, key_id: int, model: str, channel_id: int | None, provider: str | None) -> str:
        if group_by in ("hour", "day"):
            return _bucket(at, group_by)
        if group_by == "model":
            return model
        if group_by == "key":
            return key_names.get(key_id, str(key_id))
        if group_by == "channel":
            return chans[channel_id][0] if channel_id in chans else "(none)"
        return provider or (chans[channel_id][1] if channel_id in chans else "(none)")

    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for r in records:
        row = sums[group(r.created_at, r.key_id, r.price_model, r.channel_id, None)]
        row["requests"] += 1
        row["errors"] += int(r.status >= 400)
        row["input_tokens"] += r.input_tokens
        row["output_tokens"] += r.output_tokens
        row["credits"] += r.credits
    for t in task_rows:
        channel_id = t.channel_id or t.last_channel_id
        row = sums[group(t.created_at, t.key_id, t.model, channel_id, t.provider)]
        row["requests"] += 1
        row["tasks"] += 1
        row["errors"] += int(t.state == TaskState.FAILED.value)
        terminal = t.state in (TaskState.SUCCEEDED.value, TaskState.FAILED.value, TaskState.CANCELLED.value)
        row["credits"] += (t.settled or 0) if terminal else t.reserved
    ordered = sorted(sums.items(), reverse=group_by in ("hour", "day"))
    if group_by not in ("hour", "day"):
        ordered.sort(key=lambda kv: kv[1]["credits"], reverse=True)
    return [{"group": g, **v} for g, v in ordered]


def _record(r: Any, chans: dict[int, str]) -> dict[str, Any]:
    return {"id": r.id, "created_at": r.created_at, "key_id": r.key_id, "route": r.route, "model": r.model,
            "price_model": r.price_model, "channel": chans.get(r.channel_id) if r.channel_id else None,
            "status": r.status, "latency_ms": r.latency_ms, "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens, "credits": r.credits, "stream": r.stream, "error": r.error}


async def requests_log(request: Request) -> Response:
    q = request.query_params
    limit = int_param(q.get("limit"), "limit", default=50, low=1, high=500) or 50
    cond = and_(usage_records.c.id > 0)
    if q.get("after"):
        cond = and_(cond, usage_records.c.id < int_param(q["after"], "after"))
    if q.get("key_id"):
        cond = and_(cond, usage_records.c.key_id == int_param(q["key_id"], "key_id"))
    db = request.app.state.ctx.db
    async with db.read() as conn:
        rows = (await conn.execute(select(usage_records).where(cond).order_by(usage_records.c.id.desc())
                                   .limit(limit + 1))).all()
        chans = {r.id: r.name.split("#deleted-")[0]
                 for r in (await conn.execute(select(channels.c.id, channels.c.name))).all()}
    return JSONResponse({"data": [_record(r, chans) for r in rows[:limit]], "has_more": len(rows) > limit})


def routes() -> list[Route]:
    return [admin_route("/usage", usage, ["GET"]), admin_route("/requests", requests_log, ["GET"])]
