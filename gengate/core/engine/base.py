"""What every job of the engine shares: its wiring, transactions, the one way a task moves, timings,
and the account and reference an upstream call is made with."""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.config import Settings
from gengate.core import channels as chan
from gengate.core import tasks as store
from gengate.core.adaptor import Account, HttpReply, TaskAdaptor, TaskRef, TaskRenderer
from gengate.core.channels import Router
from gengate.core.crash import crash_point
from gengate.core.engine.batch import PollBatcher
from gengate.core.ids import digits, prefixed, uuid4
from gengate.core.notify import Notifier
from gengate.core.pricing import PriceTable
from gengate.core.states import TERMINAL, TaskState
from gengate.core.upstream import UpstreamClient
from gengate.db.engine import Database
from gengate.storage.base import Storage
from gengate.storage.signing import UrlSigner

S = TaskState


def new_public_id(kind: str) -> str:
    """An id in the form its family shows: `digitsN`, `uuid`, or `<prefix>` (prefix_ + random)."""
    if kind.startswith("digits"):
        return digits(int(kind[6:] or 18))
    if kind == "uuid":
        return uuid4()
    return prefixed(kind + "_")


@dataclass
class Tx:
    """One write transaction of the engine, and whether it queued a webhook (the sender is woken
    after this transaction commits; concurrent transactions each keep their own flag)."""

    conn: AsyncConnection
    webhook_queued: bool = False


class EngineBase:
    def __init__(self, *, settings: Settings, db: Database, router: Router, upstream: UpstreamClient,
                 storage: Storage, signer: UrlSigner, adaptors: Mapping[str, TaskAdaptor],
                 views: Mapping[str, TaskRenderer] | None = None, prices: PriceTable, notifier: Notifier,
                 owner: str) -> None:
        self.settings = settings
        self.db = db
        self.router = router
        self.upstream = upstream
        self.storage = storage
        self.signer = signer
        self.adaptors = adaptors
        self.views: Mapping[str, TaskRenderer] = views or {}
        self.prices = prices
        self.notifier = notifier
        self.owner = owner
        self.on_queued: Callable[[], None] = lambda: None  # the poller's wake-up
        self.on_webhook: Callable[[], None] = lambda: None  # the webhook sender's wake-up
        self.on_config: Callable[[], None] = lambda: None  # a secret was disabled: caches reload everywhere
        # Polls of one secret due together share one upstream call (adaptors with SupportsBatchPoll);
        # the window is at most a poller tick, so the tasks leased in one round join one batch.
        self.batches = PollBatcher(upstream, window=min(settings.poller_tick, settings.poll_interval / 10))

    def renderer(self, row: Row[Any]) -> TaskRenderer:
        """The view a task was created through (its family's shape), else its provider's own."""
        return self.views.get(row.origin or "") or self.adaptors[row.provider]

    async def _row(self, task_id: int) -> Row[Any]:
        async with self.db.read() as conn:
            row = await store.get_row(conn, task_id)
        assert row is not None
        return row

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Tx]:
        """A write transaction that wakes the webhook sender after it commits, if it queued one."""
        async with self.db.write() as conn:
            tx = Tx(conn)
            yield tx
        if tx.webhook_queued:
            self.on_webhook()

    async def _hook(self, tx: Tx, task_id: int) -> None:
        """Queue the webhook of a change in its transaction: the views job (views.py) implements it."""
        raise NotImplementedError

    # ---------------------------------------------------------------- moves
    async def _move(self, row: Row[Any], new: TaskState, reason: str, **fields: Any) -> Row[Any] | None:
        if new in TERMINAL:
            crash_point("before_ledger")
        async with self._tx() as tx:
            moved = await store.move(tx.conn, row, new, reason=reason, **fields)
            if moved and row.callback_url:
                await self._hook(tx, row.id)
        if moved:
            self.notifier.changed(row.id)
            if new in TERMINAL or new is S.QUEUED:
                self.on_queued()  # a slot may have been freed
        return moved

    async def _reschedule(self, row: Row[Any], delay: float, **fields: Any) -> None:
        at = min(time.time() + delay, row.deadline_at)
        async with self._tx() as tx:
            touched = await store.touch(tx.conn, row, next_poll_at=at, lease_owner=None, lease_until=None, **fields)
            if touched and fields and row.callback_url:
                await self._hook(tx, row.id)
        if fields:
            self.notifier.changed(row.id)

    # ---------------------------------------------------------------- timings
    def _interval(self, adaptor: TaskAdaptor) -> float:
        base = getattr(adaptor, "poll_interval", None) or self.settings.poll_interval
        j = self.settings.poll_jitter
        return base * random.uniform(1 - j, 1 + j)

    def _aligned_interval(self, adaptor: TaskAdaptor) -> float:
        """The wait before the next poll of a batch-polled task: up to the next point of a grid of half
        intervals shared by every task (between half and one interval), so that the tasks of a
        secret fall due together and go upstream in one call (engine/batch.py)."""
        step = (getattr(adaptor, "poll_interval", None) or self.settings.poll_interval) / 2
        now = time.time()
        return math.ceil((now + step) / step) * step - now

    def _submit_timeout(self, provider: str) -> float:
        """The read timeout of a create: GENGATE_SUBMIT_TIMEOUTS for the provider, else the adaptor's
        own `submit_timeout` (a provider whose create blocks, e.g. Suno lyrics), else the default."""
        if provider in self.settings.submit_timeouts:
            return self.settings.submit_timeouts[provider]
        own = getattr(self.adaptors.get(provider), "submit_timeout", None)
        return float(own) if own else self.settings.submit_timeout

    def _backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """How long one task waits before its next try (the secret's own backoff is separate)."""
        if retry_after is not None:
            return min(max(retry_after, 0.1), self.settings.backoff_max)
        delay = self.settings.backoff_base * (2 ** min(attempts, 10))
        return min(delay, self.settings.backoff_max) * random.uniform(0.8, 1.2)

    async def _secret_failed(self, secret_id: int, retry_after: float | None = None, back_off: bool = True) -> None:
        async with self.db.write() as conn:
            await chan.record_failure(conn, secret_id, time.time(), base=self.settings.backoff_base,
                                      cap=self.settings.backoff_max, retry_after=retry_after, back_off=back_off)

    # ---------------------------------------------------------------- upstream calls
    def account(self, secret_id: int, channel_id: int) -> Account:
        secret = self.router.secrets[secret_id]
        channel = self.router.channels[channel_id]
        return Account(base_url=channel.base_url, secret=secret.value, options=channel.options,
                       provider=channel.provider, channel=channel.name)

    def ref(self, row: Row[Any]) -> TaskRef:
        return TaskRef(upstream_id=row.upstream_id, action=row.action, model=row.model,
                       upstream_request=json.loads(row.upstream_request), marker=row.marker or "",
                       units=json.loads(row.units or "{}"))

    @staticmethod
    def new_marker() -> str:
        return secrets.token_hex(8)


def retry_after(reply: HttpReply) -> float | None:
    raw = reply.headers.get("Retry-After") or reply.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
