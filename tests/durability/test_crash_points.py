"""Each named crash point (GENGATE_CRASH_AT, gengate/core/crash.py) on both backends.

The server starts with the variable set; the client creates tasks until the process dies (exit
137); it restarts WITHOUT the variable on the same data dir and database. Then: every task terminal
and succeeded within the deadline, exactly one ledger entry of each kind a task's end implies, the
balance is start - sum(settled), exactly one upstream job per task, no slot left held.

Every create carries an Idempotency-Key; one that got no reply (its process died) is replayed after
the restart: 409 while the dead request still counts as in progress, then the task if it was saved
(after_task_commit: always), else a new one. This is the idempotency "first request died" case.

The five scenarios of a backend are independent (own data dir / database, own upstream secret), so
they run at the same time, once per backend (fixture `outcomes`); each test reports its own.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from harness.durability import (
    Client,
    body,
    check_books,
    http_session,
    key_id,
    new_server,
    servers,
    task_rows,
    wait_all_terminal,
)

POINTS = ["after_task_commit", "after_upstream_accept", "during_poll", "before_ledger", "during_rehost"]
START = 50_000_000
MAX_TASKS = 40


async def scenario(point: str, database_url: str | None, emu: Any, tmp: Path, label: str) -> str:
    server = new_server(tmp, database_url)
    secret = emu.new_secret()
    with servers(server):
        await asyncio.to_thread(server.channel_add, emu.provider_url("vidu"), secret, name="crash-vidu")
        name, key = await asyncio.to_thread(server.make_named_key, None, START)
        server.extra_env["GENGATE_CRASH_AT"] = point
        await asyncio.to_thread(server.start)
        got: list[str] = []  # task ids the client was given before the crash
        lost: list[tuple[dict[str, Any], str]] = []  # creates that got no reply: (body, Idempotency-Key)
        attempts = 0
        async with http_session() as http:
            client = Client(http, server.url, key)
            while server.running() and attempts < MAX_TASKS:
                attempts += 1
                payload, value = body(f"crash {point} {attempts}"), f"crash-{point}-{attempts}"
                reply = await client.create(payload, value)
                if reply is None:
                    lost.append((payload, value))
                else:
                    assert reply.status == 200, (reply.status, reply.text)
                    got.append(reply.body["id"])
                await asyncio.sleep(0.1)
            code = await asyncio.to_thread(server.wait_exit, 15)
            assert code == 137, f"the server did not stop at {point} (exit {code}) after {attempts} creates"
            assert f"GENGATE_CRASH_AT={point}" in server.log_text()
            kid = await asyncio.to_thread(key_id, server, name)
            saved = {r["public_id"] for r in await asyncio.to_thread(task_rows, server, kid)}

            del server.extra_env["GENGATE_CRASH_AT"]
            restarted = time.monotonic()
            await asyncio.to_thread(server.start)
            # A create whose process died: its replay (same key and body) is 409 while the dead request
            # still counts as in progress (under 30 s), then returns the task if one was saved, else
            # creates it.
            replayed: list[str] = []
            for payload, value in lost:
                end = time.monotonic() + 30
                while True:
                    reply = await client.create(payload, value)
                    assert reply is not None, "the restarted server dropped a request"
                    if reply.status == 200:
                        replayed.append(reply.body["id"])
                        break
                    assert reply.status == 409, (reply.status, reply.text)
                    assert time.monotonic() < end, "a dead create still counts as in progress after 30 s"
                    await asyncio.sleep(0.2)
            if point == "after_task_commit":  # the task row was committed before the process died
                assert len(lost) == 1 and replayed == sorted(saved), (replayed, saved)
            rows = await wait_all_terminal(server, kid, within=45)
            took = time.monotonic() - restarted
            assert {r["public_id"] for r in rows} == set(got) | set(replayed), "a task lost, or one too many"
            assert saved <= set(replayed) | set(got)
            await asyncio.sleep(0.5)  # nothing may move after the end (a late settle or create)
            rows = await asyncio.to_thread(task_rows, server, kid)
            await asyncio.to_thread(check_books, server, name, kid, START, rows, emulator=emu,
                                    upstream_secrets=(secret,))
            for public_id in got + replayed:  # what the client sees agrees with the books
                task = await client.unified(public_id)
                assert task["status"] == "succeeded", task
                row = next(r for r in rows if r["public_id"] == public_id)
                assert task["cost"] == {"reserved": row["reserved"], "settled": row["settled"]}, task
    return (f"{label}: {attempts} creates sent, {len(got)} answered, {len(replayed)} replayed after the restart, "
            f"{len(rows)} tasks, all terminal {took:.1f} s after the restart")


async def same_body_killed_mid_create(database_url: str | None, emu: Any, tmp: Path, label: str) -> str:
    """Three creates with one body, all accepted upstream while their replies are held (emulator
    `timeout` fault), then SIGKILL: after the restart each task is reconciled to a job of its own
    (no job bound twice, none re-sent), and all succeed."""
    server = new_server(tmp, database_url)
    secret = emu.new_secret()
    n = 3
    with servers(server):
        await asyncio.to_thread(server.channel_add, emu.provider_url("vidu"), secret, name="same-body")
        name, key = await asyncio.to_thread(server.make_named_key, None, START)
        await asyncio.to_thread(server.start)
        emu.fault(provider="vidu", op="create", secret=secret, kind="timeout", seconds=5.0, count=n)
        payload = body("one body for all")
        async with http_session() as http:
            client = Client(http, server.url, key)
            creates = asyncio.gather(*(client.create(payload) for _ in range(n)))
            end = time.monotonic() + 5
            while emu.creates(secret) < n:
                assert time.monotonic() < end, "the creates did not reach the upstream"
                await asyncio.sleep(0.02)
            await asyncio.to_thread(server.kill)  # before SUBMIT_TIMEOUT: every task is still submitting
            assert await creates == [None] * n
            restarted = time.monotonic()
            await asyncio.to_thread(server.start)
            kid = await asyncio.to_thread(key_id, server, name)
            rows = await wait_all_terminal(server, kid, within=45, expect=n)
            took = time.monotonic() - restarted
            await asyncio.sleep(0.5)
            rows = await asyncio.to_thread(task_rows, server, kid)
            await asyncio.to_thread(check_books, server, name, kid, START, rows, emulator=emu,
                                    upstream_secrets=(secret,))
            assert len({r["upstream_id"] for r in rows}) == n
    return f"{label}: {n} tasks with one body, all terminal {took:.1f} s after the restart, one job each"


SCENARIOS = [*POINTS, "sigkill_mid_create_same_body"]


@pytest.fixture(scope="module")
async def outcomes(backend, emu, tmp_path_factory) -> dict[str, Any]:
    """Run every scenario of this backend at once; a scenario's result or its exception."""
    runs = [scenario(p, backend.new_database(), emu, tmp_path_factory.mktemp(f"crash-{p}"), f"{p}/{backend.name}")
            for p in POINTS]
    runs.append(same_body_killed_mid_create(backend.new_database(), emu, tmp_path_factory.mktemp("crash-same"),
                                            f"sigkill_mid_create_same_body/{backend.name}"))
    results = await asyncio.gather(*runs, return_exceptions=True)
    return dict(zip(SCENARIOS, results, strict=True))


def _report(outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        raise outcome
    print(outcome)


@pytest.mark.parametrize("point", POINTS)
async def test_crash_point_then_restart(point, outcomes):
    _report(outcomes[point])


async def test_sigkill_mid_create_with_one_body(outcomes):
    _report(outcomes["sigkill_mid_create_same_body"])
