"""Idempotency-Key (IETF draft semantics), stored in the database so it holds across processes.

Scoped per client key and route, kept `idempotency_ttl`. A replay returns the same task; the same
value with another body is 422; while the first request is in progress, 409. A first request whose
process died stops counting as in progress once its lock (`idempotency_release`) lapses.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidRequest
from gengate.db.engine import Database
from gengate.db.models import idempotency_keys


@dataclass(frozen=True)
class Claim:
    row_id: int
    task_id: int | None  # set: a replay of a request that created this task


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def claim(db: Database, *, key_id: int, route: str, value: str, digest: str, ttl: float,
                release: float) -> Claim:
    if not value or len(value) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters")
    now = time.time()
    for _ in range(3):
        async with db.write() as conn:
            row = (await conn.execute(select(idempotency_keys).where(
                idempotency_keys.c.key_id == key_id, idempotency_keys.c.route == route,
                idempotency_keys.c.value == value))).first()
            if row is not None and row.created_at < now - ttl:  # expired: forget it
                await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == row.id))
                row = None
            if row is None:
                try:
                    async with conn.begin_nested():
                        new_id = await conn.scalar(insert(idempotency_keys).values(
                            key_id=key_id, route=route, value=value, body_hash=digest,
                            locked_until=now + release, created_at=now).returning(idempotency_keys.c.id))
                except IntegrityError:  # another process inserted it first: read it on the next pass
                    continue
                return Claim(row_id=int(new_id), task_id=None)
            if row.body_hash != digest:
                raise IdempotencyMismatch("this Idempotency-Key was used with another request body")
            if row.locked_until is not None and row.locked_until > now:
                # Also once its task exists: the first request is answered only after the submit.
                raise IdempotencyInProgress("a request with this Idempotency-Key is still in progress")
            if row.task_id is not None:
                return Claim(row_id=row.id, task_id=row.task_id)
            # The first request died without creating a task: this one takes over.
            res = await conn.execute(update(idempotency_keys).where(
                idempotency_keys.c.id == row.id, idempotency_keys.c.locked_until == row.locked_until)
                .values(locked_until=now + release))
            if res.rowcount:
                return Claim(row_id=row.id, task_id=None)
    raise IdempotencyInProgress("a request with this Idempotency-Key is still in progress")


async def bind_task(conn: AsyncConnection, row_id: int, task_id: int) -> None:
    """In the task's own insert transaction: a replay returns this task once the request is answered
    (`finish`), or once its lock lapses if its process died. Until then a replay is 409."""
    await conn.execute(update(idempotency_keys).where(idempotency_keys.c.id == row_id)
                       .values(task_id=task_id))


async def finish(db: Database, row_id: int) -> None:
    """The first request was answered: it no longer counts as in progress."""
    async with db.write() as conn:
        await conn.execute(update(idempotency_keys).where(idempotency_keys.c.id == row_id)
                           .values(locked_until=None))


async def release(db: Database, row_id: int) -> None:
    """The request failed: without a task a retry with the same key may run again; with one (the
    task was saved, then refused) a replay returns that task."""
    async with db.write() as conn:
        await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == row_id,
                                                          idempotency_keys.c.task_id.is_(None)))
        await conn.execute(update(idempotency_keys).where(idempotency_keys.c.id == row_id)
                           .values(locked_until=None))
