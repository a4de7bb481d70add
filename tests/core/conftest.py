"""Fixtures of the core's in-process tests: a migrated database on the module's backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gengate.db.engine import Database


@pytest.fixture
async def db(backend, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database: SQLite in the test's folder, or a new PostgreSQL database."""
    database = Database(backend.new_database() or f"sqlite:///{tmp_path / 'g.db'}")
    await database.migrate()
    yield database
    await database.dispose()
