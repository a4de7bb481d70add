"""Token billing of synchronous calls, off the request path.

- A limited key's reservation (the call's upper bound) is taken from this process's credit lease on
  the key (gengate/core/leases.py): in memory, with a database transaction only when the lease must
  be claimed or extended. A reservation no lease can cover is refused with 429 `insufficient_quota`;
  nothing is sent upstream then.
- Settlement and the per-request usage record are queued and written by one background writer in
  batches (group commit: one transaction per batch, whatever the traffic): the usage records, one
  `usage` ledger entry per key and batch (the sum of its calls' charges; each call has its usage
  record), and for a limited key the same sum taken from `keys.credits` and from its lease.
- Bounds. A charge is never more than its reservation and a reservation never more than the lease
  holds free; leases never hold more than the key's credits: a limited key never overspends, in one
  process or many (the leases' module says what a crash or a lost database changes).
- Crash safety. Reservations are never written: nothing is held in the database for a call in
  flight, so a crash can strand no reservation (its lease expires) and no call is ever charged twice
  (a batch is one transaction, written once). `close()` writes what is queued (SIGTERM loses no
  settled charge); a SIGKILL loses the charges and usage records of the batch not yet written (at
  most the last `linger` window plus the calls in flight): an undercharge, never a double charge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, update

from gengate.core import metrics
from gengate.core.leases import CreditLeases, Lease
from gengate.db.engine import Database
from gengate.db.models import keys, ledger_entries, usage_records

log = logging.getLogger("gengate.openai.billing")

_TAKE = (update(keys).where(keys.c.id == bindparam("kid"), keys.c.credits.is_not(None))
         .values(credits=keys.c.credits - bindparam("charged")))
_LEDGER = insert(ledger_entries)
_USAGE = insert(usage_records)

@dataclass(slots=True)
class UsageRecord:
    key_id: int
    route: str
    model: str
    price_model: str
    limited: bool  # the key has a balance (a reservation was taken)
    reserved: int = 0
    lease: Lease | None = None  # what the reservation was taken from
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

    def __init__(self, db: Database, leases: CreditLeases, max_batch: int = 500, linger: float = 0.02) -> None:
        self.db, self.max_batch, self.linger = db, max_batch, linger
        self.leases = leases
        self._queue: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, record: UsageRecord) -> None:
        """Queue a finished call (never awaits: safe in `finally` of a cancelled request)."""
        record.latency_ms = (time.perf_counter() - record.started) * 1000
        if record.limited:
            record.credits = max(0, min(record.credits, record.reserved))
            if record.lease is not None:
                self.leases.settle(record.lease, record.reserved, record.credits)
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
        leased: dict[Lease, int] = defaultdict(int)  # and each lease's amount
        for r in batch:
            if r.credits:
                used[r.key_id] += r.credits
                if r.limited:
                    limited[r.key_id] += r.credits
                    if r.lease is not None:
                        leased[r.lease] += r.credits
        entries = [{"key_id": k, "task_id": None, "kind": "usage", "amount": v, "created_at": now}
                   for k, v in used.items()]
        async with self.db.write() as conn:
            await conn.execute(_USAGE, [r.row(now) for r in batch])
            if entries:
                await conn.execute(_LEDGER, entries)
            for key_id, charged in sorted(limited.items()):  # one lock order for every process: keys,
                await conn.execute(_TAKE, {"kid": key_id, "charged": charged})
            for lease, charged in sorted(leased.items(), key=lambda item: item[0].id):  # then leases
                await self.leases.charge(conn, lease, charged)
        for lease, charged in leased.items():
            self.leases.written(lease, charged)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
