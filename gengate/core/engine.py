"""The task engine: create (save, reserve, submit), and what happens to a due task (submit, reconcile,
poll, re-host, deadline). Routes call `create`/`get`/`cancel`; the poller calls `handle`.

Every state change goes through `tasks.move` in a transaction of its own; an upstream call is never
made inside a transaction.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from gengate.config import Settings
from gengate.core import channels as chan
from gengate.core import idempotency, webhooks
from gengate.core import tasks as store
from gengate.core.channels import Router
from gengate.core.crash import crash_point
from gengate.core.errors import Conflict, ModelNotAllowed, NotFound, UpstreamRefused
from gengate.core.ids import digits, prefixed, uuid4
from gengate.core.keys import ClientKey
from gengate.core.notify import Notifier
from gengate.core.pricing import PriceTable
from gengate.core.states import TERMINAL, TaskState
from gengate.core.upstream import NotSent, OutcomeUnknown, UpstreamClient
from gengate.db.engine import Database
from gengate.db.models import channel_secrets, outputs, stored_objects, tasks
from gengate.providers.base import (
    Account,
    HttpReply,
    Outcome,
    OutputSpec,
    OutputView,
    Prepared,
    Progress,
    Submitted,
    SupportsCancel,
    SupportsReconcile,
    TaskAdaptor,
    TaskView,
)
from gengate.storage.base import Storage
from gengate.storage.rehost import RehostError, rehost
from gengate.storage.signing import UrlSigner

log = logging.getLogger("gengate.engine")
S = TaskState


def new_public_id(kind: str) -> str:
    if kind.startswith("digits"):
        return digits(int(kind[6:] or 18))
    if kind == "uuid":
        return uuid4()
    return prefixed(kind + "_")


class TaskEngine:
    def __init__(self, *, settings: Settings, db: Database, router: Router, upstream: UpstreamClient,
                 storage: Storage, signer: UrlSigner, adaptors: Mapping[str, TaskAdaptor],
                 notifier: Notifier, owner: str) -> None:
        self.settings = settings
        self.db = db
        self.router = router
        self.upstream = upstream
        self.storage = storage
        self.signer = signer
        self.adaptors = adaptors
        self.notifier = notifier
        self.owner = owner
        self.prices = PriceTable(settings.prices)
        self.on_queued: Callable[[], None] = lambda: None  # the poller's wake-up
        self.on_webhook: Callable[[], None] = lambda: None  # the webhook sender's wake-up
        self._webhook_queued = False

    # ---------------------------------------------------------------- create
    async def create(self, key: ClientKey, adaptor: TaskAdaptor, prepared: Prepared,
                     idempotency_row: int | None = None) -> Row[Any]:
        """Save the task and its reservation, then submit it now if a slot is free."""
        key.check_model(prepared.model)
        if not self.router.has_channel(adaptor.provider, prepared.model):
            raise ModelNotAllowed(f"The model `{prepared.model}` is not served by any channel.")
        reserved = adaptor.price(prepared.units, self.prices)
        now = time.time()
        parent = prepared.parent
        new = store.NewTask(
            public_id=new_public_id(adaptor.id_kind), key_id=key.id, provider=adaptor.provider,
            action=prepared.action, model=prepared.model, request=prepared.request,
            upstream_request=prepared.upstream_request, units=dict(prepared.units), reserved=reserved,
            callback_url=prepared.callback_url,
            deadline_at=now + self.settings.deadline_for(adaptor.provider), marker=secrets.token_hex(8),
            parent_task_id=parent.task_id if parent else None,
            channel_id=parent.channel_id if parent else None, secret_id=parent.secret_id if parent else None)
        row = None
        async with self.db.write() as conn:
            # Take a slot in the same transaction as the insert, so the task starts as SUBMITTING.
            if parent is not None:
                candidates = [self.router.secrets[parent.secret_id]] if parent.secret_id in self.router.secrets else []
            else:
                candidates = self.router.candidates(new.provider, new.model)
            for secret in candidates:
                if await chan.acquire_slot(conn, secret.id, now):
                    row = await store.insert_task(conn, new, now, unlimited=key.credits is None,
                                                  submitting={**self._lease_fields(secret, now), "attempts": 1})
                    break
            if row is None:
                row = await store.insert_task(conn, new, now, unlimited=key.credits is None)
            if idempotency_row is not None:
                await idempotency.bind_task(conn, idempotency_row, row.id)
        try:
            final = await self._submit(row, adaptor, inline=True)
        finally:
            if prepared.callback_url:
                async with self._tx() as conn:
                    await self._hook(conn, row.id)
                final = None
        return final if final is not None else await self._row(row.id)

    # ---------------------------------------------------------------- reads
    async def _row(self, task_id: int) -> Row[Any]:
        async with self.db.read() as conn:
            row = await store.get_row(conn, task_id)
        assert row is not None
        return row

    async def owned(self, key: ClientKey, public_id: str, provider: str | None = None) -> Row[Any]:
        async with self.db.read() as conn:
            row = await store.find_owned(conn, public_id, key.id, provider)
        if row is None:
            raise NotFound("task not found")
        return row

    async def view(self, row: Row[Any]) -> TaskView:
        async with self.db.read() as conn:
            return await self._view(conn, row)

    async def _view(self, conn: Any, row: Row[Any]) -> TaskView:
        outs = await store.outputs_of(conn, row.id) if row.state == S.SUCCEEDED else []
        ttl = self.settings.media_url_ttl
        views = tuple(OutputView(public_id=o.public_id, kind=o.kind, meta=json.loads(o.meta),
                                 urls={f: self.signer.url_for(k, ttl) for f, k in json.loads(o.files).items()})
                      for o in outs)
        return TaskView(public_id=row.public_id, provider=row.provider, action=row.action, model=row.model,
                        state=S(row.state), upstream_state=row.upstream_state, progress=row.progress,
                        request=json.loads(row.request),
                        upstream_reply=json.loads(row.upstream_reply) if row.upstream_reply else None,
                        outputs=views, error_code=row.error_code, error_message=row.error_message,
                        created_at=row.created_at, updated_at=row.updated_at, reserved=row.reserved,
                        settled=row.settled)

    async def _hook(self, conn: Any, task_id: int) -> None:
        """In the transaction of a change: queue a webhook if the provider-visible state moved."""
        row = await store.get_row(conn, task_id)
        if row is None or not row.callback_url:
            return
        adaptor = self.adaptors[row.provider]
        view = await self._view(conn, row)
        if await webhooks.enqueue(conn, task_id=row.id, key_id=row.key_id, url=row.callback_url,
                                  state=adaptor.provider_state(view), payload=adaptor.render(view)):
            self._webhook_queued = True

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        """A write transaction that wakes the webhook sender after it commits, if it queued one."""
        async with self.db.write() as conn:
            yield conn
        if self._webhook_queued:
            self._webhook_queued = False
            self.on_webhook()

    # ---------------------------------------------------------------- moves
    async def _move(self, row: Row[Any], new: TaskState, reason: str, **fields: Any) -> Row[Any] | None:
        if new in TERMINAL:
            crash_point("before_ledger")
        async with self._tx() as conn:
            moved = await store.move(conn, row, new, reason=reason, **fields)
            if moved and row.callback_url:
                await self._hook(conn, row.id)
        if moved:
            self.notifier.changed(row.id)
            if new in TERMINAL or new is S.QUEUED:
                self.on_queued()  # a slot may have been freed
        return moved

    async def _reschedule(self, row: Row[Any], delay: float, **fields: Any) -> None:
        at = min(time.time() + delay, row.deadline_at)
        async with self._tx() as conn:
            touched = await store.touch(conn, row, next_poll_at=at, lease_owner=None, lease_until=None, **fields)
            if touched and fields and row.callback_url:
                await self._hook(conn, row.id)
        if fields:
            self.notifier.changed(row.id)

    def _interval(self, adaptor: TaskAdaptor) -> float:
        base = getattr(adaptor, "poll_interval", None) or self.settings.poll_interval
        j = self.settings.poll_jitter
        return base * random.uniform(1 - j, 1 + j)

    def _backoff(self, attempts: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.1), self.settings.backoff_max)
        delay = self.settings.backoff_base * (2 ** min(attempts, 10))
        return min(delay, self.settings.backoff_max) * random.uniform(0.8, 1.2)

    def account(self, secret_id: int, channel_id: int) -> Account:
        secret = self.router.secrets[secret_id]
        channel = self.router.channels[channel_id]
        return Account(base_url=channel.base_url, secret=secret.value, options=channel.options)

    # ---------------------------------------------------------------- submit
    def _candidates(self, row: Any, avoid: set[int]) -> list[Any]:
        if row.pinned:
            return [self.router.secrets[row.secret_id]] if row.secret_id in self.router.secrets else []
        return [s for s in self.router.candidates(row.provider, row.model, avoid_channel=row.last_channel_id)
                if s.channel_id not in avoid]

    def _lease_fields(self, secret: Any, now: float) -> dict[str, Any]:
        lease = max(self.settings.lease_seconds, self.settings.submit_timeout + 5)
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
                    await self._park(row)
                    return None
                row = claimed
            if row.state != S.SUBMITTING:
                return None
            secret = self.router.secrets[row.secret_id]
            crash_point("after_task_commit")
            sent = await self._send_create(row, adaptor, inline=inline)
            if sent is None or sent.state != S.QUEUED:
                return sent
            row = sent
            tried.add(secret.channel_id)

    async def _claim_slot(self, row: Row[Any], avoid: set[int]) -> Row[Any] | None:
        """Take a slot on the first candidate secret that has one, and move the task to SUBMITTING."""
        for secret in self._candidates(row, avoid):
            now = time.time()
            async with self.db.write() as conn:
                if not await chan.acquire_slot(conn, secret.id, now):
                    continue
                moved = await store.move(conn, row, S.SUBMITTING, reason=f"submit via channel {secret.channel_id}",
                                         attempts=row.attempts + 1, **self._lease_fields(secret, now))
                if moved is None:  # another process moved it: undo the slot with the transaction
                    await conn.rollback()
                    return None
            return moved
        return None

    async def _park(self, row: Row[Any]) -> None:
        """No secret could take the task now (all at their cap or backing off): the poller retries."""
        if row.pinned and row.secret_id not in self.router.secrets:
            await self._move(row, S.FAILED, "the parent's upstream account is gone", error_code="ParentAccountGone",
                             error_message="the upstream account that made the referenced result no longer exists")
            return
        await self._reschedule(row, min(1.0, self.settings.poll_interval))

    async def _send_create(self, row: Row[Any], adaptor: TaskAdaptor, *, inline: bool) -> Row[Any] | None:
        """Send the create of a SUBMITTING task; returns the task as it ends up (QUEUED: try another)."""
        account = self.account(row.secret_id, row.channel_id)
        upstream_request = json.loads(row.upstream_request)
        channel_id, secret_id = row.channel_id, row.secret_id
        off = {"lease_owner": None, "lease_until": None}
        try:
            reply = await self.upstream.send(account, adaptor.build_submit(account, upstream_request, row.marker),
                                             read_timeout=self.settings.submit_timeout)
        except NotSent as exc:
            await self._back_off_secret(secret_id, None, row.attempts)
            return await self._move(row, S.QUEUED, f"create not sent: {exc}", last_channel_id=channel_id,
                                    next_poll_at=time.time() + self._backoff(row.attempts), **off)
        except OutcomeUnknown as exc:
            return await self._ambiguous(row, f"create outcome unknown: {exc}")
        sub = _parse_submit(adaptor, reply)
        if sub.outcome is Outcome.ACCEPTED:
            crash_point("after_upstream_accept")
            moved = await self._move(row, S.RUNNING, "accepted upstream", upstream_id=sub.upstream_id,
                                     upstream_state=sub.upstream_state, upstream_reply=json.dumps(sub.reply),
                                     next_poll_at=time.time() + self._interval(adaptor), **off)
            if moved is None and sub.upstream_id:
                await self._orphaned(row, adaptor, sub.upstream_id)
            return moved
        if sub.outcome is Outcome.AMBIGUOUS:
            return await self._ambiguous(row, "create reply unreadable")
        if sub.outcome is Outcome.REFUSED:
            moved = await self._move(row, S.FAILED, f"refused upstream: {sub.error_code}",
                                     error_code=sub.error_code, error_message=sub.error_message)
            if inline:
                raise UpstreamRefused(sub.error_message or "refused by the provider",
                                      upstream_status=reply.status, upstream_code=sub.error_code)
            return moved
        # Proved not accepted: this secret is unhealthy; put the task back for another channel.
        if sub.outcome in (Outcome.AUTH, Outcome.NO_CREDIT):
            reason = (f"upstream rejected the secret (HTTP {reply.status})" if sub.outcome is Outcome.AUTH
                      else "upstream account out of credit")
            async with self.db.write() as conn:
                await chan.disable_secret(conn, secret_id, reason)
            log.warning("secret %s of channel %s disabled: %s", secret_id, channel_id, reason)
        else:
            await self._back_off_secret(secret_id, sub.retry_after, row.attempts)
        return await self._move(row, S.QUEUED, f"create not accepted: HTTP {reply.status}",
                                last_channel_id=channel_id,
                                next_poll_at=time.time() + self._backoff(row.attempts, sub.retry_after), **off)

    async def _cancel_upstream(self, adaptor: TaskAdaptor, secret_id: int | None, channel_id: int | None,
                               upstream_id: str | None) -> bool | None:
        """Ask the upstream to cancel a job, with the secret that made it. True: it did; False: it
        refused; None: no such ability, no job, no secret, or no answer."""
        if not upstream_id or not isinstance(adaptor, SupportsCancel) or secret_id not in self.router.secrets:
            return None
        account = self.account(secret_id, channel_id)
        try:
            reply = await self.upstream.send(account, adaptor.build_cancel(account, upstream_id))
        except (NotSent, OutcomeUnknown):
            return None
        return adaptor.parse_cancel(reply)

    async def _orphaned(self, row: Row[Any], adaptor: TaskAdaptor, upstream_id: str) -> None:
        """The task ended (cancelled, deadline) while its create was in flight: record the job the
        upstream made and cancel it there, so that it does not run on unaccounted."""
        async with self.db.write() as conn:
            await conn.execute(update(tasks).where(tasks.c.id == row.id, tasks.c.upstream_id.is_(None))
                               .values(upstream_id=upstream_id))
        if not await self._cancel_upstream(adaptor, row.secret_id, row.channel_id, upstream_id):
            log.warning("task %s ended during its create; its upstream job may not be cancelled", row.public_id)

    async def _back_off_secret(self, secret_id: int, retry_after: float | None, attempts: int) -> None:
        async with self.db.write() as conn:
            await chan.back_off(conn, secret_id, time.time() + self._backoff(attempts, retry_after))

    async def _ambiguous(self, row: Row[Any], reason: str) -> Row[Any] | None:
        return await self._move(row, S.AMBIGUOUS, reason, lease_owner=None, lease_until=None,
                         next_poll_at=time.time() + min(1.0, self.settings.ambiguity_grace))

    # ---------------------------------------------------------------- due work
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
        await self._cancel_upstream(adaptor, row.secret_id, row.channel_id, row.upstream_id)
        await self._move(row, S.FAILED, "deadline passed", error_code="DeadlineExceeded",
                         error_message="the task did not finish before its deadline")

    async def _reconcile(self, row: Row[Any], adaptor: TaskAdaptor) -> None:
        if not isinstance(adaptor, SupportsReconcile):
            await self._move(row, S.FAILED, "ambiguous create and the provider cannot be reconciled",
                             error_code="SubmitOutcomeUnknown",
                             error_message="the provider's reply to the create was lost")
            return
        account = self.account(row.secret_id, row.channel_id)
        upstream_request = json.loads(row.upstream_request)
        not_before = (row.submitted_at or row.created_at) - 5
        found: str | None = None
        try:
            for page in range(1, 6):
                reply = await self.upstream.send(account, adaptor.build_find(account, page))
                if reply.status != 200:
                    raise OutcomeUnknown(f"HTTP {reply.status}")
                ids, more = adaptor.parse_find(reply, upstream_request, row.marker, not_before)
                found = await self._first_unbound(row, ids)
                if found or not more:
                    break
        except (NotSent, OutcomeUnknown, ValueError) as exc:
            log.info("task %s: reconcile failed for now (%s)", row.public_id, exc)
            await self._reschedule(row, self._backoff(row.attempts))
            return
        if found:
            if not await self._bind(row, found):  # another task took that job meanwhile: look again
                await self._reschedule(row, min(1.0, self.settings.ambiguity_grace / 4))
        elif time.time() - (row.submitted_at or row.created_at) >= self.settings.ambiguity_grace:
            await self._move(row, S.QUEUED, "reconciled: no job upstream after the grace period",
                             next_poll_at=time.time(), lease_owner=None, lease_until=None)
        else:
            await self._reschedule(row, min(1.0, self.settings.ambiguity_grace / 4))

    async def _bind(self, row: Row[Any], upstream_id: str) -> bool:
        """Bind a reconciled task to a found job, unless another task of the same secret holds it.
        The check and the move share one transaction that holds the secret's row (SQLite: the one
        writer), so two tasks with the same request reconciling at once never take the same job."""
        async with self._tx() as conn:
            await conn.execute(select(channel_secrets.c.id).where(channel_secrets.c.id == row.secret_id)
                               .with_for_update())
            taken = await conn.scalar(select(tasks.c.id).where(
                tasks.c.secret_id == row.secret_id, tasks.c.upstream_id == upstream_id).limit(1))
            if taken is not None:
                return False
            moved = await store.move(conn, row, S.RUNNING, reason="reconciled: job found upstream",
                                     upstream_id=upstream_id, next_poll_at=time.time(), lease_owner=None,
                                     lease_until=None)
            if moved and row.callback_url:
                await self._hook(conn, row.id)
        if moved:
            self.notifier.changed(row.id)
        return True

    async def _first_unbound(self, row: Row[Any], ids: list[str]) -> str | None:
        """The first candidate job not already bound to another task on the same secret."""
        if not ids:
            return None
        async with self.db.read() as conn:
            taken = set((await conn.execute(select(tasks.c.upstream_id).where(
                tasks.c.secret_id == row.secret_id, tasks.c.upstream_id.in_(ids)))).scalars())
        return next((i for i in ids if i not in taken), None)

    async def _poll(self, row: Row[Any], adaptor: TaskAdaptor) -> None:
        account = self.account(row.secret_id, row.channel_id)
        try:
            reply = await self.upstream.send(account, adaptor.build_poll(account, row.upstream_id))
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
            retry_after = _retry_after(reply)
            log.info("task %s: poll answered HTTP %d; retrying", row.public_id, reply.status)
            await self._reschedule(row, self._backoff(1, retry_after) if retry_after else self._interval(adaptor))
            return
        try:
            progress = adaptor.parse_poll(reply)
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
            await self._reschedule(row, p.poll_after or self._interval(adaptor), **fields)
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
        saved: list[tuple[OutputSpec, dict[str, str], list[Any]]] = []
        try:
            for spec in specs:
                files: dict[str, str] = {}
                objs = []
                by_url: dict[str, str] = {}
                for field_name, url in spec.urls.items():
                    if url in by_url:
                        files[field_name] = by_url[url]
                        continue
                    obj = await rehost(self.upstream.session, url, self.storage, prefix)
                    crash_point("during_rehost")
                    files[field_name] = by_url[url] = obj.key
                    objs.append(obj)
                saved.append((spec, files, objs))
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
        now = time.time()
        async with self._tx() as conn:
            for idx, (spec, files, objs) in enumerate(saved):
                await conn.execute(insert(outputs).values(
                    task_id=row.id, idx=idx, public_id=new_public_id(adaptor.id_kind),
                    upstream_id=spec.upstream_id, kind=spec.kind, files=json.dumps(files),
                    meta=json.dumps(dict(spec.meta)), created_at=now))
                for obj in objs:
                    await conn.execute(insert(stored_objects).values(
                        key=obj.key, task_id=row.id, size=obj.size, sha256=obj.sha256,
                        content_type=obj.content_type, created_at=now))
            moved = await store.move(conn, row, S.SUCCEEDED, reason="results re-hosted", settle_amount=amount)
            if not moved:  # cancelled meanwhile: the cancel won; keep nothing of this attempt
                await conn.rollback()
            elif row.callback_url:
                await self._hook(conn, row.id)
        if moved:
            self.notifier.changed(row.id)
            self.on_queued()

    # ---------------------------------------------------------------- cancel
    async def cancel(self, key: ClientKey, public_id: str, provider: str | None = None) -> Row[Any]:
        row = await self.owned(key, public_id, provider)
        if S(row.state) in TERMINAL:
            raise Conflict(f"the task is already {row.state}")
        outcome = await self._cancel_upstream(self.adaptors[row.provider], row.secret_id, row.channel_id,
                                              row.upstream_id)
        if outcome is not True and row.upstream_id:
            log.info("task %s: upstream cancel not confirmed; no longer tracking it", public_id)
        for _ in range(5):  # the row may move under us (a poll); cancel from wherever it is now
            if await self._move(row, S.CANCELLED, "cancelled by the client", upstream_state="canceled"):
                break
            row = await self._row(row.id)
            if S(row.state) in TERMINAL:
                raise Conflict(f"the task is already {row.state}")
        return await self._row(row.id)


def _retry_after(reply: HttpReply) -> float | None:
    raw = reply.headers.get("Retry-After") or reply.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _parse_submit(adaptor: TaskAdaptor, reply: HttpReply) -> Submitted:
    try:
        sub = adaptor.parse_submit(reply)
    except (ValueError, KeyError, TypeError):
        # A 2xx we cannot read may hide an accepted job; anything else proves nothing was made.
        return Submitted(outcome=Outcome.AMBIGUOUS if 200 <= reply.status < 300 else Outcome.RETRY)
    if sub.retry_after is None and sub.outcome is Outcome.RETRY:
        return Submitted(outcome=sub.outcome, retry_after=_retry_after(reply), error_code=sub.error_code,
                         error_message=sub.error_message)
    return sub

