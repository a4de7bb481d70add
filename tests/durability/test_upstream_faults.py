"""What gengate does when the upstream misbehaves (emulator faults, gengate/emulator/faults.py).

One server for the module (SQLite: these are about the engine, not the database); each test adds
its own channels serving a model of its own (`channels add --models`), with secrets of its own, so
that routing, faults and counters of one test never touch another. Deadline expiry needs its own
server (GENGATE_DEADLINES=vidu=3).
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from harness.durability import (
    Client,
    body,
    check_books,
    events_of,
    http_session,
    key_id,
    new_server,
    servers,
    task_rows,
    until,
    wait_all_terminal,
)
from harness.processes import free_port

START = 10_000_000


@pytest.fixture(scope="module")
def gw(emu, tmp_path_factory):
    server = new_server(tmp_path_factory.mktemp("faults"))
    with servers(server):
        server.start()
        yield server


STORM = 10.0


async def storm_run(gw, emu) -> str:
    """Five creates at the start of a 10 s storm of 429 + Retry-After on their only channel."""
    m, secret = model(), emu.new_secret()
    await asyncio.to_thread(gw.channel_add, emu.provider_url("vidu"), secret, name=f"storm-{m}", models=m)
    name, key = await asyncio.to_thread(gw.make_named_key, None, START)
    emu.fault(provider="vidu", op="create", secret=secret, kind="status", status=429, retry_after=1, duration=STORM)
    began = time.monotonic()
    async with http_session() as http:
        client = Client(http, gw.url, key)
        replies = [await client.create_ok(body(f"storm {i}", m)) for i in range(5)]
        # No other channel: each waits in Vidu's queued state and is submitted again after backoff.
        assert all(r["state"] == "queueing" for r in replies), [r["state"] for r in replies]
        kid = await asyncio.to_thread(key_id, gw, name)
        checks = 0
        while time.monotonic() - began < STORM - 1.0:  # during the storm: nothing fails, no job made
            rows = await asyncio.to_thread(task_rows, gw, kid)
            creates = await asyncio.to_thread(emu.creates, secret)
            if time.monotonic() - began < STORM - 0.5:  # both read while the storm still blew
                assert all(r["state"] in ("queued", "submitting") for r in rows), rows
                assert creates == 0
                checks += 1
            await asyncio.sleep(0.5)
        assert checks >= 1, "the storm was not watched"
        for r in replies:
            assert (await client.wait(r["id"], within=STORM + 20))["state"] == "success"
    await finish(gw, emu, name, 5, (secret,))
    return f"storm of {STORM} s: 5 tasks succeeded {time.monotonic() - began:.1f} s after it began"


@pytest.fixture(scope="module", autouse=True)
async def storm(gw, emu):
    """The 429 storm runs in the background while the module's other tests run (its channel, secret
    and model are its own); `test_429_storm_with_retry_after`, last in the module, takes its result."""
    task = asyncio.create_task(storm_run(gw, emu))
    yield task
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def model() -> str:
    return f"vidu-test-{secrets.token_hex(3)}"


async def finish(server, emu, name: str, n: int, upstream: tuple[str, ...], all_succeed: bool = True,
                 within: float = 30) -> list[dict]:
    kid = key_id(server, name)
    rows = await wait_all_terminal(server, kid, within=within, expect=n)
    check_books(server, name, kid, START, rows, emulator=emu, upstream_secrets=upstream, all_succeed=all_succeed)
    return rows


@pytest.mark.parametrize("how", ["status-500", "refused-connection"])
async def test_create_not_accepted_goes_to_the_other_channel(gw, emu, how):
    m, bad, good = model(), emu.new_secret(), emu.new_secret()
    if how == "status-500":
        emu.fault(provider="vidu", op="create", secret=bad, kind="status", status=500)
        bad_url = emu.provider_url("vidu")
    else:
        bad_url = f"http://127.0.0.1:{free_port()}/vidu"  # nothing listens there
    gw.channel_add(bad_url, bad, name=f"first-{m}", models=m, priority=0)  # lowest number: tried first
    gw.channel_add(emu.provider_url("vidu"), good, name=f"second-{m}", models=m, priority=10)
    name, key = gw.make_named_key(credits=START)
    async with http_session() as http:
        client = Client(http, gw.url, key)
        task = await client.create_ok(body(f"failover {how}", m))
        assert task["state"] != "queueing", task  # retried on the other channel before answering
        assert (await client.wait(task["id"]))["state"] == "success"
    rows = await finish(gw, emu, name, 1, (bad, good))
    assert emu.creates(bad) == 0 and emu.creates(good) == 1
    reasons = events_of(gw, [r["id"] for r in rows])
    expect = "create not accepted: HTTP 500" if how == "status-500" else "create not sent"
    assert any(expect in r for r in reasons), reasons  # the first channel really was tried


@pytest.mark.parametrize("kind", ["drop_after_accept", "timeout"])
async def test_ambiguous_create_is_reconciled(gw, emu, kind):
    """The job is accepted, then the reply is lost (connection dropped, or later than
    GENGATE_SUBMIT_TIMEOUT=1.5 s): reconciled through `/vidu/v1/tasks/history/me`, never re-sent."""
    m, secret = model(), emu.new_secret()
    gw.channel_add(emu.provider_url("vidu"), secret, name=f"ambiguous-{m}", models=m)
    name, key = gw.make_named_key(credits=START)
    extra = {"seconds": 3.0} if kind == "timeout" else {}
    emu.fault(provider="vidu", op="create", secret=secret, kind=kind, count=1, **extra)
    async with http_session() as http:
        client = Client(http, gw.url, key)
        task = await client.create_ok(body(f"ambiguous {kind}", m))
        assert emu.creates(secret) == 1
        assert (await client.wait(task["id"]))["state"] == "success"
    rows = await finish(gw, emu, name, 1, (secret,))
    assert emu.creates(secret) == 1
    reasons = events_of(gw, [r["id"] for r in rows])
    assert any(r.startswith("create outcome unknown") for r in reasons), reasons
    assert "reconciled: job found upstream" in reasons, reasons


async def test_401_disables_the_secret_and_another_channel_serves(gw, emu):
    m, good = model(), emu.new_secret()
    rejected = "not-an-upstream-secret-" + secrets.token_hex(4)  # the emulator answers 401
    gw.channel_add(emu.provider_url("vidu"), rejected, name=f"revoked-{m}", models=m, priority=0)
    gw.channel_add(emu.provider_url("vidu"), good, name=f"working-{m}", models=m, priority=10)
    name, key = gw.make_named_key(credits=START)
    async with http_session() as http:
        client = Client(http, gw.url, key)
        first = await client.create_ok(body("after 401 a", m))
        assert (await client.wait(first["id"]))["state"] == "success"
        second = await client.create_ok(body("after 401 b", m))  # straight to the working channel
        assert (await client.wait(second["id"]))["state"] == "success"
    rows = await finish(gw, emu, name, 2, (good,))
    assert emu.creates(good) == 2
    channel = next(c for c in gw.channels() if c["name"] == f"revoked-{m}")
    [shown] = channel["secrets"]
    assert shown["enabled"] is False, channel
    assert "401" in (shown["status_reason"] or ""), channel
    reasons = events_of(gw, [rows[1]["id"]])
    assert not any("401" in r for r in reasons), reasons  # the disabled secret is not tried again


async def test_unknown_upstream_state_keeps_polling(gw, emu):
    """The next 12 polls show a state Vidu never documented (`unknown_state`, then the fault is used
    up: cleared without touching the other tests' faults): the task keeps polling, is not failed, and
    completes once the real state shows again."""
    m, secret = model(), emu.new_secret()
    gw.channel_add(emu.provider_url("vidu"), secret, name=f"unknown-{m}", models=m)
    name, key = gw.make_named_key(credits=START)
    unknown = 12
    emu.fault(provider="vidu", op="poll", secret=secret, kind="unknown_state", count=unknown)
    async with http_session() as http:
        client = Client(http, gw.url, key)
        task = await client.create_ok(body("mystery", m))
        # 8 polls at 0.25 s: past the job's end upstream (1.5 s at most), each answered unknown.
        await until(lambda: emu.counters(secret)["polls"] >= 8, 10, "polls answered unknown", every=0.02)
        seen = await client.get(task["id"])
        assert seen["state"] not in ("success", "failed", "canceled"), seen
        assert "unknown upstream state" in gw.log_text()
        assert (await client.wait(task["id"]))["state"] == "success"
        assert emu.counters(secret)["polls"] > unknown  # it succeeded on a poll after the fault
    await finish(gw, emu, name, 1, (secret,))


async def test_deadline_expiry_fails_and_refunds_once(emu, tmp_path):
    server = new_server(tmp_path, env={"GENGATE_DEADLINES": "vidu=3"})
    secret = emu.new_secret()
    with servers(server):
        server.channel_add(emu.provider_url("vidu"), secret, name="deadline-vidu")
        name, key = server.make_named_key(credits=START)
        server.start()
        async with http_session() as http:
            client = Client(http, server.url, key)
            task = await client.create_ok(body("never ends"))
            kid = key_id(server, name)
            [row] = server.db_query(f"SELECT upstream_id FROM tasks WHERE key_id = {kid}")
            assert emu.hold(True, task_id=row["upstream_id"]) == 1  # this job never finishes
            try:
                started = time.monotonic()
                done = await client.wait(task["id"], within=15)
                took = time.monotonic() - started
            finally:
                emu.hold(False, task_id=row["upstream_id"])
            assert done["state"] == "failed", done
            assert done["err_code"] == "DeadlineExceeded", done
            assert took < 3 + 3, f"failed {took:.1f} s after the create, deadline 3 s"
            unified = await client.unified(task["id"])
            assert unified["status"] == "failed"
            assert unified["error"]["code"] == "DeadlineExceeded" and "deadline" in unified["error"]["message"]
            assert unified["cost"]["settled"] == 0
        await asyncio.sleep(0.5)
        rows = await finish(server, emu, name, 1, (secret,), all_succeed=False)
        assert rows[0]["state"] == "failed"
        assert server.credits(name) == START  # refunded, once (check_books counts the entries)


async def test_429_storm_with_retry_after(storm):
    """Upstream answers 429 with Retry-After to every create for 10 s (started with the module):
    no task fails, all complete after it, one job each."""
    print(await asyncio.wait_for(storm, STORM + 40))


async def test_identical_ambiguous_creates_bind_one_job_each(gw, emu):
    """Three creates with the same body whose replies are all lost (later than SUBMIT_TIMEOUT): each
    task must be reconciled to a job of its own (three jobs upstream, three tasks, no job shared)."""
    m, secret = model(), emu.new_secret()
    gw.channel_add(emu.provider_url("vidu"), secret, name=f"same-body-{m}", models=m)
    name, key = gw.make_named_key(credits=START)
    emu.fault(provider="vidu", op="create", secret=secret, kind="timeout", seconds=3.0, count=3)
    payload = body("the same prompt", m)
    async with http_session() as http:
        client = Client(http, gw.url, key)
        tasks = await asyncio.gather(*(client.create_ok(payload) for _ in range(3)))
        assert emu.creates(secret) == 3
        for t in tasks:
            assert (await client.wait(t["id"]))["state"] == "success"
    rows = await finish(gw, emu, name, 3, (secret,))
    assert len({r["upstream_id"] for r in rows}) == 3, rows


async def test_a_create_the_upstream_keeps_failing_ends_and_never_stalls_others(gw, emu):
    """GENGATE_SUBMIT_ATTEMPTS (contract; 10 by default): ten consecutive 5xx refusals of one task's
    create fail it with its refund, while the secret it shares keeps serving other clients' tasks
    (a secret's backoff is for the secret's health, not for one payload)."""
    m, secret = model(), emu.new_secret()
    await asyncio.to_thread(gw.channel_add, emu.provider_url("vidu"), secret, name=f"poison-{m}", models=m)
    name, key = await asyncio.to_thread(gw.make_named_key, None, START)
    emu.fault(provider="vidu", op="create", secret=secret, kind="status", status=500, body_contains="poison pill")
    async with http_session() as http:
        client = Client(http, gw.url, key)
        bad = await client.create_ok(body("a poison pill", m))
        began = time.monotonic()
        good = [await client.create_ok(body(f"a fine prompt {i}", m)) for i in range(6)]
        for r in good:
            assert (await client.wait(r["id"], within=20))["state"] == "success"
        healthy = time.monotonic() - began
        final = await client.wait(bad["id"], within=60)
    assert final["state"] == "failed", final
    rows = await finish(gw, emu, name, 7, (secret,), all_succeed=False)
    poison = next(r for r in rows if r["public_id"] == bad["id"])
    assert poison["settled"] == 0 and poison["upstream_id"] is None
    errors = gw.db_query(f"SELECT submit_errors FROM tasks WHERE id = {poison['id']}")[0]["submit_errors"]
    assert errors == 10
    assert healthy < 15, f"healthy tasks took {healthy:.1f} s beside the failing one"


async def test_a_child_pinned_to_a_rejected_secret_fails_with_its_refund(gw, emu):
    """An upscale must run on the account that made its creation. When that account's secret is
    rejected upstream (401) the secret is disabled and the child fails with its refund at once,
    instead of waiting (or retrying on the disabled secret) until its deadline."""
    m, secret = model(), emu.new_secret()
    await asyncio.to_thread(gw.channel_add, emu.provider_url("vidu"), secret, name=f"pinned-{m}", models=m)
    name, key = await asyncio.to_thread(gw.make_named_key, None, START)
    async with http_session() as http:
        client = Client(http, gw.url, key)
        parent = await client.wait((await client.create_ok(body("a parent", m)))["id"])
        assert parent["state"] == "success", parent
        emu.fault(provider="vidu", op="create", secret=secret, kind="status", status=401, body_contains='"upscale"')
        upscale = {"type": "upscale", "input": {"creation_id": parent["creations"][0]["id"]},
                   "settings": {"model": "stable", "duration": 4}}
        began = time.monotonic()
        child = await client.create_ok(upscale)
        final = await client.wait(child["id"], within=20)
    assert final["state"] == "failed", final
    assert time.monotonic() - began < 10
    await finish(gw, emu, name, 2, (secret,), all_succeed=False)
    [shown] = next(c for c in gw.channels() if c["name"] == f"pinned-{m}")["secrets"]
    assert shown["enabled"] is False, shown
