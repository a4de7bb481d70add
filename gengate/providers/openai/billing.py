"""Token billing of synchronous calls, off the request path where it can be.

- A limited key's reservation (the call's upper bound) is one conditional UPDATE plus its ledger
  entry, before anything is sent upstream: a key never spends more than it holds, on any number of
  processes. An unlimited key reserves nothing (no database round trip on the request path).
- Settlement and the per-request usage record are queued and written by one background writer in
  batches (group commit: one transaction per batch, whatever the traffic). A limited key gets a
  `settle` entry (what was charged minus what was reserved) and the difference back; an unlimited
  key one `usage` entry per batch (the sum of its calls in it; each call has its usage record).
  `close()` writes what is queued (SIGTERM loses no settled charge).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core.errors import InsufficientCredits
from gengate.db.engine import Database
from gengate.db.models import keys, ledger_entries, usage_records

log = logging.getLogger("gengate.openai.billing")

_TAKE = (update(keys).where(keys.c.id == bindparam("kid"), keys.c.credits.is_not(None),
                            keys.c.credits >= bindparam("amount"))
         .values(credits=keys.c.credits - bindparam("amount")))
_GIVE_BACK = (update(keys).where(keys.c.id == bindparam("kid"), keys.c.credits.is_not(None))
              .values(credits=keys.c.credits + bindparam("back")))
_LEDGER = insert(ledger_entries)
_USAGE = insert(usage_records)


async def reserve(db: Database, key_id: int, amount: int) -> None:
    """Take `amount` from a limited key, or raise InsufficientCredits (nothing sent upstream yet)."""

    async def take(conn: AsyncConnection) -> bool:
        res = await conn.execute(_TAKE, {"kid": key_id, "amount": amount})
        if not res.rowcount:
            return False
        await conn.execute(_LEDGER, {"key_id": key_id, "task_id": None, "kind": "reserve", "amount": amount,
                                     "created_at": time.time()})
        return True

    async with db.write() as conn:
        if not await take(conn):
            raise InsufficientCredits("You exceeded your current quota, please check your plan and billing "
                                      "details.", code="insufficient_quota")


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
        self._queue: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, record: UsageRecord) -> None:
        """Queue a finished call (never awaits: safe in `finally` of a cancelled request)."""
        record.latency_ms = (time.perf_counter() - record.started) * 1000
        if record.limited:
            record.credits = max(0, min(record.credits, record.reserved))
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
        entries: list[dict[str, Any]] = []
        give_back: dict[int, int] = defaultdict(int)
        used: dict[int, int] = defaultdict(int)  # unlimited keys: one `usage` entry per key per batch
        for r in batch:
            if r.limited:
                entries.append({"key_id": r.key_id, "task_id": None, "kind": "settle",
                                "amount": r.credits - r.reserved, "created_at": now})
                if r.reserved > r.credits:
                    give_back[r.key_id] += r.reserved - r.credits
            elif r.credits:
                used[r.key_id] += r.credits
        entries.extend({"key_id": k, "task_id": None, "kind": "usage", "amount": v, "created_at": now}
                       for k, v in used.items())
        async with self.db.write() as conn:
            await conn.execute(_USAGE, [r.row(now) for r in batch])
            if entries:
                await conn.execute(_LEDGER, entries)
            for key_id, back in sorted(give_back.items()):
                await conn.execute(_GIVE_BACK, {"kid": key_id, "back": back})

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
