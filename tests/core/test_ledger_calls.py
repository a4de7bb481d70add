"""`ledger.charge_call`: a synchronous call's price, taken once as a `usage` entry; a limited key that
cannot pay is refused with nothing charged; an unlimited key always pays."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gengate.core import ledger
from gengate.core.crypto import SecretBox
from gengate.core.errors import InsufficientCredits
from gengate.core.keys import create_key
from gengate.db.engine import Database
from gengate.db.models import keys, ledger_entries


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    await database.migrate()
    yield database
    await database.dispose()


async def _key(db: Database, credits: int | None) -> int:
    async with db.write() as conn:
        key_id, _, _ = await create_key(conn, SecretBox("x" * 32), name=f"k{time.time_ns()}", credits=credits,
                                        models=None, expires_at=None)
    return key_id


async def test_charge_call_takes_the_price_once_per_call(db: Database) -> None:
    key_id = await _key(db, 250)
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
    key_id = await _key(db, None)
    async with db.write() as conn:
        await ledger.charge_call(conn, key_id, 10**9)
    async with db.read() as conn:
        assert await ledger.spent(conn, key_id) == 10**9
