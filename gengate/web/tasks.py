"""The route-side steps every task family shares: create with Idempotency-Key, read, and stream.

A family's routes call these with its adaptor and render the result in its own shape.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from sqlalchemy.engine import Row
from starlette.requests import Request
from starlette.responses import StreamingResponse

from gengate.core import idempotency, inline
from gengate.core import tasks as store
from gengate.core.adaptor import OwnedTask, Parent, TaskAdaptor, TaskView
from gengate.core.errors import InvalidRequest, NotFound
from gengate.core.keys import ClientKey
from gengate.core.states import TERMINAL, TaskState
from gengate.net.ssrf import check_url
from gengate.web.context import AppContext
from gengate.web.requests import read_json


class KeyResolver:
    """Resolves references in a create request, for the calling key only (ownership)."""

    def __init__(self, ctx: AppContext, key: ClientKey) -> None:
        self.ctx, self.key = ctx, key

    async def task(self, public_id: str, provider: str | None = None) -> OwnedTask | None:
        async with self.ctx.db.read() as conn:
            row = await store.find_owned(conn, public_id, self.key.id, provider)
            if row is None:
                return None
            outs = await store.outputs_of(conn, row.id) if row.state == TaskState.SUCCEEDED else []
        return OwnedTask(parent=Parent(task_id=row.id, channel_id=row.channel_id, secret_id=row.secret_id),
                         public_id=row.public_id, provider=row.provider, action=row.action, model=row.model,
                         state=TaskState(row.state), upstream_id=row.upstream_id,
                         outputs=tuple((o.upstream_id, json.loads(o.meta)) for o in outs))

    async def task_by_field(self, provider: str, name: str, value: str) -> OwnedTask | None:
        async with self.ctx.db.read() as conn:
            row = await store.find_owned_by_field(conn, self.key.id, provider, name, value)
            if row is None:
                return None
        return await self.task(row.public_id, provider)

    async def stash(self, value: str) -> str:
        return await inline.stash(self.ctx.storage, value)

    async def output(self, public_id: str, provider: str | None = None,
                     kind: str | None = None) -> tuple[Parent, str | None, Mapping[str, Any]] | None:
        async with self.ctx.db.read() as conn:
            found = await store.find_output(conn, public_id, self.key.id, provider, kind)
        if found is None:
            return None
        out, task = found
        return (Parent(task_id=task.id, channel_id=task.channel_id, secret_id=task.secret_id),
                out.upstream_id, json.loads(out.meta))


async def create_task(ctx: AppContext, request: Request, key: ClientKey, adaptor: TaskAdaptor,
                      route: str, body: Any = None, *, origin: str | None = None,
                      body_limit: int | None = None) -> TaskView:
    """Create a task from a client's request. `origin`: the view it is created through when not the
    provider's own (e.g. `/v1/videos`); `body_limit`: this route's own cap on the JSON body (routes
    that take base64 images take several MB)."""
    if body is None:
        body = await read_json(request, body_limit or ctx.settings.max_body_bytes)
    if inline.mentions_stash(body):
        raise InvalidRequest("The request holds a string gengate reserves for its own stored media.")
    value = request.headers.get("idempotency-key")
    claim = None
    if value is not None:
        claim = await idempotency.claim(ctx.db, key_id=key.id, route=route, value=value,
                                        digest=idempotency.body_hash(body), ttl=ctx.settings.idempotency_ttl,
                                        release=ctx.settings.idempotency_release)
        if claim.task_id is not None:
            async with ctx.db.read() as conn:
                row = await store.get_row(conn, claim.task_id)
            if row is None or row.deleted_at is not None:  # the task it made was deleted since
                raise NotFound("The task this Idempotency-Key created was deleted.")
            return await ctx.engine.view(row)
    try:
        prepared = await adaptor.prepare(body, KeyResolver(ctx, key))
        if prepared.callback_url:  # client input: the SSRF rule applies, and a refusal is a 4xx now
            await check_url(prepared.callback_url, ctx.url_policy, field="callback_url")
        row = await ctx.engine.create(key, adaptor, prepared, claim.row_id if claim else None, origin=origin)
    except BaseException:
        if claim is not None:
            await idempotency.release(ctx.db, claim.row_id)
        raise
    if claim is not None:
        await idempotency.finish(ctx.db, claim.row_id)
    return await ctx.engine.view(row)


async def read_task(ctx: AppContext, key: ClientKey, public_id: str, provider: str | None) -> TaskView:
    return await ctx.engine.view(await ctx.engine.owned(key, public_id, provider))


def sse_stream(ctx: AppContext, row: Row[Any], event: Callable[[TaskView], dict[str, Any]]) -> StreamingResponse:
    """First event at once with the current state, then one per change; closes after a terminal state."""

    async def events() -> AsyncIterator[bytes]:
        current = row
        wake = ctx.notifier.subscribe(current.id, current.updated_at)
        try:
            last: str | None = None
            while True:
                wake.clear()
                view = await ctx.engine.view(current)
                payload = json.dumps(event(view), separators=(",", ":"))
                if payload != last:
                    last = payload
                    yield f"data: {payload}\n\n".encode()
                if TaskState(current.state) in TERMINAL:
                    return
                try:
                    await asyncio.wait_for(wake.wait(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                async with ctx.db.read() as conn:
                    fresh = await store.get_row(conn, current.id)
                if fresh is None:
                    return
                current = fresh
                ctx.notifier.seen(current.id, current.updated_at)
        finally:
            ctx.notifier.unsubscribe(row.id, wake)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
