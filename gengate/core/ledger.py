"""Credits: reserve at accept, settle at success, refund at failure — each once, in the caller's transaction.

Every balance change is a `ledger_entries` row whose `amount` is what the key was charged (+) or given
back (-). A key's balance is its grant minus the sum of its entries. The unique (task, kind) constraint
makes a second settle or refund of one task impossible in the database itself.
"""

from __future__ import annotations

import time

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core import metrics
from gengate.core.errors import InsufficientCredits
from gengate.core.leases import leased, lock_key
from gengate.db.models import keys, ledger_entries

_INSERT_ENTRY = insert(ledger_entries)


async def _charge(conn: AsyncConnection, key_id: int, amount: int) -> bool:
    """Take `amount` from a limited key (give back when negative). Unlimited keys always succeed.
    Only what no live credit lease holds can be taken (gengate/core/leases.py): the key's row is
    locked first, so the check below sees every lease committed before it."""
    if amount == 0:
        return True
    stmt = update(keys).where(keys.c.id == key_id, keys.c.credits.is_not(None))
    if amount > 0:
        await lock_key(conn, key_id)
        stmt = stmt.where(keys.c.credits - leased(keys.c.id, time.time()) >= amount)
    res = await conn.execute(stmt.values(credits=keys.c.credits - amount))
    if res.rowcount:
        return True
    unlimited = await conn.scalar(select(keys.c.credits.is_(None)).where(keys.c.id == key_id))
    return bool(unlimited)


async def reserve(conn: AsyncConnection, key_id: int, task_id: int, amount: int, *, unlimited: bool = False) -> None:
    if not unlimited and not await _charge(conn, key_id, amount):
        raise InsufficientCredits("insufficient credits")
    await _entry(conn, key_id, task_id, "reserve", amount)
    metrics.CREDITS_RESERVED.inc(max(amount, 0))


async def settle(conn: AsyncConnection, key_id: int, task_id: int, reserved: int, actual: int) -> int:
    """Charge `actual` (capped at the reservation) and give back the rest. Returns the settled amount."""
    actual = max(0, min(actual, reserved))
    await _entry(conn, key_id, task_id, "settle", actual - reserved)
    await _charge(conn, key_id, actual - reserved)
    metrics.CREDITS_SETTLED.inc(actual)
    if reserved > actual:
        metrics.CREDITS_REFUNDED.inc(reserved - actual)
    return actual


async def refund(conn: AsyncConnection, key_id: int, task_id: int, reserved: int) -> None:
    await _entry(conn, key_id, task_id, "refund", -reserved)
    metrics.CREDITS_REFUNDED.inc(max(reserved, 0))
    await _charge(conn, key_id, -reserved)


async def charge_call(conn: AsyncConnection, key_id: int, amount: int) -> None:
    """The price of one synchronous call that has succeeded (URL analysis, say): taken at once, as a
    `usage` entry with no task. Raises InsufficientCredits, charging nothing, when a limited key
    cannot pay it."""
    if not await _charge(conn, key_id, amount):
        raise InsufficientCredits("insufficient credits")
    await _entry(conn, key_id, None, "usage", amount)
    metrics.CREDITS_SETTLED.inc(max(amount, 0))


async def _entry(conn: AsyncConnection, key_id: int, task_id: int | None, kind: str, amount: int) -> None:
    # Inserted first: if a settle or refund already exists, the unique constraint aborts the whole
    # transaction, including the state change that called it.
    await conn.execute(_INSERT_ENTRY, {"key_id": key_id, "task_id": task_id, "kind": kind, "amount": amount,
                                       "created_at": time.time()})


async def spent(conn: AsyncConnection, key_id: int) -> int:
    """Net credits charged to a key over all its tasks (grants excluded)."""
    total = await conn.scalar(select(func.coalesce(func.sum(ledger_entries.c.amount), 0))
                              .where(ledger_entries.c.key_id == key_id, ledger_entries.c.kind != "grant"))
    return int(total or 0)
