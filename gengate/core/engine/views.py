"""Reading tasks as their clients see them: ownership, lists, the `TaskView` a renderer gets, and the
webhook a change queues (in the transaction of the change)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Row

from gengate.core import tasks as store
from gengate.core import webhooks
from gengate.core.adaptor import INLINE_PREFIX, OutputView, TaskView
from gengate.core.engine.base import EngineBase, Tx
from gengate.core.errors import NotFound
from gengate.core.keys import ClientKey
from gengate.core.states import TaskState

S = TaskState


class ViewsJob(EngineBase):
    async def owned(self, key: ClientKey, public_id: str, provider: str | None = None) -> Row[Any]:
        row = await self.db.run_read(lambda conn: store.find_owned(conn, public_id, key.id, provider))
        if row is None:
            raise NotFound("task not found")
        return row

    async def list_owned(self, key: ClientKey, *, provider: str | None = None, origin: str | None = None,
                         limit: int = 20, after: str | None = None, offset: int = 0,
                         oldest_first: bool = False, action: str | None = None) -> list[TaskView]:
        """One page of the key's tasks (deleted ones left out), as views."""
        async with self.db.read() as conn:
            rows = await store.list_owned(conn, key.id, provider=provider, origin=origin, limit=limit,
                                          after=after, offset=offset, oldest_first=oldest_first, action=action)
            return [await self._view(conn, r) for r in rows]

    async def count_owned(self, key: ClientKey, *, provider: str | None = None, origin: str | None = None,
                          action: str | None = None) -> int:
        async with self.db.read() as conn:
            return await store.count_owned(conn, key.id, provider=provider, origin=origin, action=action)

    async def view(self, row: Row[Any]) -> TaskView:
        return await self.db.run_read(lambda conn: self._view(conn, row))

    async def _view(self, conn: Any, row: Row[Any]) -> TaskView:
        outs = await store.outputs_of(conn, row.id) if row.state == S.SUCCEEDED else []
        ttl = self.settings.media_url_ttl
        views = tuple(OutputView(public_id=o.public_id, kind=o.kind, meta=json.loads(o.meta),
                                 urls={f: self.signer.url_for(k, ttl) for f, k in json.loads(o.files).items()})
                      for o in outs)
        request = json.loads(row.request)
        if INLINE_PREFIX in row.request:  # stashed inline media shows as a media URL of its own
            request = _inline_as_urls(request, lambda key: self.signer.url_for(key, ttl))
        return TaskView(public_id=row.public_id, provider=row.provider, action=row.action, model=row.model,
                        state=S(row.state), upstream_state=row.upstream_state, progress=row.progress,
                        request=request,
                        upstream_reply=json.loads(row.upstream_reply) if row.upstream_reply else None,
                        outputs=views, error_code=row.error_code, error_message=row.error_message,
                        created_at=row.created_at, updated_at=row.updated_at, reserved=row.reserved,
                        settled=row.settled, origin=row.origin or row.provider)

    async def _hook(self, tx: Tx, task_id: int) -> None:
        """In the transaction of a change: queue a webhook if the client-visible state moved."""
        row = await store.get_row(tx.conn, task_id)
        if row is None or not row.callback_url:
            return
        renderer = self.renderer(row)
        view = await self._view(tx.conn, row)
        if await webhooks.enqueue(tx.conn, task_id=row.id, key_id=row.key_id, url=row.callback_url,
                                  state=renderer.provider_state(view), payload=renderer.render(view)):
            tx.webhook_queued = True


def _inline_as_urls(value: Any, url_for: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return url_for(value[len(INLINE_PREFIX):]) if value.startswith(INLINE_PREFIX) else value
    if isinstance(value, dict):
        return {k: _inline_as_urls(v, url_for) for k, v in value.items()}
    if isinstance(value, list):
        return [_inline_as_urls(v, url_for) for v in value]
    return value
