"""Create and submit: save the task with its reservation, take a slot on a secret, send the create,
and read what the reply proves (accepted, refused, not accepted, or unknown)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Row

from gengate.core import channels as chan
from gengate.core import idempotency, inline
from gengate.core import tasks as store
from gengate.core.adaptor import (
    INLINE_PREFIX,
    HttpReply,
    Outcome,
    Prepared,
    Submitted,
    SupportsCancel,
    TaskAdaptor,
    TaskRef,
)
from gengate.core.crash import crash_point
from gengate.core.engine.base import new_public_id, retry_after
from gengate.core.engine.views import ViewsJob
from gengate.core.errors import ModelNotAllowed, ReferenceUnavailable, UpstreamRefused
from gengate.core.keys import ClientKey
from gengate.core.states import TaskState
from gengate.core.upstream import NotSent, OutcomeUnknown

log = logging.getLogger("gengate.engine")
S = TaskState
_OFF = {"lease_owner": None, "lease_until": None}


class SubmitJob(ViewsJob):
    async def create(self, key: ClientKey, adaptor: TaskAdaptor, prepared: Prepared,
                     idempotency_row: int | None = None, *, origin: str | None = None) -> Row[Any]:
        """Save the task and its reservation, then submit it now if a slot is free. `origin` names
        the view it was created through when that is not the provider's own (its id form too)."""
        key.check_model(prepared.model)
        # A task on a parent's result runs on the parent's account, whatever models its channel lists.
        if prepared.parent is None and not self.router.has_channel(adaptor.provider, prepared.model):
            raise ModelNotAllowed(f"The model `{prepared.model}` is not served by any channel.")
        if prepared.parent is not None and not self.router.takes_new_work(prepared.parent.secret_id):
            raise ReferenceUnavailable("The referenced result was made on an upstream account that is disabled or "
                                       "removed, the only one that holds it: no new task can use it.")
        id_kind = (self.views[origin] if origin else adaptor).id_kind
        now = time.time()
        parent = prepared.parent
        slots = max(1, prepared.slots)
        new = store.NewTask(
            public_id=new_public_id(id_kind), key_id=key.id, provider=adaptor.provider,
            action=prepared.action, model=prepared.model, request=prepared.request,
            upstream_request=prepared.upstream_request, units=dict(prepared.units),
            reserved=self.prices.cap(adaptor.provider, adaptor.price(prepared.units, self.prices)),
            callback_url=prepared.callback_url,
            deadline_at=now + self.settings.deadline_for(adaptor.provider), marker=self.new_marker(),
            parent_task_id=parent.task_id if parent else None,
            channel_id=parent.channel_id if parent else None, secret_id=parent.secret_id if parent else None,
            slots=slots, origin=origin)
        row = None
        async with self.db.write() as conn:
            if (unique := prepared.unique_field) is not None:
                await store.lock_field_value(conn, key.id, adaptor.provider, unique.name, unique.value)
                if await store.find_owned_by_field(conn, key.id, adaptor.provider, unique.name, unique.value):
                    raise unique.error
            # Take a slot in the same transaction as the insert, so the task starts as SUBMITTING.
            if parent is not None:
                candidates = [self.router.secrets[parent.secret_id]] if parent.secret_id in self.router.secrets else []
            else:
                candidates = self.router.candidates(new.provider, new.model)
            for secret in candidates:
                if await chan.acquire_slot(conn, secret.id, now, slots):
                    row = await store.insert_task(conn, new, now, unlimited=key.credits is None,
                                                  submitting={**self._lease_fields(secret, now, new.provider),
                                                              "attempts": 1})
                    break
            if row is None:
                row = await store.insert_task(conn, new, now, unlimited=key.credits is None)
            if idempotency_row is not None:
                await idempotency.bind_task(conn, idempotency_row, row.id)
        try:
            final = await self._submit(row, adaptor, inline=True)
        finally:
            if prepared.callback_url:
                async with self._tx() as tx:
                    await self._hook(tx, row.id)
                final = None
        return final if final is not None else await self._row(row.id)

    def _candidates(self, row: Any, avoid: set[int]) -> list[Any]:
        """The secrets a queued task may take a slot on now. A pinned task (it refers to a result of
        its parent's account) has one: its parent's, while enabled and not tried in this round."""
        if row.pinned:
            secret = self.router.secrets.get(row.secret_id)
            usable = secret is not None and secret.enabled and secret.channel_id not in avoid
            return [secret] if usable else []
        return [s for s in self.router.candidates(row.provider, row.model, avoid_channel=row.last_channel_id)
                if s.channel_id not in avoid]

    def _lease_fields(self, secret: Any, now: float, provider: str) -> dict[str, Any]:
        lease = max(self.settings.lease_seconds, self._submit_timeout(provider) + 5)
        return {"channel_id": secret.channel_id, "secret_id": secret.id, "slot_held": True, "submitted_at": now,
                "lease_owner": self.owner, "lease_until": now + lease, "next_poll_at": now + lease}

    async def _submit(self, row: Row[Any], adaptor: TaskAdaptor, *, inline: bool = False) -> Row[Any] | None:
        """Send the create through the first candidate secret with a free slot; on a proved
        non-acceptance, through the next channel (never the same one twice in a row)."""
        tried: set[int] = set()
        while True:
            if row.state == S.QUEUED:
                claimed = await self._claim_slot(row, tried)
                if claimed is None:
                    if not tried:  # after a failed try the task keeps the backoff its requeue set
                        await self._park(row)
                    return None
                row = claimed
            if row.state != S.SUBMITTING:
                return None
            channel_id = row.channel_id
            crash_point("after_task_commit")
            sent = await self._send_create(row, adaptor, inline=inline)
            if sent is None or sent.state != S.QUEUED:
                return sent
            row = sent
            tried.add(channel_id)

    async def _claim_slot(self, row: Row[Any], avoid: set[int]) -> Row[Any] | None:
        """Take a slot on the first candidate secret that has one, and move the task to SUBMITTING."""
        for secret in self._candidates(row, avoid):
            now = time.time()
            async with self.db.write() as conn:
                if not await chan.acquire_slot(conn, secret.id, now, row.slots):
                    continue
                moved = await store.move(conn, row, S.SUBMITTING, reason=f"submit via channel {secret.channel_id}",
                                         attempts=row.attempts + 1,
                                         **self._lease_fields(secret, now, row.provider))
                if moved is None:  # another process moved it: undo the slot with the transaction
                    await conn.rollback()
                    return None
            return moved
        return None

    async def _park(self, row: Row[Any]) -> None:
        """No secret could take the task now (all at their cap or backing off): the poller retries.
        A pinned task whose account is gone or disabled can never run: it fails with its refund."""
        secret = self.router.secrets.get(row.secret_id) if row.pinned else None
        if row.pinned and (secret is None or not secret.enabled):
            await self._parent_account_gone(row)
            return
        await self._reschedule(row, min(1.0, self.settings.poll_interval))

    async def _parent_account_gone(self, row: Row[Any]) -> Row[Any] | None:
        return await self._move(row, S.FAILED, "the parent's upstream account is gone or disabled",
                                error_code="ParentAccountGone", error_message="the upstream account that made "
                                "the referenced result no longer exists or is disabled")

    async def _submit_ref(self, row: Row[Any]) -> TaskRef:
        """The task's reference with stashed inline media put back into its upstream request."""
        ref = self.ref(row)
        if INLINE_PREFIX not in row.upstream_request:
            return ref
        return replace(ref, upstream_request=await inline.unstash(self.storage, ref.upstream_request))

    async def _send_create(self, row: Row[Any], adaptor: TaskAdaptor, *, inline: bool) -> Row[Any] | None:
        """Send the create of a SUBMITTING task; returns the task as it ends up (QUEUED: try another)."""
        account = self.account(row.secret_id, row.channel_id)
        channel_id, secret_id = row.channel_id, row.secret_id
        try:
            ref = await self._submit_ref(row)
        except (OSError, LookupError, ValueError) as exc:  # stashed media unreadable: nothing can be sent
            log.warning("task %s: stashed inline media unreadable (%s)", row.public_id, type(exc).__name__)
            return await self._move(row, S.FAILED, "stashed inline media unreadable", error_code="InlineMediaLost",
                                    error_message="the request's inline media could not be read back")
        try:
            reply = await self.upstream.send(account, adaptor.build_submit(account, ref),
                                             read_timeout=self._submit_timeout(row.provider))
        except NotSent as exc:  # the secret's host refused: its health, never this task's fault
            await self._secret_failed(secret_id)
            return await self._move(row, S.QUEUED, f"create not sent: {exc}", last_channel_id=channel_id,
                                    next_poll_at=time.time() + self._backoff(row.attempts), **_OFF)
        except OutcomeUnknown as exc:
            return await self._ambiguous(row, f"create outcome unknown: {exc}")
        sub = _parse_submit(adaptor, reply, ref)
        if sub.outcome is Outcome.ACCEPTED:
            return await self._accepted(row, adaptor, sub)
        if sub.outcome is Outcome.AMBIGUOUS:
            return await self._ambiguous(row, "create reply unreadable")
        if sub.outcome is Outcome.REFUSED:
            moved = await self._move(row, S.FAILED, f"refused upstream: {sub.error_code}",
                                     error_code=sub.error_code, error_message=sub.error_message)
            if inline:
                raise UpstreamRefused(sub.error_message or "refused by the provider",
                                      upstream_status=reply.status, upstream_code=sub.error_code)
            return moved
        if sub.outcome in (Outcome.AUTH, Outcome.NO_CREDIT):  # the secret is unusable: disable it
            reason = (f"upstream rejected the secret (HTTP {reply.status})" if sub.outcome is Outcome.AUTH
                      else "upstream account out of credit")
            async with self.db.write() as conn:
                await chan.disable_secret(conn, secret_id, reason)
            self.on_config()
            log.warning("secret %s of channel %s disabled: %s", secret_id, channel_id, reason)
            if row.pinned:  # no other account holds the referenced result
                return await self._parent_account_gone(row)
            return await self._requeue(row, f"create not accepted: HTTP {reply.status}", self._backoff(row.attempts))
        return await self._not_accepted(row, reply, sub)

    async def _accepted(self, row: Row[Any], adaptor: TaskAdaptor, sub: Submitted) -> Row[Any] | None:
        crash_point("after_upstream_accept")
        async with self._tx() as tx:
            moved = await store.move(tx.conn, row, S.RUNNING, reason="accepted upstream",
                                     upstream_id=sub.upstream_id, upstream_state=sub.upstream_state,
                                     upstream_reply=json.dumps(sub.reply), submit_errors=0,
                                     next_poll_at=time.time() + self._interval(adaptor), **_OFF)
            await chan.clear_failures(tx.conn, row.secret_id)  # the secret works: its streak ends
            if moved and row.callback_url:
                await self._hook(tx, row.id)
        if moved:
            self.notifier.changed(row.id)
            return moved
        if not sub.upstream_id:
            return None
        # The task moved while its create was in flight. If it is now waiting to be reconciled
        # (its lease ran out), the job is its own: bind it; otherwise the job is an orphan.
        current = await self._row(row.id)
        if current.state == S.AMBIGUOUS and current.secret_id == row.secret_id:
            bound = await self._bind(current, sub.upstream_id, "accepted upstream after its lease ran out")
            if bound is not None:
                return bound
        await self._orphaned(row, adaptor, sub.upstream_id)
        return None

    async def _bind(self, row: Row[Any], upstream_id: str, reason: str) -> Row[Any] | None:
        """Bind an ambiguous task to a job found for it upstream, unless another task of the same
        secret holds that job. The check and the move share one transaction that locks the task,
        then the secret (the order every move takes), so two tasks never take the same job."""
        async with self._tx() as tx:
            await store.lock_task(tx.conn, row.id)
            await chan.lock_secret(tx.conn, row.secret_id)
            if await store.bound_jobs(tx.conn, row.secret_id, [upstream_id], exclude_task=row.id):
                return None
            moved = await store.move(tx.conn, row, S.RUNNING, reason=reason,
                                     upstream_id=upstream_id, next_poll_at=time.time(), **_OFF)
            if moved and row.callback_url:
                await self._hook(tx, row.id)
        if moved:
            self.notifier.changed(row.id)
        return moved

    async def _not_accepted(self, row: Row[Any], reply: HttpReply, sub: Submitted) -> Row[Any] | None:
        """A 429, 5xx or garbled refusal: proved not accepted. A 429 is the secret's rate limit and
        never counts against the task; a 5xx or garbled refusal counts, and after
        GENGATE_SUBMIT_ATTEMPTS of them in a row the task fails with its refund, so that one payload
        the upstream chokes on cannot occupy a shared secret until its deadline."""
        secret_id = row.secret_id
        if reply.status == 429:
            await self._secret_failed(secret_id, sub.retry_after)
            return await self._requeue(row, "create not accepted: HTTP 429", self._backoff(1, sub.retry_after))
        errors = row.submit_errors + 1
        # Counted in the secret's streak (its health), but only the upstream's Retry-After backs it off.
        await self._secret_failed(secret_id, sub.retry_after, back_off=False)
        if errors >= self.settings.submit_attempts:
            return await self._move(row, S.FAILED, f"create failed {errors} times in a row (last HTTP {reply.status})",
                                    submit_errors=errors, error_code=sub.error_code or "UpstreamError",
                                    error_message=sub.error_message or f"the provider failed the create {errors} "
                                    f"times (last HTTP {reply.status})")
        return await self._requeue(row, f"create not accepted: HTTP {reply.status}",
                                   self._backoff(errors, sub.retry_after), submit_errors=errors)

    async def _requeue(self, row: Row[Any], reason: str, delay: float, **fields: Any) -> Row[Any] | None:
        return await self._move(row, S.QUEUED, reason, last_channel_id=row.channel_id,
                                next_poll_at=time.time() + delay, **_OFF, **fields)

    async def _orphaned(self, row: Row[Any], adaptor: TaskAdaptor, upstream_id: str) -> None:
        """The task ended (cancelled, deadline) while its create was in flight: record the job the
        upstream made and cancel it there, so that it does not run on unaccounted."""
        async with self.db.write() as conn:
            await store.record_upstream_id(conn, row.id, upstream_id)
        ref = replace(self.ref(row), upstream_id=upstream_id)
        if not await self._cancel_upstream(adaptor, row.secret_id, row.channel_id, ref):
            log.warning("task %s ended during its create; its upstream job may not be cancelled", row.public_id)

    async def _ambiguous(self, row: Row[Any], reason: str) -> Row[Any] | None:
        return await self._move(row, S.AMBIGUOUS, reason, **_OFF,
                                next_poll_at=time.time() + min(1.0, self.settings.ambiguity_grace))

    async def _cancel_upstream(self, adaptor: TaskAdaptor, secret_id: int | None, channel_id: int | None,
                               ref: TaskRef) -> bool | None:
        """Ask the upstream to cancel a job, with the secret that made it. True: it did; False: it
        refused; None: no such ability, no job, no secret, or no answer."""
        if (not ref.upstream_id or not isinstance(adaptor, SupportsCancel) or secret_id is None
                or channel_id is None or secret_id not in self.router.secrets):
            return None
        account = self.account(secret_id, channel_id)
        try:
            reply = await self.upstream.send(account, adaptor.build_cancel(account, ref))
        except (NotSent, OutcomeUnknown):
            return None
        return adaptor.parse_cancel(reply, ref)


def _parse_submit(adaptor: TaskAdaptor, reply: HttpReply, ref: TaskRef) -> Submitted:
    try:
        sub = adaptor.parse_submit(reply, ref)
    except (ValueError, KeyError, TypeError):
        # A 2xx we cannot read may hide an accepted job; anything else proves nothing was made.
        return Submitted(outcome=Outcome.AMBIGUOUS if 200 <= reply.status < 300 else Outcome.RETRY)
    if sub.retry_after is None and sub.outcome is Outcome.RETRY:
        return Submitted(outcome=sub.outcome, retry_after=retry_after(reply), error_code=sub.error_code,
                         error_message=sub.error_message)
    return sub
