"""Idempotency-Key on `POST /vidu/v1/tasks` (interface.md "Tasks: ... idempotency"), on both backends:
replay, another body, a concurrent duplicate, another client key.

A first request whose process died (crash point after_task_commit, and every other crash point)
replayed after the restart is covered in test_crash_points.py, where every create carries a key;
test_sigkill_in_flight.py does the same for creates cut by SIGKILL.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from harness.durability import (
    Client,
    body,
    http_session,
    key_id,
    new_server,
    servers,
    task_rows,
    until,
)
from harness.vidu import assert_vidu_error

START = 10_000_000


@pytest.fixture(scope="module")
def idem_server(backend, emu, tmp_path_factory):
    server = new_server(tmp_path_factory.mktemp("idem"), backend.new_database())
    server.secret = emu.new_secret()
    server.channel_add(emu.provider_url("vidu"), server.secret, name="idem-vidu")
    with servers(server):
        server.start()
        yield server
    emu.clear_faults()


async def test_replay_other_body_other_key(idem_server, emu):
    server = idem_server
    name, key = server.make_named_key(credits=START)
    other = server.make_key(credits=START)
    value = "idem-" + secrets.token_hex(6)
    payload = body("idempotent")
    before = emu.creates(server.secret)
    async with http_session() as http:
        a, b = Client(http, server.url, key), Client(http, server.url, other)
        first = await a.create_ok(payload, value)
        again = await a.create_ok(payload, value)
        assert again["id"] == first["id"]
        assert emu.creates(server.secret) == before + 1, "a replay was sent upstream again"

        reply = await a.create(body("another body"), value)
        assert reply is not None
        assert_vidu_error(reply, 422)

        theirs = await b.create_ok(payload, value)  # another client key: unrelated
        assert theirs["id"] != first["id"]
        assert emu.creates(server.secret) == before + 2

        done = await a.wait(first["id"])
        assert done["state"] == "success"
        replay = await a.create_ok(payload, value)  # after completion: the same task, as it is now
        assert replay["id"] == first["id"] and replay["state"] == "success"
        await b.wait(theirs["id"])
        assert emu.creates(server.secret) == before + 2
    kid = key_id(server, name)
    rows = task_rows(server, kid)
    assert len(rows) == 1
    assert server.credits(name) == START - rows[0]["settled"]


async def test_concurrent_duplicate_is_409(idem_server, emu):
    server = idem_server
    _name, key = server.make_named_key(credits=START)
    value = "idem-" + secrets.token_hex(6)
    payload = body("held in flight")
    before = emu.creates(server.secret)
    # The first create's job is accepted upstream, then its reply is held 1 s (under SUBMIT_TIMEOUT).
    emu.fault(provider="vidu", op="create", secret=server.secret, kind="timeout", seconds=1.0, count=1)
    async with http_session() as http:
        client = Client(http, server.url, key)
        first = asyncio.create_task(client.create(payload, value))
        await until(lambda: emu.creates(server.secret) == before + 1, 5, "the first create upstream")
        assert not first.done()
        dup = await client.create(payload, value)
        assert dup is not None
        assert_vidu_error(dup, 409)
        reply = await first
        assert reply is not None and reply.status == 200, reply
        replay = await client.create_ok(payload, value)  # once the first is answered: its task
        assert replay["id"] == reply.body["id"]
        done = await client.wait(reply.body["id"])
        assert done["state"] == "success"
    assert emu.creates(server.secret) == before + 1
