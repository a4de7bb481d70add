"""Channel secrets on both backends: slots weighted by what a task occupies, a failure streak that is
the secret's own (cleared by a success, backoff only past the grace), and soft deletes that keep the
secrets of bound tasks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gengate.core import channels as chan
from gengate.core.crypto import SecretBox
from gengate.db.engine import Database
from gengate.db.models import channel_secrets

BOX = SecretBox("y" * 32)


@pytest.fixture
async def db(backend, tmp_path: Path) -> AsyncIterator[Database]:
    url = backend.new_database() or f"sqlite:///{tmp_path / 'g.db'}"
    database = Database(url)
    await database.migrate()
    yield database
    await database.dispose()


async def _channel(db: Database, cap: int | None, name: str = "c") -> int:
    async with db.write() as conn:
        cid = await chan.add_channel(conn, BOX, providers={"vidu"}, provider="vidu", base_url="http://h",
                                     secrets=["s-1"], name=name, max_concurrency=cap)
        return int(await conn.scalar(select(channel_secrets.c.id).where(channel_secrets.c.channel_id == cid)))


async def _secret(db: Database, sid: int):
    async with db.read() as conn:
        return (await conn.execute(select(channel_secrets).where(channel_secrets.c.id == sid))).one()


async def test_slots_are_weighted_by_units(db: Database) -> None:
    sid = await _channel(db, cap=4)
    now = time.time()
    async with db.write() as conn:
        assert await chan.acquire_slot(conn, sid, now, 3)
        assert not await chan.acquire_slot(conn, sid, now, 2)  # 3 + 2 > 4
        assert await chan.acquire_slot(conn, sid, now, 1)
        assert not await chan.acquire_slot(conn, sid, now, 1)
    assert (await _secret(db, sid)).running == 4
    async with db.write() as conn:
        await chan.release_slot(conn, sid, 3)
        await chan.release_slot(conn, sid, 1)
        await chan.release_slot(conn, sid, 1)  # never below zero
    assert (await _secret(db, sid)).running == 0
    async with db.write() as conn:  # a task larger than the whole cap runs, alone
        assert await chan.acquire_slot(conn, sid, now, 6)
        assert not await chan.acquire_slot(conn, sid, now, 1)


async def test_failure_streak_is_the_secrets_own(db: Database) -> None:
    sid = await _channel(db, cap=None, name="streak")
    now = time.time()
    async with db.write() as conn:  # a 5xx to one payload: neither a backoff nor a longer next one
        for _ in range(5):
            await chan.record_failure(conn, sid, now, base=1.0, cap=60.0, back_off=False)
    row = await _secret(db, sid)
    assert row.failures == 0 and row.backoff_until <= now
    async with db.write() as conn:  # refused connection: backs off from the start of a streak
        await chan.record_failure(conn, sid, now, base=1.0, cap=60.0)
    row = await _secret(db, sid)
    assert row.failures == 1 and now + 0.7 <= row.backoff_until <= now + 1.3
    async with db.write() as conn:  # growing with the secret's own streak, capped
        for _ in range(9):
            await chan.record_failure(conn, sid, now, base=1.0, cap=60.0)
    assert now + 48 <= (await _secret(db, sid)).backoff_until <= now + 72
    async with db.write() as conn:  # Retry-After always wins, even on a 5xx
        await chan.record_failure(conn, sid, now, base=1.0, cap=60.0, retry_after=7, back_off=False)
    assert abs((await _secret(db, sid)).backoff_until - (now + 7)) < 0.01


async def test_deleted_channel_leaves_routing_but_keeps_its_secrets(db: Database) -> None:
    sid = await _channel(db, cap=None, name="gone")
    async with db.write() as conn:
        assert await chan.delete_channel(conn, "gone")
        assert not await chan.delete_channel(conn, "gone")
        assert [c["name"] for c in await chan.list_channels(conn)] == []
        # the name is free again
        await chan.add_channel(conn, BOX, providers={"vidu"}, provider="vidu", base_url="http://h2",
                               secrets=["s-2"], name="gone")
    router = chan.Router(BOX)
    async with db.read() as conn:
        await router.refresh(conn)
    assert sid in router.secrets  # a task bound to it still polls and cancels with it
    assert all(s.id != sid for s in router.candidates("vidu", "vidu-1"))
    assert router.has_channel("vidu", "vidu-1")


async def test_lowest_priority_number_first(db: Database) -> None:
    async with db.write() as conn:
        for name, prio in (("low", 10), ("high", 0), ("mid", 5)):
            await chan.add_channel(conn, BOX, providers={"vidu"}, provider="vidu", base_url=f"http://{name}",
                                   secrets=[f"s-{name}"], name=name, priority=prio)
    router = chan.Router(BOX)
    async with db.read() as conn:
        await router.refresh(conn)
    names = [router.channels[s.channel_id].name for s in router.candidates("vidu", "m")]
    assert names == ["high", "mid", "low"]


async def test_unknown_provider_is_refused(db: Database) -> None:
    from gengate.core.errors import InvalidRequest

    async with db.write() as conn:
        with pytest.raises(InvalidRequest):
            await chan.add_channel(conn, BOX, providers={"vidu"}, provider="nosuch", base_url="http://h",
                                   secrets=["s"], name="x")
