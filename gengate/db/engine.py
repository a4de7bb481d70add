"""Database connections for SQLite (embedded default) and PostgreSQL, and migrations on start.

SQLite has a single writer: write transactions start with `BEGIN IMMEDIATE` so two writers queue on
the busy timeout instead of failing on a lock upgrade; reads use a separate engine with ordinary
deferred transactions so they never take the write lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Set to 1 to count the statements this process sends (shown on /metrics; bench/auth_get.py reads it).
SQL_COUNT_ENV = "GENGATE_DEBUG_SQL_COUNT"
T = TypeVar("T")
# A pooled PostgreSQL connection unused this long is pinged before use (a busy one never is).
IDLE_PING_SECONDS = 30.0
_PG_MIGRATION_LOCK = 0x67656E67  # "geng": advisory lock id held while migrating


def async_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs; the driver is gengate's choice."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    return url


def _sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    if immediate:
        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _ping_when_idle(engine: AsyncEngine, idle: float) -> None:
    """At checkout, replace a pooled connection the server closed (asyncpg saw the socket close: no
    round trip to tell), and ping one unused for `idle` seconds (a silent drop: NAT, firewall). Raising
    DisconnectionError makes the pool replace the connection (SQLAlchemy's pessimistic disconnect
    handling, without pre-ping's BEGIN + ping + ROLLBACK on every use)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if dbapi_conn.driver_connection.is_closed():  # a restarted or terminated server backend
            raise DisconnectionError("the server closed this connection")
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:
            raise DisconnectionError("connection dropped while idle") from exc


class Database:
    """Two engines over one database: `write()` for transactions that change rows, `read()` for reads."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = self.url.split(":///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Every write transaction ends in COMMIT or ROLLBACK and reads run in autocommit, so the
            # pool's reset-on-return ROLLBACK would only cost a thread hop per use.
            self._writer = create_async_engine(self.url, pool_size=1, max_overflow=0, pool_timeout=60,
                                               pool_reset_on_return=None)
            self._reader = create_async_engine(self.url, pool_size=4, max_overflow=4, pool_reset_on_return=None)
            _sqlite_pragmas(self._writer, immediate=True)
            # Reads run in autocommit (no BEGIN): one statement, one snapshot, no write lock.
            _sqlite_pragmas(self._reader, immediate=False)
        else:
            # No pool_pre_ping: it costs BEGIN + ping + ROLLBACK on every checkout. A connection the
            # server closed is replaced at checkout for free, one idle for long is pinged
            # (_ping_when_idle). A dropped connection that still gets through fails its first
            # statement: SQLAlchemy then invalidates the whole pool, and `run_read` retries a read once.
            # pool_recycle keeps connections younger than typical server/proxy idle timeouts.
            self._writer = create_async_engine(self.url, pool_size=10, max_overflow=20, pool_recycle=1800,
                                               pool_use_lifo=True)
            # Reads run in autocommit like SQLite's: one round trip per statement, no BEGIN/ROLLBACK
            # around it (each statement is its own snapshot, as on SQLite).
            self._reader = create_async_engine(self.url, pool_size=10, max_overflow=20, pool_recycle=1800,
                                               pool_use_lifo=True, isolation_level="AUTOCOMMIT",
                                               pool_reset_on_return=None)
            for engine in (self._writer, self._reader):
                _ping_when_idle(engine, IDLE_PING_SECONDS)
        # Statements sent through either engine, when GENGATE_DEBUG_SQL_COUNT is set (None otherwise).
        self.statements: int | None = None
        if os.environ.get(SQL_COUNT_ENV, "") not in ("", "0"):
            self.statements = 0
            for engine in {self._writer, self._reader}:
                event.listen(engine.sync_engine, "before_cursor_execute", self._count_statement)

    def _count_statement(self, *_args: Any) -> None:
        self.statements = (self.statements or 0) + 1

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    async def run_read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`fn(conn)` on a read connection, run a second time if the server had dropped the connection
        (after a database restart the first use of each pooled connection fails; reads are safe to repeat)."""
        try:
            async with self.read() as conn:
                return await fn(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        async with self.read() as conn:
            return await fn(conn)

    async def migrate(self) -> None:
        """Apply Alembic migrations; on PostgreSQL under an advisory lock so processes may start at once."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        if self.is_sqlite:  # several processes (--workers) may start at once: one migrates at a time
            path = self.url.split(":///", 1)[1]
            lock_path = Path(path + ".migrate.lock") if path and path != ":memory:" else None
            if lock_path is not None:
                with lock_path.open("a") as fh:
                    await asyncio.to_thread(fcntl.flock, fh, fcntl.LOCK_EX)
                    try:
                        await self._migrate(cfg)
                    finally:
                        fcntl.flock(fh, fcntl.LOCK_UN)
                return
        await self._migrate(cfg)

    async def _migrate(self, cfg: Any) -> None:
        from alembic import command

        engine = create_async_engine(self.url, poolclass=NullPool)
        if self.is_sqlite:
            _sqlite_pragmas(engine, immediate=True)
        try:
            async with engine.connect() as conn:
                if not self.is_sqlite:
                    await conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
                try:
                    await conn.run_sync(_upgrade, cfg, command)
                    await conn.commit()
                finally:
                    if not self.is_sqlite:
                        await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
                        await conn.commit()
        finally:
            await engine.dispose()

    async def dispose(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _upgrade(sync_conn: Any, cfg: Any, command: Any) -> None:
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def run_sync(coro: Any) -> Any:
    """Run a coroutine from synchronous code (the CLI)."""
    return asyncio.run(coro)
