"""Credit leases: a limited key's synchronous calls are paid without a database write per call, and
without overspending across any number of processes.

- A process serving a limited key claims a slice of the key's balance: a `credit_leases` row (owner,
  amount, expiry), taken in one short transaction under the key's row lock from what is free, the
  key's credits minus every live lease (its own included). Calls then reserve from the lease in
  memory (no await on the hot path); when it runs short the process extends it in the same kind of
  transaction, sized by its recent use (twice what it reserved since the last claim, at least four
  calls' worth, never more than half of what is free), so a busy key claims rarely.
- The batch writer (gengate/providers/openai/billing.py) takes each batch's charges from
  `keys.credits` and from the lease's amount in one transaction: what is free for others does not move.
  `keys.credits` stays the key's whole balance (what every reader shows); a lease only marks part of
  it as spoken for.
- A key idle for a second gives its lease back (the row deleted; nothing to pay back: a lease never
  took credits). A clean shutdown gives back every lease of the process.
- The task engine's reservations and other charges (gengate/core/ledger.py) take only what no live
  lease holds, under the same row lock.

Bounds. A reservation never exceeds what its lease holds free, a charge never exceeds its
reservation, and the live leases of a key never add up to more than its credits: so a limited key
never overspends, whatever the number of processes. The price is that a call can be refused while
another process still holds an unused slice (at most until that process's next idle second).

Crashes. A lease carries an expiry, renewed while its process uses it; a process that dies leaves
its lease to expire after `ttl` seconds, when the credits are free again (its charges not yet written
are lost with it: an undercharge, never a double charge). A process that cannot renew (database away)
stops admitting calls on its lease a third of the ttl before it would expire, so a lease that another
process may have swept backs only the calls that were already in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gengate.core import metrics
from gengate.core.errors import InsufficientCredits
from gengate.db.engine import Database
from gengate.db.models import credit_leases, keys

log = logging.getLogger("gengate.credits")

IDLE_SECONDS = 1.0  # a lease whose key held nothing for this long is given back
MIN_CALLS = 4  # a claim takes at least this many of the asking call's reservations (when free)


def out_of_quota() -> InsufficientCredits:
    return InsufficientCredits("You exceeded your current quota, please check your plan and billing details.",
                               code="insufficient_quota")


def leased(key_id: int | ColumnElement[int], now: float | None) -> ColumnElement[int]:
    """What a key's leases hold (the live ones at `now`; None: every row), as a scalar subquery."""
    where = [credit_leases.c.key_id == key_id]
    if now is not None:
        where.append(credit_leases.c.expires_at > now)
    return select(func.coalesce(func.sum(credit_leases.c.amount), 0)).where(*where).scalar_subquery()


async def lock_key(conn: AsyncConnection, key_id: int) -> int | bool | None:
    """Lock the key's row for the rest of the transaction (PostgreSQL; SQLite has one writer) and read
    its credits: None when unlimited, False when there is no such key."""
    row = (await conn.execute(select(keys.c.credits).where(keys.c.id == key_id).with_for_update())).first()
    return False if row is None else row.credits


@dataclass(slots=True, eq=False)
class Lease:
    key_id: int
    id: int
    amount: int  # the row's amount: claimed, minus the charges written
    held: int = 0  # reservations in flight plus charges not yet written
    usable_until: float = 0.0  # monotonic; no reservation on it after that (moved on at each renewal)
    used_at: float = 0.0  # monotonic time of the last reservation or settlement
    taken: int = 0  # reserved since the last claim (sizes the next one)
    live: bool = True  # False once given back or lost

    @property
    def free(self) -> int:
        return self.amount - self.held

    def covers(self, amount: int, now: float) -> bool:
        return self.live and now < self.usable_until and self.free >= amount


class CreditLeases:
    """This process's leases, one per limited key it serves."""

    def __init__(self, db: Database, owner: str, ttl: float = 30.0) -> None:
        self.db, self.owner, self.ttl = db, owner[:64], ttl
        self._leases: dict[int, Lease] = {}
        self._claiming: dict[int, asyncio.Lock] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._closed = False
        self._warned = False

    def lease(self, key_id: int) -> Lease | None:
        return self._leases.get(key_id)

    async def reserve(self, key_id: int, amount: int) -> Lease | None:
        """Hold `amount` for a call, or raise InsufficientCredits (nothing sent upstream yet). None: the
        key turned unlimited (nothing to hold)."""
        lease = self._leases.get(key_id)
        if lease is None or not lease.covers(amount, time.monotonic()):
            lock = self._claiming.setdefault(key_id, asyncio.Lock())
            async with lock:  # one claim per key at a time; the others wait and use its result
                lease = self._leases.get(key_id)
                if lease is None or not lease.covers(amount, time.monotonic()):
                    lease = await self._claim(key_id, amount, lease)
                    if lease is None:
                        return None
        lease.held += amount
        lease.taken += amount
        lease.used_at = time.monotonic()
        metrics.CREDITS_RESERVED.inc(amount)
        return lease

    @staticmethod
    def settle(lease: Lease, reserved: int, charged: int) -> None:
        """A call ended: what it did not use is free at once; `charged` stays held until written."""
        lease.held -= reserved - charged
        lease.used_at = time.monotonic()

    @staticmethod
    async def charge(conn: AsyncConnection, lease: Lease, charged: int) -> None:
        """In the batch writer's transaction: the charges written come off the lease's amount too."""
        await conn.execute(update(credit_leases).where(credit_leases.c.id == lease.id)
                           .values(amount=credit_leases.c.amount - charged))

    @staticmethod
    def written(lease: Lease, charged: int) -> None:
        """After that transaction committed."""
        lease.held -= charged
        lease.amount -= charged

    async def _claim(self, key_id: int, amount: int, lease: Lease | None) -> Lease | None:
        mine = lease if lease is not None and lease.live else None
        hint = max(MIN_CALLS * amount, 2 * (mine.taken if mine else 0))
        started = time.monotonic()
        async with self.db.write() as conn:
            credits = await lock_key(conn, key_id)
            if credits is None:
                return None
            if credits is False:
                raise out_of_quota()
            now = time.time()
            expired = credit_leases.c.expires_at <= now
            if mine is not None:  # ours is never swept here: this process still answers for it
                expired = expired & (credit_leases.c.id != mine.id)
                if await conn.scalar(select(credit_leases.c.amount).where(credit_leases.c.id == mine.id)) is None:
                    mine.live = False  # swept by another process while we could not renew it
                    mine = None
            await conn.execute(delete(credit_leases).where(credit_leases.c.key_id == key_id, expired))
            free = int(credits) - int(await conn.scalar(select(leased(key_id, None))) or 0)
            shortfall = amount - (mine.free if mine else 0)
            if shortfall > free:
                raise out_of_quota()
            extra = max(shortfall, min(free // 2, hint)) if shortfall > 0 else 0
            if mine is not None:
                await conn.execute(update(credit_leases).where(credit_leases.c.id == mine.id)
                                   .values(amount=credit_leases.c.amount + extra, expires_at=now + self.ttl))
            else:
                lease_id = await conn.scalar(insert(credit_leases).values(
                    key_id=key_id, owner=self.owner, amount=extra, expires_at=now + self.ttl, created_at=now)
                    .returning(credit_leases.c.id))
        if mine is None:
            mine = self._leases[key_id] = Lease(key_id, int(lease_id), extra)
        else:
            mine.amount += extra
        mine.usable_until = started + self.ttl * 2 / 3
        mine.taken = 0
        if self._keeper is None and not self._closed:
            self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="credit-leases")
        return mine

    async def _keep(self) -> None:
        """Give back idle leases, renew the used ones; ends when none is left (the next claim starts it)."""
        tick = min(0.5, self.ttl / 6)
        while self._leases and not self._closed:
            await asyncio.sleep(tick)
            for lease in list(self._leases.values()):
                claiming = self._claiming.get(lease.key_id)
                if claiming is not None and claiming.locked():
                    continue
                try:
                    if lease.held == 0 and time.monotonic() - lease.used_at > IDLE_SECONDS:
                        await self._give_back(lease)
                    elif lease.usable_until - time.monotonic() < self.ttl / 3:
                        await self._renew(lease)
                    self._warned = False
                except Exception as exc:  # the database away: the lease expires by itself if it stays away
                    if not self._warned:
                        log.warning("credit leases: %s", exc)
                        self._warned = True
        for key_id in [k for k, lock in self._claiming.items() if k not in self._leases and not lock.locked()]:
            del self._claiming[key_id]
        self._keeper = None

    async def _give_back(self, lease: Lease) -> None:
        lease.live = False  # no await before this line: no reservation can slip in
        if self._leases.get(lease.key_id) is lease:
            del self._leases[lease.key_id]
        async with self.db.write() as conn:
            await conn.execute(delete(credit_leases).where(credit_leases.c.id == lease.id))

    async def _renew(self, lease: Lease) -> None:
        started = time.monotonic()
        async with self.db.write() as conn:
            res = await conn.execute(update(credit_leases).where(credit_leases.c.id == lease.id)
                                     .values(expires_at=time.time() + self.ttl))
        if res.rowcount:
            lease.usable_until = started + self.ttl * 2 / 3
        else:  # swept by another process: the next reservation claims a new one
            lease.live = False
            if self._leases.get(lease.key_id) is lease:
                del self._leases[lease.key_id]

    async def close(self) -> None:
        """Give back every lease of this process (after the writers flushed their charges)."""
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        for lease in self._leases.values():
            lease.live = False
        self._leases.clear()
        try:
            async with self.db.write() as conn:
                await conn.execute(delete(credit_leases).where(credit_leases.c.owner == self.owner))
        except Exception as exc:
            log.warning("credit leases not given back at shutdown (they expire in %.0f s): %s", self.ttl, exc)
