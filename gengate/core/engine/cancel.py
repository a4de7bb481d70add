"""Cancel and delete, on a client's request: cancel upstream where the provider can, else stop
tracking; either way the reservation is refunded exactly once. A deleted task is 404 from then on."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Row

from gengate.core import tasks as store
from gengate.core.engine.poll import PollJob
from gengate.core.errors import Conflict
from gengate.core.keys import ClientKey
from gengate.core.states import TERMINAL, TaskState

log = logging.getLogger("gengate.engine")
S = TaskState


class CancelJob(PollJob):
    async def cancel(self, key: ClientKey, public_id: str, provider: str | None = None) -> Row[Any]:
        row = await self.owned(key, public_id, provider)
        if S(row.state) in TERMINAL:
            raise Conflict(f"the task is already {row.state}")
        return await self._cancel_row(row)

    async def _cancel_row(self, row: Row[Any]) -> Row[Any]:
        outcome = await self._cancel_upstream(self.adaptors[row.provider], row.secret_id, row.channel_id,
                                              self.ref(row))
        if outcome is not True and row.upstream_id:
            log.info("task %s: upstream cancel not confirmed; no longer tracking it", row.public_id)
        for _ in range(5):  # the row may move under us (a poll); cancel from wherever it is now
            if await self._move(row, S.CANCELLED, "cancelled by the client", upstream_state="canceled"):
                break
            row = await self._row(row.id)
            if S(row.state) in TERMINAL:
                raise Conflict(f"the task is already {row.state}")
        return await self._row(row.id)

    async def delete(self, key: ClientKey, public_id: str, provider: str | None = None) -> Row[Any]:
        """Delete a task of this key (Runway and Luma DELETE): a live one is cancelled first (refunded
        once); afterwards it is 404 on every route. Returns the task as it was last."""
        row = await self.owned(key, public_id, provider)
        if S(row.state) not in TERMINAL:
            try:
                row = await self._cancel_row(row)
            except Conflict:  # it finished meanwhile: delete it as it is
                row = await self._row(row.id)
        async with self.db.write() as conn:
            await store.mark_deleted(conn, row.id)
        self.notifier.changed(row.id)
        return row
