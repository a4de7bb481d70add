"""Alembic's migrations match the models (the check CI runs), on both backends."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gengate.db.engine import Database
from gengate.db.models import metadata


async def test_models_match_migrations(backend, tmp_path: Path) -> None:
    db = Database(backend.new_database() or f"sqlite:///{tmp_path / 'm.db'}")
    await db.migrate()
    await db.migrate()  # applying twice is a no-op

    def diff(sync_conn):
        return compare_metadata(MigrationContext.configure(sync_conn), metadata)

    async with db.read() as conn:
        changes = await conn.run_sync(diff)
    await db.dispose()
    assert changes == [], changes
