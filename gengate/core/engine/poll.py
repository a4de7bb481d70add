"""What a leased, due task needs next: submit, reconcile, poll, re-host, or fail at its deadline."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy.engine import Row

from gengate.core import tasks as store
from gengate.core.adaptor import OutputSpec, Progress, SupportsBatchPoll, TaskAdaptor
from gengate.core.crash import crash_point
from gengate.core.engine.base import new_public_id, retry_after
from gengate.core.engine.reconcile import ReconcileJob
from gengate.core.states import TERMINAL, TaskState
from gengate.core.upstream import NotSent, OutcomeUnknown
from gengate.storage.base import StoredObject
from gengate.storage.rehost import RehostError, rehost

log = logging.getLogger("gengate.engine")
S = TaskState


class PollJob(ReconcileJob):
    async def handle(self, row: Row[Any]) -> None:
        """Do what a leased, due task needs next."""
        adaptor = self.adaptors.get(row.provider)
        if adaptor is None:
            await self._reschedule(row, 60)
            return
        state = S(row.state)
        if time.time() >= row.deadline_at and state not in TERMINAL:
            await self._expire(row, adaptor)
            return
        try:
            if state is S.QUEUED:
                await self._submit(row, adaptor)
            elif state is S.SUBMITTING:  # its process died mid-submit: the create may have been sent
                await self._ambiguous(row, "process died during submit")
            elif state is S.AMBIGUOUS:
                await self._reconcile(row, adaptor)
            elif state in (S.RUNNING, S.REHOSTING):
                await self._poll(row, adaptor)
        except Exception:
            log.exception("task %s: unexpected error in state %s; retrying later", row.public_id, state)
            await self._reschedule(row, self._backoff(row.attempts))

    async def _expire(self, row: Row[Any], adaptor: TaskAdaptor) -> None:
        await self._cancel_upstream(adaptor, row.secret_id, row.channel_id, self.ref(row))
        await self._move(row, S.FAILED, "deadline passed", error_code="DeadlineExceeded",
                         error_message="the task did not finish before its deadline")

    async def _poll(self, row: Row[Any], adaptor: TaskAdaptor) -> None:
        account = self.account(row.secret_id, row.channel_id)
        ref = self.ref(row)
        batched: Progress | None = None
        try:
            if isinstance(adaptor, SupportsBatchPoll):
                reply, batched = await self.batches.poll(adaptor, account, (row.provider, row.channel_id,
                                                                            row.secret_id), ref)
            else:
                reply = await self.upstream.send(account, adaptor.build_poll(account, ref))
        except (NotSent, OutcomeUnknown) as exc:
            log.info("task %s: poll failed (%s); retrying", row.public_id, exc)
            await self._reschedule(row, self._backoff(row.attempts))
            return
        crash_point("during_poll")
        if reply.status in (404, 410):
            await self._move(row, S.FAILED, f"upstream answered {reply.status} for the job",
                             error_code="TaskNotFound", error_message="the provider no longer knows this task")
            return
        if reply.status != 200:
            wait = retry_after(reply)
            log.info("task %s: poll answered HTTP %d; retrying", row.public_id, reply.status)
            await self._reschedule(row, self._backoff(1, wait) if wait else self._interval(adaptor))
            return
        try:
            if isinstance(adaptor, SupportsBatchPoll):
                if batched is None:
                    raise KeyError("the batch reply did not cover this task")
                progress = batched
            else:
                progress = adaptor.parse_poll(reply, ref)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("task %s: unreadable poll reply (%s); retrying", row.public_id, type(exc).__name__)
            await self._reschedule(row, self._interval(adaptor))
            return
        await self._apply(row, adaptor, progress)

    async def _apply(self, row: Row[Any], adaptor: TaskAdaptor, p: Progress) -> None:
        reply = json.dumps(p.reply) if p.reply is not None else row.upstream_reply
        if p.state is S.RUNNING:
            if not p.known:
                log.warning("task %s: unknown upstream state %r; still polling", row.public_id, p.upstream_state)
            changed = (p.upstream_state != row.upstream_state) or (p.progress != row.progress)
            fields = {"upstream_state": p.upstream_state, "progress": p.progress} if changed else {}
            batched = isinstance(adaptor, SupportsBatchPoll)
            wait = self._aligned_interval(adaptor) if batched else self._interval(adaptor)
            await self._reschedule(row, p.poll_after or wait, **fields)
        elif p.state is S.SUCCEEDED:
            if row.state == S.RUNNING:
                if not await self._move(row, S.REHOSTING, "succeeded upstream", upstream_state=p.upstream_state,
                                        upstream_reply=reply, progress=100):
                    return
                row = await self._row(row.id)
            await self._rehost(row, adaptor, p.outputs)
        elif p.state in (S.FAILED, S.CANCELLED):
            await self._move(row, p.state, f"upstream {p.upstream_state}", upstream_state=p.upstream_state,
                             upstream_reply=reply, error_code=p.error_code or "UpstreamFailed",
                             error_message=p.error_message or f"the provider reports {p.upstream_state}")

    async def _rehost(self, row: Row[Any], adaptor: TaskAdaptor, specs: tuple[OutputSpec, ...]) -> None:
        """Copy every result into gengate storage, then show success and settle, in one transaction."""
        prefix = f"{row.provider}/{time.strftime('%Y/%m/%d')}/{row.public_id}"
        saved: list[tuple[str, OutputSpec, dict[str, str], list[StoredObject]]] = []
        try:
            for spec in specs:
                files: dict[str, str] = {}
                objs: list[StoredObject] = []
                by_url: dict[str, str] = {}
                for field_name, url in spec.urls.items():
                    if url in by_url:
                        files[field_name] = by_url[url]
                        continue
                    obj = await rehost(self.upstream.session, url, self.storage, prefix)
                    crash_point("during_rehost")
                    files[field_name] = by_url[url] = obj.key
                    objs.append(obj)
                saved.append((new_public_id(adaptor.id_kind), spec, files, objs))
        except RehostError as exc:
            if exc.retryable:
                log.info("task %s: re-hosting failed (%s); retrying", row.public_id, exc)
                await self._reschedule(row, self._backoff(row.attempts))
            else:
                await self._move(row, S.FAILED, f"results could not be copied: {exc}",
                                 error_code="ResultUnavailable", error_message="the provider's result could "
                                 "not be downloaded")
            return
        amount = adaptor.final_price(json.loads(row.units), specs, self.prices)
        crash_point("before_ledger")
        async with self._tx() as tx:
            await store.insert_outputs(tx.conn, row.id, time.time(), saved)
            moved = await store.move(tx.conn, row, S.SUCCEEDED, reason="results re-hosted", settle_amount=amount)
            if not moved:  # cancelled meanwhile: the cancel won; keep nothing of this attempt
                await tx.conn.rollback()
            elif row.callback_url:
                await self._hook(tx, row.id)
        if moved:
            self.notifier.changed(row.id)
            self.on_queued()
