"""Several gengate processes on one database.

- Two `gengate serve` processes (own data dirs, one GENGATE_SECRET_KEY) on one PostgreSQL database,
  100 tasks created through both: all succeed, exactly 100 upstream jobs, and the emulator never saw
  two polls of one task at once (`overlapping_polls` = 0: a task is leased by one process at a time).
- `gengate serve --workers 2` on SQLite: tasks complete, one job each.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from harness.durability import (
    Client,
    body,
    check_books,
    http_session,
    key_id,
    new_server,
    servers,
    wait_all_terminal,
)
from harness.services import fresh_pg_database

START = 100_000_000


@pytest.fixture
def pg_url():
    with fresh_pg_database() as url:  # skips (or fails under GENGATE_TEST_REQUIRE_SERVICES=1) without PostgreSQL
        yield url


async def test_two_servers_on_one_postgres_database(pg_url, emu, tmp_path):
    shared = {"GENGATE_SECRET_KEY": secrets.token_urlsafe(32)}  # both open the channel secrets
    a = new_server(tmp_path / "a", pg_url, env=shared)
    b = new_server(tmp_path / "b", pg_url, env=shared)
    secret = emu.new_secret()
    n = 100
    with servers(a, b):
        a.channel_add(emu.provider_url("vidu"), secret, name="shared-vidu")
        name, key = a.make_named_key(credits=START)
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        emu.reset(counters_only=True)  # overlapping_polls counts for the whole provider
        async with http_session() as http:
            ca, cb = Client(http, a.url, key), Client(http, b.url, key)
            replies = await asyncio.gather(*((ca if i % 2 else cb).create_ok(body(f"two procs {i}"))
                                             for i in range(n)))
            assert len({r["id"] for r in replies}) == n
            kid = key_id(a, name)
            rows = await wait_all_terminal(a, kid, within=60, expect=n)
            for i in (0, 1, n - 2, n - 1):  # either process answers for any task
                assert (await ca.get(replies[i]["id"]))["state"] == "success"
                assert (await cb.get(replies[i]["id"]))["state"] == "success"
        stats = emu.stats()["vidu"]
        assert stats["overlapping_polls"] == 0, stats
        assert emu.creates(secret) == n
        check_books(a, name, kid, START, rows, emulator=emu, upstream_secrets=(secret,))


async def test_two_workers_on_sqlite(emu, tmp_path):
    server = new_server(tmp_path, None, args=("--workers", "2"))
    secret = emu.new_secret()
    n = 20
    with servers(server):
        server.channel_add(emu.provider_url("vidu"), secret, name="workers-vidu")
        name, key = server.make_named_key(credits=START)
        server.start()
        emu.reset(counters_only=True)
        async with http_session() as http:
            client = Client(http, server.url, key)
            replies = await asyncio.gather(*(client.create_ok(body(f"workers {i}")) for i in range(n)))
            kid = key_id(server, name)
            rows = await wait_all_terminal(server, kid, within=40, expect=n)
            for r in replies:
                assert (await client.get(r["id"]))["state"] == "success"
        assert emu.stats()["vidu"]["overlapping_polls"] == 0
        assert emu.creates(secret) == n
        check_books(server, name, kid, START, rows, emulator=emu, upstream_secrets=(secret,))
