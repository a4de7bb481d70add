"""The task store and ledger on both backends: reserve/settle/refund exactly once, guarded moves,
leases that never hand one task to two owners."""

from __future__ import annotations

import asyncio
import time

import pytest
from harness.database import new_key
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gengate.core import ledger
from gengate.core import tasks as store
from gengate.core.errors import InsufficientCredits
from gengate.core.states import TaskState
from gengate.db.engine import Database
from gengate.db.models import keys, ledger_entries

S = TaskState






def _new(key_id: int, reserved: int, public_id: str) -> store.NewTask:
    return store.NewTask(public_id=public_id, key_id=key_id, provider="vidu", action="text2video", model="vidu-1",
                         request={}, upstream_request={}, units={}, reserved=reserved,
                         deadline_at=time.time() + 60, marker="m")


async def _credits(db: Database, key_id: int) -> int | None:
    async with db.read() as conn:
        return await conn.scalar(select(keys.c.credits).where(keys.c.id == key_id))


async def test_reserve_settle_once(db: Database) -> None:
    key_id = await new_key(db, 1000)
    async with db.write() as conn:
        row = await store.insert_task(conn, _new(key_id, 300, "t1"), time.time(), unlimited=False)
    assert await _credits(db, key_id) == 700
    for nxt in (S.SUBMITTING, S.RUNNING, S.REHOSTING):
        async with db.write() as conn:
            row = await store.move(conn, row, nxt, reason="test")
            assert row is not None
    async with db.write() as conn:
        done = await store.move(conn, row, S.SUCCEEDED, reason="test", settle_amount=200)
    assert done is not None and done.settled == 200
    assert await _credits(db, key_id) == 800  # 300 reserved, 100 given back
    # The same move again, from the stale row: zero rows, nothing charged.
    async with db.write() as conn:
        assert await store.move(conn, row, S.SUCCEEDED, reason="again", settle_amount=200) is None
    async with db.write() as conn:
        assert await store.move(conn, row, S.FAILED, reason="late failure") is None
    assert await _credits(db, key_id) == 800
    with pytest.raises(IntegrityError):  # the database itself refuses a second settle
        async with db.write() as conn:
            await ledger.settle(conn, key_id, row.id, 300, 300)
    async with db.read() as conn:
        assert await ledger.spent(conn, key_id) == 200


async def test_refund_once_and_insufficient(db: Database) -> None:
    key_id = await new_key(db, 500)
    async with db.write() as conn:
        row = await store.insert_task(conn, _new(key_id, 400, "t2"), time.time(), unlimited=False)
    with pytest.raises(InsufficientCredits):
        async with db.write() as conn:
            await store.insert_task(conn, _new(key_id, 400, "t3"), time.time(), unlimited=False)
    assert await _credits(db, key_id) == 100  # the refused task left nothing behind
    async with db.write() as conn:
        assert await store.move(conn, row, S.CANCELLED, reason="cancel") is not None
    async with db.write() as conn:
        assert await store.move(conn, row, S.FAILED, reason="race") is None
    assert await _credits(db, key_id) == 500
    async with db.read() as conn:
        kinds = (await conn.execute(select(ledger_entries.c.kind, func.count()).where(
            ledger_entries.c.key_id == key_id).group_by(ledger_entries.c.kind))).all()
    assert dict(kinds) == {"grant": 1, "reserve": 1, "refund": 1}


async def test_concurrent_moves_one_winner(db: Database) -> None:
    key_id = await new_key(db, None)
    async with db.write() as conn:
        row = await store.insert_task(conn, _new(key_id, 50, "t4"), time.time(), unlimited=True)

    async def attempt(new: TaskState) -> bool:
        async with db.write() as conn:
            return await store.move(conn, row, new, reason="race") is not None

    results = await asyncio.gather(*(attempt(s) for s in (S.FAILED, S.CANCELLED) * 5))
    assert sum(results) == 1


async def test_leases_are_exclusive_and_expire(db: Database) -> None:
    key_id = await new_key(db, None)
    now = time.time()
    async with db.write() as conn:
        for i in range(30):
            await store.insert_task(conn, _new(key_id, 1, f"lease{i}"), now, unlimited=True)

    async def lease(owner: str) -> list[int]:
        async with db.write() as conn:
            rows = await store.lease_due(conn, db.dialect, owner, time.time(), 30, 10)
        return [r.id for r in rows]

    got = await asyncio.gather(*(lease(f"p{i}") for i in range(5)))
    flat = [i for ids in got for i in ids]
    assert len(flat) == 30 and len(set(flat)) == 30
    assert await lease("late") == []  # everything is leased
    async with db.write() as conn:  # a holder that died: its lease lapses, another owner takes over
        rows = await store.lease_due(conn, db.dialect, "heir", time.time() + 31, 30, 100)
    assert len(rows) == 30 and {r.lease_owner for r in rows} == {"heir"}


async def test_list_owned_pages_and_deleted_tasks_vanish(db: Database) -> None:
    key_id = await new_key(db, None)
    other = await new_key(db, None)
    async with db.write() as conn:
        rows = [await store.insert_task(conn, _new(key_id, 0, f"L{i}"), time.time(), unlimited=True)
                for i in range(5)]
        await store.insert_task(conn, _new(other, 0, "O1"), time.time(), unlimited=True)
    async with db.read() as conn:
        first = await store.list_owned(conn, key_id, limit=2)
        assert [r.public_id for r in first] == ["L4", "L3"]  # newest first
        nxt = await store.list_owned(conn, key_id, limit=2, after="L3")
        assert [r.public_id for r in nxt] == ["L2", "L1"]
        assert [r.public_id for r in await store.list_owned(conn, key_id, limit=10, oldest_first=True,
                                                             after="L2")] == ["L3", "L4"]
        assert [r.public_id for r in await store.list_owned(conn, key_id, limit=2, offset=4)] == ["L0"]
        assert await store.list_owned(conn, key_id, after="O1") == []  # another key's id is no cursor
        assert await store.count_owned(conn, key_id) == 5
    async with db.write() as conn:
        assert await store.mark_deleted(conn, rows[4].id)
        assert not await store.mark_deleted(conn, rows[4].id)
    async with db.read() as conn:
        assert await store.find_owned(conn, "L4", key_id) is None
        assert [r.public_id for r in await store.list_owned(conn, key_id, limit=1)] == ["L3"]
        assert await store.count_owned(conn, key_id) == 4
