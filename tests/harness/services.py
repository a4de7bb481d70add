"""The services the tests run against: PostgreSQL (one fresh `gengate_<hex>` database per use,
dropped after) and Redis (a random key prefix per test), and the rule for when they are missing:
skip, or fail under `GENGATE_TEST_REQUIRE_SERVICES=1`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_HOST_URL = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379"


def services_required() -> bool:
    return os.environ.get("GENGATE_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def service_unavailable(message: str) -> None:
    """Skip the test, or fail it when GENGATE_TEST_REQUIRE_SERVICES is set."""
    if services_required():
        pytest.fail(message + " (GENGATE_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


# ------------------------------------------------------------------------------------------- PostgreSQL
def run_async(coro_fn: Callable[[], Any]) -> Any:
    """Run a coroutine on a private loop in a worker thread (the tests' own loop may be running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn())).result()


def pg_admin(sql: str) -> None:
    """Run one statement on the server's `postgres` database (CREATE / DROP DATABASE)."""
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(go)


def pg_fetch(url: str, sql: str) -> list[dict[str, Any]]:
    import asyncpg

    async def go() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return [dict(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return run_async(go)


def pg_dump_text(url: str) -> str:
    """Every row of every table of the database's public schema, as text (for "never in clear")."""
    import asyncpg

    async def go() -> str:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            tables = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            parts = []
            for t in tables:
                for r in await conn.fetch(f'SELECT t::text AS row FROM "{t}" t'):
                    parts.append(f"{t}: {r['row']}")
            return "\n".join(parts)
        finally:
            await conn.close()

    return run_async(go)


@dataclass
class Backend:
    """`name` is `sqlite` or `pg`; `url` is the module's database (None: the data dir's SQLite file)."""

    name: str
    url: str | None = None
    _created: list[str] = field(default_factory=list)

    def new_database(self) -> str | None:
        """A fresh, empty database on this backend (SQLite: None, i.e. a fresh data dir's own file)."""
        if self.name != "pg":
            return None
        db = f"gengate_{secrets.token_hex(6)}"
        pg_admin(f'CREATE DATABASE "{db}"')
        self._created.append(db)
        return f"{PG_HOST_URL}/{db}"

    def fetch(self, url: str, sql: str) -> list[dict[str, Any]]:
        """Rows of a query on one of this backend's PostgreSQL databases."""
        return pg_fetch(url, sql)

    def drop_all(self) -> None:
        for db in self._created:
            with contextlib.suppress(Exception):
                pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self._created.clear()


def check_postgres() -> None:
    """Skip (or fail, see `service_unavailable`) when PostgreSQL does not answer."""
    try:
        pg_admin("SELECT 1")
    except Exception as exc:
        service_unavailable(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc!r}")


@contextlib.contextmanager
def backend_for(name: str) -> Iterator[Backend]:
    """The `backend` fixture's body: for `pg` a fresh database, dropped (WITH (FORCE)) on exit."""
    if name == "sqlite":
        yield Backend("sqlite")
        return
    check_postgres()
    b = Backend("pg")
    try:
        b.url = b.new_database()
        yield b
    finally:
        b.drop_all()


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """One fresh PostgreSQL database URL (skips without PostgreSQL), dropped on exit."""
    with backend_for("pg") as b:
        assert b.url is not None
        yield b.url


# ------------------------------------------------------------------------------------------- Redis
def check_redis() -> str:
    """`REDIS_URL` once Redis answers a PING (else skip or fail, see `service_unavailable`)."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        service_unavailable(f"Redis not reachable at 127.0.0.1:6379: {exc!r}")
    return REDIS_URL


@contextlib.contextmanager
def redis_prefix_on(url: str) -> Iterator[str]:
    """A random key prefix (`gengate-test-<hex>:`) on `url`; its keys are deleted on exit."""
    import redis

    prefix = f"gengate-test-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
