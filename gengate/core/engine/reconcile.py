"""Reconcile an ambiguous create: find the job through the upstream's list (by marker or fingerprint
and time), bind the task to it, or prove after the grace period that there is none."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.engine import Row

from gengate.core import tasks as store
from gengate.core.adaptor import SupportsReconcile, TaskAdaptor
from gengate.core.engine.submit import SubmitJob
from gengate.core.states import TaskState
from gengate.core.upstream import NotSent, OutcomeUnknown

log = logging.getLogger("gengate.engine")
S = TaskState
_PAGES = 5


class ReconcileJob(SubmitJob):
    async def _reconcile(self, row: Row[Any], adaptor: TaskAdaptor) -> None:
        if not isinstance(adaptor, SupportsReconcile):
            await self._move(row, S.FAILED, "ambiguous create and the provider cannot be reconciled",
                             error_code="SubmitOutcomeUnknown",
                             error_message="the provider's reply to the create was lost")
            return
        account = self.account(row.secret_id, row.channel_id)
        ref = self.ref(row)
        not_before = (row.submitted_at or row.created_at) - 5
        found: str | None = None
        try:
            for page in range(1, _PAGES + 1):
                reply = await self.upstream.send(account, adaptor.build_find(account, ref, page))
                if reply.status != 200:
                    raise OutcomeUnknown(f"HTTP {reply.status}")
                result = adaptor.parse_find(reply, ref, not_before)
                found = await self._first_unbound(row, result.upstream_ids)
                if found or not result.more:
                    break
        except (NotSent, OutcomeUnknown, ValueError, KeyError, TypeError) as exc:
            log.info("task %s: reconcile failed for now (%s)", row.public_id, type(exc).__name__)
            await self._reschedule(row, self._backoff(row.attempts))
            return
        if found:
            # None: another task took that job meanwhile: look again
            if await self._bind(row, found, "reconciled: job found upstream") is None:
                await self._reschedule(row, min(1.0, self.settings.ambiguity_grace / 4))
        elif time.time() - (row.submitted_at or row.created_at) >= self.settings.ambiguity_grace:
            await self._move(row, S.QUEUED, "reconciled: no job upstream after the grace period",
                             next_poll_at=time.time(), lease_owner=None, lease_until=None)
        else:
            await self._reschedule(row, min(1.0, self.settings.ambiguity_grace / 4))

    async def _first_unbound(self, row: Row[Any], ids: list[str]) -> str | None:
        """The first candidate job not already bound to another task on the same secret."""
        if not ids:
            return None
        async with self.db.read() as conn:
            taken = await store.bound_jobs(conn, row.secret_id, ids, exclude_task=row.id)
        return next((i for i in ids if i not in taken), None)
