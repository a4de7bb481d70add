"""Credit leases (gengate/core/leases.py) on SQLite and PostgreSQL, with several `CreditLeases` as
several processes would hold them on one database: reservations never add up to more than the key
holds, whatever the interleaving; the task engine's reservations and other charges cannot take what
a lease holds; an idle lease is given back, a dead process's lease expires and is swept, a clean
shutdown gives back every lease."""

from __future__ import annotations

import asyncio
import time

import pytest
from harness.database import new_key
from sqlalchemy import insert, select

from gengate.core import ledger
from gengate.core.errors import InsufficientCredits
from gengate.core.leases import CreditLeases
from gengate.db.engine import Database
from gengate.db.models import credit_leases, keys, ledger_entries

pytestmark = pytest.mark.timeout(120)






async def _rows(db: Database, key_id: int) -> list[tuple[str, int, float]]:
    async with db.read() as conn:
        c = credit_leases.c
        return [tuple(r) for r in await conn.execute(
            select(c.owner, c.amount, c.expires_at).where(c.key_id == key_id).order_by(c.id))]


async def _credits(db: Database, key_id: int) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(keys.c.credits).where(keys.c.id == key_id)))


async def _charge_written(db: Database, leases: CreditLeases, lease, charged: int) -> None:
    """What the usage writer does with a batch: keys.credits and the lease's amount, one transaction."""
    async with db.write() as conn:
        await conn.execute(keys.update().where(keys.c.id == lease.key_id)
                           .values(credits=keys.c.credits - charged))
        await leases.charge(conn, lease, charged)
    leases.written(lease, charged)


async def test_processes_never_reserve_more_than_the_key_holds(db: Database) -> None:
    """Three "processes" reserve 100 at a time, 40 each at once, on a key holding 1,050: exactly ten
    reservations are granted in all, the rest refused, and the leases never add up to more than 1,050."""
    key_id = await new_key(db, 1050)
    procs = [CreditLeases(db, f"p{i}", ttl=30) for i in range(3)]

    async def one(p: CreditLeases) -> bool:
        try:
            await p.reserve(key_id, 100)
            return True
        except InsufficientCredits:
            return False

    granted = await asyncio.gather(*(one(p) for p in procs for _ in range(40)))
    assert sum(granted) == 10
    assert sum(amount for _, amount, _ in await _rows(db, key_id)) <= 1050
    for p in procs:
        await p.close()
    assert await _rows(db, key_id) == []  # a clean shutdown gives every lease back
    assert await _credits(db, key_id) == 1050  # a lease takes nothing


async def test_charges_come_off_the_key_and_the_lease_and_idle_leases_go_back(db: Database) -> None:
    key_id = await new_key(db, 10_000)
    p = CreditLeases(db, "solo", ttl=30)
    lease = await p.reserve(key_id, 500)
    assert lease is not None and lease.held == 500
    (owner, amount, _), = await _rows(db, key_id)
    assert owner == "solo" and 500 <= amount <= 5000  # at least this call, at most half of what is free
    p.settle(lease, 500, 120)
    await _charge_written(db, p, lease, 120)
    assert await _credits(db, key_id) == 10_000 - 120
    assert await _rows(db, key_id) == [("solo", amount - 120, pytest.approx(time.time() + 30, abs=5))]
    assert lease.held == 0 and lease.free == amount - 120
    await asyncio.sleep(2.0)  # idle for a second: the keeper gives it back
    assert await _rows(db, key_id) == [] and p.lease(key_id) is None
    again = await p.reserve(key_id, 500)  # a new lease for the next call
    assert again is not None and again is not lease and len(await _rows(db, key_id)) == 1
    await p.close()


async def test_task_reservations_and_charges_leave_leased_credits_alone(db: Database) -> None:
    key_id = await new_key(db, 1000)
    p = CreditLeases(db, "relay", ttl=30)
    await p.reserve(key_id, 300)
    (_, leased, _), = await _rows(db, key_id)
    with pytest.raises(InsufficientCredits):  # free: 1000 - leased < 1000
        async with db.write() as conn:
            await ledger.charge_call(conn, key_id, 1000 - leased + 1)
    async with db.write() as conn:
        await ledger.charge_call(conn, key_id, 1000 - leased)  # exactly what no lease holds
    with pytest.raises(InsufficientCredits):
        await CreditLeases(db, "other", ttl=30).reserve(key_id, 1)
    assert await _credits(db, key_id) == leased
    await p.close()
    async with db.write() as conn:  # given back: the rest can be charged again
        await ledger.charge_call(conn, key_id, leased)
    async with db.read() as conn:
        amounts = (await conn.execute(select(ledger_entries.c.amount).where(
            ledger_entries.c.key_id == key_id, ledger_entries.c.kind == "usage"))).scalars().all()
    assert sorted(amounts) == sorted([1000 - leased, leased])


async def test_a_dead_process_lease_expires_and_is_swept(db: Database) -> None:
    key_id = await new_key(db, 1000)
    async with db.write() as conn:  # what a SIGKILLed process leaves: a lease nobody renews
        await conn.execute(insert(credit_leases).values(key_id=key_id, owner="dead", amount=900,
                                                         expires_at=time.time() + 1.0, created_at=time.time()))
    live = CreditLeases(db, "live", ttl=30)
    await live.reserve(key_id, 100)
    with pytest.raises(InsufficientCredits):
        await live.reserve(key_id, 100)  # 900 still spoken for
    await asyncio.sleep(1.2)
    await live.reserve(key_id, 500)  # expired: free again, swept by this claim
    assert [owner for owner, _, _ in await _rows(db, key_id)] == ["live"]
    await live.close()


async def test_unlimited_key_needs_no_lease(db: Database) -> None:
    key_id = await new_key(db, None)
    p = CreditLeases(db, "p", ttl=30)
    assert await p.reserve(key_id, 10**12) is None
    assert await _rows(db, key_id) == []
    await p.close()


async def test_a_lease_in_use_is_renewed_and_not_given_back(db: Database) -> None:
    key_id = await new_key(db, 1000)
    p = CreditLeases(db, "busy", ttl=1.5)  # renewed about every half second while held
    lease = await p.reserve(key_id, 100)
    first = (await _rows(db, key_id))[0][2]
    await asyncio.sleep(3.0)  # twice the ttl: still held (a long stream), still live
    rows = await _rows(db, key_id)
    assert len(rows) == 1 and rows[0][2] > first + 1.0 and lease.live
    with pytest.raises(InsufficientCredits):  # and still spoken for
        await CreditLeases(db, "other", ttl=30).reserve(key_id, 1000 - rows[0][1] + 1)
    p.settle(lease, 100, 0)
    await asyncio.sleep(2.0)
    assert await _rows(db, key_id) == []
    await p.close()
