"""The `files` table: one row per upload, visible to the key that made it only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.db.models import files


@dataclass(frozen=True)
class FileRow:
    id: int
    public_id: str
    key_id: int
    filename: str
    purpose: str
    bytes: int
    content_type: str
    storage_key: str
    extract_key: str | None
    status: str
    status_details: str | None
    created_at: float
    expires_at: float | None

    @classmethod
    def of(cls, row: Row[Any]) -> FileRow:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})

    def render(self) -> dict[str, Any]:
        """OpenAI's file object."""
        return {"id": self.public_id, "object": "file", "bytes": self.bytes, "created_at": int(self.created_at),
                "expires_at": int(self.expires_at) if self.expires_at is not None else None,
                "filename": self.filename, "purpose": self.purpose, "status": self.status,
                "status_details": self.status_details}


def _live(key_id: int) -> Any:
    now = time.time()
    return and_(files.c.key_id == key_id, or_(files.c.expires_at.is_(None), files.c.expires_at > now))


async def usage(conn: AsyncConnection, key_id: int) -> tuple[int, int]:
    """(number of files, bytes stored) of a key."""
    row = (await conn.execute(select(func.count(), func.coalesce(func.sum(files.c.bytes), 0))
                              .where(_live(key_id)))).one()
    return int(row[0]), int(row[1])


async def add(conn: AsyncConnection, row: FileRow) -> None:
    values = {name: getattr(row, name) for name in FileRow.__dataclass_fields__ if name != "id"}
    await conn.execute(insert(files).values(**values))


async def get(conn: AsyncConnection, key_id: int, public_id: str) -> FileRow | None:
    row = (await conn.execute(select(files).where(_live(key_id), files.c.public_id == public_id))).first()
    return FileRow.of(row) if row is not None else None


async def page(conn: AsyncConnection, key_id: int, *, purpose: str | None, limit: int, ascending: bool,
               after: str | None) -> tuple[list[FileRow], bool]:
    """One page of a key's files in creation order, and whether more follow."""
    query = select(files).where(_live(key_id))
    if purpose:
        query = query.where(files.c.purpose == purpose)
    if after:
        cursor = await conn.scalar(select(files.c.id).where(files.c.key_id == key_id, files.c.public_id == after))
        if cursor is not None:
            query = query.where(files.c.id > cursor if ascending else files.c.id < cursor)
    query = query.order_by(files.c.id.asc() if ascending else files.c.id.desc()).limit(limit + 1)
    rows = [FileRow.of(r) for r in (await conn.execute(query)).all()]
    return rows[:limit], len(rows) > limit


async def remove(conn: AsyncConnection, key_id: int, public_id: str) -> bool:
    result = await conn.execute(delete(files).where(files.c.key_id == key_id, files.c.public_id == public_id))
    return bool(result.rowcount)
