"""The task store: insert a task with its reservation, move it between states, lease due work.

`move` is the only function that changes a task's state: a guarded UPDATE (`WHERE state = :old`) in
the same transaction as the ledger entry and the slot release the move implies, plus a `task_events`
row. Zero rows updated means another process won; the caller stops.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core import channels as chan
from gengate.core import ledger
from gengate.core.adaptor import NATIVE, OutputSpec
from gengate.core.states import HOLDS_SLOT, TERMINAL, TaskState, can_move
from gengate.db.models import outputs, stored_objects, task_events, tasks
from gengate.storage.base import StoredObject

# Built once: executing a prebuilt statement with a parameter dict skips rebuilding its cache key,
# which is most of SQLAlchemy's cost on the create path.
_INSERT_TASK = insert(tasks).returning(*tasks.c)
_INSERT_EVENT = insert(task_events)


@lru_cache(maxsize=256)
def _guarded_update(columns: frozenset[str]) -> Any:
    """`UPDATE tasks SET <columns> WHERE id = :w_id AND state = :w_state AND attempts = :w_attempts
    RETURNING *`, built once per column set. `attempts` grows with every slot a task takes, so a task
    read before it was requeued and re-submitted (same state, another secret) is not moved by a stale copy."""
    return (update(tasks).where(tasks.c.id == bindparam("w_id"), tasks.c.state == bindparam("w_state"),
                                tasks.c.attempts == bindparam("w_attempts"))
            .values({c: bindparam(f"v_{c}") for c in sorted(columns)}).returning(*tasks.c))


async def _update_guarded(conn: AsyncConnection, task: Row[Any], values: dict[str, Any]) -> Row[Any] | None:
    params = {f"v_{k}": v for k, v in values.items()}
    params.update(w_id=task.id, w_state=task.state, w_attempts=task.attempts)
    return (await conn.execute(_guarded_update(frozenset(values)), params)).first()


@dataclass(frozen=True)
class NewTask:
    public_id: str
    key_id: int
    provider: str
    action: str
    model: str
    request: dict[str, Any]
    upstream_request: dict[str, Any]
    units: dict[str, float]
    reserved: int
    deadline_at: float
    marker: str
    parent_task_id: int | None = None
    callback_url: str | None = None
    channel_id: int | None = None  # set for child tasks: pinned to the parent's secret
    secret_id: int | None = None
    slots: int = 1
    origin: str | None = None


async def insert_task(conn: AsyncConnection, new: NewTask, now: float, *, unlimited: bool,
                      submitting: dict[str, Any] | None = None) -> Row[Any]:
    """Insert a task and reserve its credits (raises InsufficientCredits: nothing is saved).

    With `submitting` (the bound channel, secret and lease, its slot already taken in this
    transaction) the task starts in SUBMITTING, else QUEUED for the poller."""
    state = TaskState.SUBMITTING if submitting else TaskState.QUEUED
    values: dict[str, Any] = dict(
        public_id=new.public_id, key_id=new.key_id, provider=new.provider, action=new.action,
        model=new.model, state=state.value, request=json.dumps(new.request),
        upstream_request=json.dumps(new.upstream_request), units=json.dumps(new.units),
        reserved=new.reserved, callback_url=new.callback_url,
        deadline_at=new.deadline_at, next_poll_at=now, marker=new.marker,
        parent_task_id=new.parent_task_id, channel_id=new.channel_id, secret_id=new.secret_id,
        pinned=new.secret_id is not None, slots=new.slots, origin=new.origin, created_at=now, updated_at=now)
    values.update(submitting or {})
    row = (await conn.execute(_INSERT_TASK, values)).one()
    await ledger.reserve(conn, new.key_id, row.id, new.reserved, unlimited=unlimited)
    await conn.execute(_INSERT_EVENT, {"task_id": row.id, "from_state": None, "to_state": state.value,
                                       "reason": "created", "at": now})
    return row


async def move(conn: AsyncConnection, task: Row[Any], new: TaskState, *, reason: str,
               settle_amount: int | None = None, **fields: Any) -> Row[Any] | None:
    """Move `task` from the state it was read in to `new`, with what that move implies:
    settle on success, refund on failure or cancel, the secret's slot released when no longer held."""
    old = TaskState(task.state)
    if not can_move(old, new):
        raise ValueError(f"task {task.id}: {old} -> {new} is not an allowed move")
    now = time.time()
    values: dict[str, Any] = {"state": new.value, "updated_at": now, **fields}
    if new in TERMINAL:
        values.update(next_poll_at=None, lease_owner=None, lease_until=None)
    releases = bool(task.slot_held) and new not in HOLDS_SLOT
    if releases:
        values["slot_held"] = False
    if new is TaskState.SUCCEEDED:
        values["settled"] = max(0, min(settle_amount or 0, task.reserved))
    elif new in (TaskState.FAILED, TaskState.CANCELLED):
        values["settled"] = 0
    moved = await _update_guarded(conn, task, values)
    if moved is None:
        return None
    if releases and task.secret_id is not None:
        await chan.release_slot(conn, task.secret_id, task.slots)
    if new is TaskState.SUCCEEDED:
        await ledger.settle(conn, task.key_id, task.id, task.reserved, values["settled"])
    elif new in (TaskState.FAILED, TaskState.CANCELLED):
        await ledger.refund(conn, task.key_id, task.id, task.reserved)
    await conn.execute(_INSERT_EVENT, {"task_id": task.id, "from_state": old.value, "to_state": new.value,
                                       "reason": reason[:500], "at": now})
    return moved


# Bookkeeping of the poller, not a change anyone sees: rescheduling alone leaves `updated_at` alone
# (open streams treat a new `updated_at` as a change; a held task must not emit an event per poll).
_SCHEDULING = frozenset({"next_poll_at", "lease_owner", "lease_until"})


async def touch(conn: AsyncConnection, task: Row[Any], **fields: Any) -> bool:
    """Update non-state fields (progress, next poll) while the task is still in the state it was read in."""
    values = dict(fields) if fields and _SCHEDULING.issuperset(fields) else {"updated_at": time.time(), **fields}
    return await _update_guarded(conn, task, values) is not None


async def lease_due(conn: AsyncConnection, dialect: str, owner: str, now: float, lease_seconds: float,
                    limit: int) -> list[Row[Any]]:
    """Lease up to `limit` tasks whose next poll is due and whose lease is free or expired.

    Reads only due rows through the partial index on `next_poll_at`: work per round is proportional
    to the tasks due, not to the tasks in flight.
    """
    due = (select(tasks.c.id).where(tasks.c.next_poll_at.is_not(None), tasks.c.next_poll_at <= now,
                                    or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now))
           .order_by(tasks.c.next_poll_at).limit(limit))
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (update(tasks).where(tasks.c.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease_seconds)
            .returning(*tasks.c))
    return list((await conn.execute(stmt)).all())


async def renew_lease(conn: AsyncConnection, task_id: int, owner: str, until: float) -> None:
    await conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.lease_owner == owner)
                       .values(lease_until=until))


async def release_leases(conn: AsyncConnection, owner: str) -> None:
    """On shutdown: give this process's leases back so another process takes them at once."""
    await conn.execute(update(tasks).where(tasks.c.lease_owner == owner)
                       .values(lease_owner=None, lease_until=None))


async def get_row(conn: AsyncConnection, task_id: int) -> Row[Any] | None:
    return (await conn.execute(select(tasks).where(tasks.c.id == task_id))).first()


async def find_owned(conn: AsyncConnection, public_id: str, key_id: int,
                     provider: str | None = None) -> Row[Any] | None:
    """A task of `key_id` that its client has not deleted (a deleted task is 404 on every route)."""
    cond = and_(tasks.c.public_id == public_id, tasks.c.key_id == key_id, tasks.c.deleted_at.is_(None))
    if provider is not None:
        cond = and_(cond, tasks.c.provider == provider)
    return (await conn.execute(select(tasks).where(cond))).first()


async def lock_field_value(conn: AsyncConnection, key_id: int, provider: str, name: str, value: str) -> None:
    """Serialise the writers that check one (key, provider, field, value) until their transaction
    ends: a PostgreSQL transaction-scoped advisory lock. SQLite's writes are already one at a time."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{key_id}\n{provider}\n{name}\n{value}".encode()).digest()
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                       {"k": int.from_bytes(digest[:8], "big", signed=True)})


async def find_owned_by_field(conn: AsyncConnection, key_id: int, provider: str, name: str,
                              value: str) -> Row[Any] | None:
    """The newest task of `key_id` and `provider` (not deleted) whose client request has the
    top-level string field `name` equal to `value`. Only the key's own rows are read (its index); a
    LIKE on the stored JSON narrows them, and the parsed request decides."""
    needle = json.dumps(value)
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = (select(tasks).where(tasks.c.key_id == key_id, tasks.c.provider == provider,
                                tasks.c.deleted_at.is_(None), tasks.c.request.like(pattern, escape="\\"))
            .order_by(tasks.c.id.desc()))
    for row in (await conn.execute(stmt)).all():
        request = json.loads(row.request)
        if isinstance(request, dict) and request.get(name) == value:
            return row
    return None


async def list_owned(conn: AsyncConnection, key_id: int, *, provider: str | None = None,
                     origin: str | None = None, limit: int = 20, after: str | None = None,
                     offset: int = 0, oldest_first: bool = False, action: str | None = None) -> list[Row[Any]]:
    """A key's tasks, newest first by default: paged by `after` (the public id of the previous
    page's last item, a cursor) or by `offset` (page numbers); `action` keeps one kind of task."""
    cond = and_(tasks.c.key_id == key_id, tasks.c.deleted_at.is_(None))
    if provider is not None:
        cond = and_(cond, tasks.c.provider == provider)
    if action is not None:
        cond = and_(cond, tasks.c.action == action)
    if origin is not None:  # NATIVE (""): only tasks created through the provider's own routes
        cond = and_(cond, tasks.c.origin.is_(None) if origin == NATIVE else tasks.c.origin == origin)
    if after is not None:
        anchor = (await conn.execute(select(tasks.c.id).where(cond, tasks.c.public_id == after))).scalar()
        if anchor is None:
            return []
        cond = and_(cond, tasks.c.id > anchor if oldest_first else tasks.c.id < anchor)
    order = tasks.c.id.asc() if oldest_first else tasks.c.id.desc()
    stmt = select(tasks).where(cond).order_by(order).limit(max(0, limit)).offset(max(0, offset))
    return list((await conn.execute(stmt)).all())


async def count_owned(conn: AsyncConnection, key_id: int, *, provider: str | None = None,
                      origin: str | None = None, action: str | None = None) -> int:
    cond = and_(tasks.c.key_id == key_id, tasks.c.deleted_at.is_(None))
    if provider is not None:
        cond = and_(cond, tasks.c.provider == provider)
    if action is not None:
        cond = and_(cond, tasks.c.action == action)
    if origin is not None:  # NATIVE (""): only tasks created through the provider's own routes
        cond = and_(cond, tasks.c.origin.is_(None) if origin == NATIVE else tasks.c.origin == origin)
    return int(await conn.scalar(select(func.count()).select_from(tasks).where(cond)) or 0)


async def mark_deleted(conn: AsyncConnection, task_id: int) -> bool:
    res = await conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.deleted_at.is_(None))
                             .values(deleted_at=time.time()))
    return res.rowcount > 0


async def record_upstream_id(conn: AsyncConnection, task_id: int, upstream_id: str) -> None:
    """Keep the id of a job the upstream made for a task that ended meanwhile (it gets cancelled)."""
    await conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.upstream_id.is_(None))
                       .values(upstream_id=upstream_id))


async def bound_jobs(conn: AsyncConnection, secret_id: int, upstream_ids: list[str], *,
                     exclude_task: int | None = None) -> set[str]:
    """Which of these upstream jobs of one secret a task (other than `exclude_task`) is bound to."""
    if not upstream_ids:
        return set()
    query = select(tasks.c.upstream_id).where(tasks.c.secret_id == secret_id, tasks.c.upstream_id.in_(upstream_ids))
    if exclude_task is not None:
        query = query.where(tasks.c.id != exclude_task)
    return set((await conn.execute(query)).scalars())


async def lock_task(conn: AsyncConnection, task_id: int) -> None:
    """Hold the task's row until the transaction ends (SQLite: the one writer holds it anyway)."""
    await conn.execute(select(tasks.c.id).where(tasks.c.id == task_id).with_for_update())


async def insert_outputs(conn: AsyncConnection, task_id: int, now: float,
                         items: list[tuple[str, OutputSpec, dict[str, str], list[StoredObject]]]) -> None:
    """Record a task's re-hosted results: (public id, spec, {field: storage key}, stored objects)."""
    for idx, (public_id, spec, files, objs) in enumerate(items):
        await conn.execute(insert(outputs).values(
            task_id=task_id, idx=idx, public_id=public_id, upstream_id=spec.upstream_id, kind=spec.kind,
            files=json.dumps(files), meta=json.dumps(dict(spec.meta)), created_at=now))
        for obj in objs:
            await conn.execute(insert(stored_objects).values(
                key=obj.key, task_id=task_id, size=obj.size, sha256=obj.sha256,
                content_type=obj.content_type, created_at=now))


async def outputs_of(conn: AsyncConnection, task_id: int) -> list[Row[Any]]:
    return list((await conn.execute(select(outputs).where(outputs.c.task_id == task_id)
                                    .order_by(outputs.c.idx))).all())


async def find_output(conn: AsyncConnection, public_id: str, key_id: int, provider: str | None = None,
                      kind: str | None = None) -> tuple[Row[Any], Row[Any]] | None:
    """An output and its task, if the task belongs to `key_id`, succeeded and was not deleted (and,
    when given, is of `provider` and the output of `kind`)."""
    query = (select(outputs, tasks.c.id.label("t_id"))
             .join(tasks, tasks.c.id == outputs.c.task_id)
             .where(outputs.c.public_id == public_id, tasks.c.key_id == key_id, tasks.c.deleted_at.is_(None),
                    tasks.c.state == TaskState.SUCCEEDED.value))
    if provider is not None:
        query = query.where(tasks.c.provider == provider)
    if kind is not None:
        query = query.where(outputs.c.kind == kind)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    task = await get_row(conn, row.t_id)
    assert task is not None
    return row, task


async def versions(conn: AsyncConnection, ids: list[int]) -> dict[int, float]:
    """`updated_at` of many tasks in one query: the batched change check for open streams."""
    if not ids:
        return {}
    rows = await conn.execute(select(tasks.c.id, tasks.c.updated_at).where(tasks.c.id.in_(ids)))
    return {r.id: r.updated_at for r in rows}


async def count_by_provider_state(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """Tasks per (provider, state), for `/metrics`."""
    rows = await conn.execute(text("SELECT provider, state, COUNT(*) FROM tasks GROUP BY provider, state"))
    return {(r[0], r[1]): int(r[2]) for r in rows}
