"""Rows the core's in-process tests need on a `Database`."""

from __future__ import annotations

import time

from gengate.core.crypto import SecretBox
from gengate.core.keys import create_key
from gengate.db.engine import Database


async def new_key(db: Database, credits: int | None = None) -> int:
    """A client key (unlimited when `credits` is None); returns its id."""
    async with db.write() as conn:
        key_id, _, _ = await create_key(conn, SecretBox("x" * 32), name=f"k{time.time_ns()}", credits=credits,
                                        models=None, expires_at=None)
    return key_id
