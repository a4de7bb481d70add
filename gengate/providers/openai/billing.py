"""Token billing of synchronous calls, off the request path.

- A limited key's reservation (the call's upper bound) is taken from this process's view of the
  key's balance (`Balances`): the balance last read from the database minus what this process holds
  (reservations in flight, charges not yet written). Only a reservation the view cannot cover reads
  the database again (synchronously) before the call is refused with 429 `insufficient_quota`;
  nothing is sent upstream then. A view is read again when its key has been idle for a second, and
  every batch write refreshes it, so it follows grants and other processes' spending.
- Settlement and the per-request usage record are queued and written by one background writer in
  batches (group commit: one transaction per batch, whatever the traffic): the usage records, one
  `usage` ledger entry per key and batch (the sum of its calls' charges; each call has its usage
  record), and for a limited key the same sum taken from `keys.credits`.
- Bounds. In one process a key never spends more than it holds: reservations are checked against
  the view and the view counts every unwritten charge. Across processes each process decides on its
  own view, refreshed at every batch (~20 ms under traffic), after a second idle and before any
  refusal; the database balance can then end below zero by what the other processes admitted on
  views that did not yet show each other's charges (a burst on a nearly empty key that starts on
  several processes at once). A charge is never more than its reservation.
- Crash safety. Reservations are never written: nothing is held in the database for a call in
  flight, so a crash can strand no reservation and no call is ever charged twice (a batch is one
  transaction, written once). `close()` writes what is queued (SIGTERM loses no settled charge); a
  SIGKILL loses the charges and usage records of the batch not yet written (at most the last
  `linger` window plus the calls in flight): an undercharge, never a double charge.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from gengate.core import metrics
from gengate.core.errors import InsufficientCredits
from gengate.db.engine import Database
from gengate.db.models import keys, ledger_entries, usage_records

log = logging.getLogger("gengate.openai.billing")

_CREDITS = select(keys.c.credits).where(keys.c.id == bindparam("kid"))
_TAKE = (update(keys).where(keys.c.id == bindparam("kid"), keys.c.credits.is_not(None))
         .values(credits=keys.c.credits - bindparam("charged")).returning(keys.c.credits))
_LEDGER = insert(ledger_entries)
_USAGE = insert(usage_records)
UNLIMITED = 1 << 62  # the view of a key that turned unlimited after it was cached as limited
IDLE_SECONDS = 1.0  # a view whose key held nothing for this long is read again before its next use
FORGET_SECONDS = 60.0


def out_of_quota() -> InsufficientCredits:
    return InsufficientCredits("You exceeded your current quota, please check your plan and billing details.",
                               code="insufficient_quota")


@dataclass(slots=True)
class _View:
    known: int = 0  # keys.credits as last read (every charge this process wrote is in it)
    held: int = 0  # reservations in flight plus charges not yet written
    read_at: float = 0.0  # monotonic time of the last read (or batch write)
    used_at: float = 0.0  # monotonic time held last went to zero or a reservation was taken


class Balances:
    """This process's view of its limited keys' balances (one per database: every family's writer
    settles into the same view)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._views: dict[int, _View] = {}
        self._swept = time.monotonic()

    def view(self, key_id: int) -> _View | None:
        return self._views.get(key_id)

    async def reserve(self, key_id: int, amount: int) -> None:
        """Hold `amount` for a call, or raise InsufficientCredits (nothing sent upstream yet)."""
        now = time.monotonic()
        view = self._views.get(key_id)
        fresh = False
        if view is None or (view.held == 0 and now - view.used_at > IDLE_SECONDS):
            view = await self._read(key_id, now)
            fresh = True
        if view.known - view.held < amount:
            if not fresh:  # someone may have granted credits, or a batch given back: read before refusing
                view = await self._read(key_id, now)
            if view.known - view.held < amount:
                raise out_of_quota()
        view.held += amount
        view.used_at = now
        metrics.CREDITS_RESERVED.inc(amount)

    def settle(self, key_id: int, reserved: int, charged: int) -> None:
        """A call ended: what it did not use is free at once; `charged` stays held until written."""
        view = self._views.get(key_id)
        if view is not None:
            view.held -= reserved - charged
            view.used_at = time.monotonic()

    def written(self, key_id: int, charged: int, credits: int | None) -> None:
        """A batch wrote (committed) `charged` for the key; `credits`: the balance it returned."""
        view = self._views.get(key_id)
        if view is not None:
            view.held -= charged
            view.known = UNLIMITED if credits is None else int(credits)
            view.read_at = time.monotonic()

    def forget_idle(self) -> None:
        now = time.monotonic()
        if now - self._swept < FORGET_SECONDS:
            return
        self._swept = now
        for key_id in [k for k, v in self._views.items() if v.held == 0 and now - v.used_at > FORGET_SECONDS]:
            del self._views[key_id]

    async def _read(self, key_id: int, started: float) -> _View:
        """The key's balance read again. No lock against the batch writer: a batch in flight during
        the read is still counted in `held`, so a read that already sees it under-estimates the
        balance (never over); a read that may predate a batch `written` meanwhile is dropped."""
        view = self._views.get(key_id)
        if view is not None and view.read_at >= started:  # read by a concurrent call meanwhile
            return view
        begun = time.monotonic()
        credits = await self.db.run_read(lambda conn: conn.scalar(_CREDITS, {"kid": key_id}))
        view = self._views.get(key_id) or self._views.setdefault(key_id, _View())
        if view.read_at < begun:
            view.known = UNLIMITED if credits is None else int(credits)
            view.read_at = time.monotonic()
        return view


_BALANCES: weakref.WeakKeyDictionary[Database, Balances] = weakref.WeakKeyDictionary()


def balances_for(db: Database) -> Balances:
    balances = _BALANCES.get(db)
    if balances is None:
        balances = _BALANCES[db] = Balances(db)
    return balances


@dataclass(slots=True)
class UsageRecord:
    key_id: int
    route: str
    model: str
    price_model: str
    limited: bool  # the key has a balance (a reservation was taken)
    reserved: int = 0
    started: float = field(default_factory=time.perf_counter)
    channel_id: int | None = None
    status: int = 200
    input_tokens: int = 0
    output_tokens: int = 0
    credits: int = 0  # charged, at most `reserved` for a limited key
    stream: bool = False
    error: str | None = None
    latency_ms: float = 0.0

    def row(self, now: float) -> dict[str, Any]:
        return {"created_at": now, "key_id": self.key_id, "route": self.route, "model": self.model[:200],
                "price_model": self.price_model[:200], "channel_id": self.channel_id, "status": self.status,
                "latency_ms": round(self.latency_ms, 3), "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "credits": self.credits, "stream": self.stream,
                "error": self.error[:500] if self.error else None}


CLOSE_ATTEMPTS = 10


class UsageWriter:
    """Queue of finished calls, written in batches by one background task."""

    def __init__(self, db: Database, max_batch: int = 500, linger: float = 0.02) -> None:
        self.db, self.max_batch, self.linger = db, max_batch, linger
        self.balances = balances_for(db)
        self._queue: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, record: UsageRecord) -> None:
        """Queue a finished call (never awaits: safe in `finally` of a cancelled request)."""
        record.latency_ms = (time.perf_counter() - record.started) * 1000
        if record.limited:
            record.credits = max(0, min(record.credits, record.reserved))
            if record.reserved:
                self.balances.settle(record.key_id, record.reserved, record.credits)
                if record.reserved > record.credits:
                    metrics.CREDITS_REFUNDED.inc(record.reserved - record.credits)
        if record.credits > 0:
            metrics.CREDITS_SETTLED.inc(record.credits)
        self._queue.append(record)
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="openai-usage-writer")
        if len(self._queue) == 1 or len(self._queue) >= self.max_batch:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._closing and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.linger)  # let concurrent calls join this batch
            await self.flush()
            if self._closing:
                return

    async def flush(self) -> None:
        """Write everything queued. A failed batch goes back to the front of the queue and is tried
        again (the database may be away for a while); at shutdown, for at most `CLOSE_ATTEMPTS` tries."""
        failures = 0
        while self._queue:
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                await self._write(batch)
                failures = 0
            except Exception as exc:
                self._queue[:0] = batch
                failures += 1
                log.warning("writing %d usage records failed (attempt %d): %s", len(batch), failures, exc)
                if self._closing and failures >= CLOSE_ATTEMPTS:
                    log.error("%d usage records not written at shutdown", len(self._queue))
                    return
                await asyncio.sleep(min(0.2 * failures, 5.0))

    async def _write(self, batch: list[UsageRecord]) -> None:
        now = time.time()
        used: dict[int, int] = defaultdict(int)  # one `usage` entry per key per batch
        limited: dict[int, int] = defaultdict(int)  # what each limited key's balance loses
        for r in batch:
            if r.credits:
                used[r.key_id] += r.credits
                if r.limited:
                    limited[r.key_id] += r.credits
        entries = [{"key_id": k, "task_id": None, "kind": "usage", "amount": v, "created_at": now}
                   for k, v in used.items()]
        left: dict[int, int | None] = {}
        async with self.db.write() as conn:
            await conn.execute(_USAGE, [r.row(now) for r in batch])
            if entries:
                await conn.execute(_LEDGER, entries)
            for key_id, charged in sorted(limited.items()):  # one lock order for every process
                left[key_id] = await conn.scalar(_TAKE, {"kid": key_id, "charged": charged})
        for key_id, charged in limited.items():
            self.balances.written(key_id, charged, left[key_id])
        self.balances.forget_idle()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
