"""`ledger.charge_call`: a synchronous call's price, taken once as a `usage` entry; a limited key that
cannot pay is refused with nothing charged; an unlimited key always pays."""

from __future__ import annotations

import pytest
from harness.database import new_key
from sqlalchemy import select

from gengate.core import ledger
from gengate.core.errors import InsufficientCredits
from gengate.db.engine import Database
from gengate.db.models import keys, ledger_entries


async def test_charge_call_takes_the_price_once_per_call(db: Database) -> None:
    key_id = await new_key(db, 250)
    for _ in range(2):
        async with db.write() as conn:
            await ledger.charge_call(conn, key_id, 100)
    with pytest.raises(InsufficientCredits):
        async with db.write() as conn:
            await ledger.charge_call(conn, key_id, 100)
    async with db.read() as conn:
        assert await conn.scalar(select(keys.c.credits).where(keys.c.id == key_id)) == 50
        le = ledger_entries.c
        entries = (await conn.execute(select(le.kind, le.amount, le.task_id)
                                      .where(le.key_id == key_id, le.kind != "grant"))).all()
        assert sorted(entries) == [("usage", 100, None), ("usage", 100, None)]
        assert await ledger.spent(conn, key_id) == 200


async def test_unlimited_key_always_pays(db: Database) -> None:
    key_id = await new_key(db, None)
    async with db.write() as conn:
        await ledger.charge_call(conn, key_id, 10**9)
    async with db.read() as conn:
        assert await ledger.spent(conn, key_id) == 10**9
