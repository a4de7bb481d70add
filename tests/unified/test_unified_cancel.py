"""Cancelling tasks: `POST /v1/tasks/{id}/cancel` and Vidu's `DELETE /vidu/v1/tasks/{id}`.

client → `gengate serve` (subprocess, no sandbox) → HTTP → a `gengate emulate` of this module alone, so
that its hold and fault controls can freeze every Vidu task without touching other modules. The
ledger is read from the database (`ledger_entries`) and the balance through `keys list --json`.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest
from harness.processes import Emulator
from harness.vidu import assert_vidu_error
from unified_client import (
    PRICE_T2V_4S,
    assert_openai_error,
    call,
    check_unified,
    get_task,
    t2v,
    wait_status,
)

pytestmark = pytest.mark.timeout(150)

ENV = {"GENGATE_POLL_INTERVAL": "0.2"}
CREDITS = 1_000_000
# The race runs on both backends (row locking differs); the plain cancels on SQLite only, to stay quick.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    emu = Emulator(tmp_path_factory.mktemp("cancel-emulator"), task_seconds=2.0).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def server(backend, make_server, upstream):
    return make_server(database_url=backend.new_database(), sandbox=False, emulator=upstream, env=ENV)


@pytest.fixture
def emu(upstream):
    """The module's emulator with zeroed counters, no faults and no holds, before and after the test."""
    upstream.reset()
    yield upstream
    upstream.reset()


def ledger(server, task_id: str) -> list[tuple[str, int]]:
    rows = server.db_query("SELECT l.kind, l.amount FROM ledger_entries l JOIN tasks t ON t.id = l.task_id "
                           f"WHERE t.public_id = '{task_id}' ORDER BY l.id")
    return [(r["kind"], int(r["amount"])) for r in rows]


def upstream_tasks(emu: Emulator, secret: str) -> list[dict[str, Any]]:
    """The jobs the emulator holds for `secret`, newest first (its own `tasks/history/me`)."""
    req = urllib.request.Request(f"{emu.base}/vidu/vidu/v1/tasks/history/me?page_size=100",
                                 headers={"Authorization": f"Token {secret}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["tasks"]


async def wait_upstream(emu: Emulator, secret: str, n: int, state: str, within: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        jobs = upstream_tasks(emu, secret)
        if len(jobs) >= n and all(j["state"] == state for j in jobs[:n]):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"upstream jobs not all {state}: {[j['state'] for j in jobs]}")
        await asyncio.sleep(0.1)


@SQLITE_ONLY
@pytest.mark.parametrize("route", ["unified", "vidu"])
async def test_cancel_mid_task(server, emu, vidu, http, route):
    name, key = server.make_named_key(credits=CREDITS)
    emu.hold(True)  # the job stays running upstream until released
    client = vidu(server, key)
    task_id = (await client.create_ok(t2v()))["id"]
    await wait_status(http, server.url, key, task_id, {"in_progress"})
    assert server.credits(name) == CREDITS - PRICE_T2V_4S  # reserved
    assert emu.counters(server.secret)["cancels"] == 0

    if route == "unified":
        answer = await call(http, "POST", f"{server.url}/v1/tasks/{task_id}/cancel", key)
        assert answer.status == 200, (answer.status, answer.text)
        check_unified(answer.body, task_id)
        assert answer.body["status"] == "cancelled", answer.body
    else:
        reply = await client.request("DELETE", f"/vidu/v1/tasks/{task_id}")
        assert reply.status == 200 and reply.body == {}, (reply.status, reply.text)

    # The provider's cancelled state, on both APIs.
    vidu_task = (await client.get(task_id)).body
    assert vidu_task["state"] == "canceled" and vidu_task["creations"] == [], vidu_task
    unified = await get_task(http, server.url, key, task_id)
    assert unified["status"] == "cancelled" and unified["outputs"] == [], unified
    assert unified["cost"] == {"reserved": PRICE_T2V_4S, "settled": 0}, unified
    # Upstream was told: the emulator counted the cancel and its job is cancelled.
    assert emu.counters(server.secret)["cancels"] == 1
    assert upstream_tasks(emu, server.secret)[0]["state"] == "canceled"
    # Refunded exactly once.
    assert server.credits(name) == CREDITS
    assert ledger(server, task_id) == [("reserve", PRICE_T2V_4S), ("refund", -PRICE_T2V_4S)]

    # Nothing changes afterwards, even with the upstream free to move and the poller running.
    emu.hold(False)
    await asyncio.sleep(1.0)
    assert (await get_task(http, server.url, key, task_id)) == unified

    # Cancelling again (a terminal task): a clear 4xx in each family's envelope, nothing sent upstream.
    again = await call(http, "POST", f"{server.url}/v1/tasks/{task_id}/cancel", key)
    assert_openai_error(again, 409)
    assert "cancelled" in again.body["error"]["message"], again.body
    assert_vidu_error(await client.request("DELETE", f"/vidu/v1/tasks/{task_id}"), 400)
    assert emu.counters(server.secret)["cancels"] == 1
    assert server.credits(name) == CREDITS
    assert ledger(server, task_id) == [("reserve", PRICE_T2V_4S), ("refund", -PRICE_T2V_4S)]


@SQLITE_ONLY
async def test_cancel_of_a_succeeded_task_is_refused(server, emu, vidu, http):
    name, key = server.make_named_key(credits=CREDITS)
    client = vidu(server, key)
    task_id = (await client.create_ok(t2v()))["id"]
    final, _ = await wait_status(http, server.url, key, task_id)
    assert final["status"] == "succeeded", final
    settled = final["cost"]["settled"]

    answer = await call(http, "POST", f"{server.url}/v1/tasks/{task_id}/cancel", key)
    assert_openai_error(answer, 409)
    assert "succeeded" in answer.body["error"]["message"], answer.body
    assert_vidu_error(await client.request("DELETE", f"/vidu/v1/tasks/{task_id}"), 400)

    assert (await get_task(http, server.url, key, task_id)) == final
    assert (await client.get(task_id)).body["state"] == "success"
    assert emu.counters(server.secret)["cancels"] == 0
    assert server.credits(name) == CREDITS - settled
    assert ledger(server, task_id) == [("reserve", PRICE_T2V_4S), ("settle", settled - PRICE_T2V_4S)]


async def test_cancel_racing_success_has_one_winner(server, emu, vidu, http):
    """Every upstream job reaches success while gengate cannot see it (its polls get 500); then the
    polls are let through and a cancel is sent at a different moment for each task, from "before gengate
    can know" to "after gengate showed success". Each task ends cancelled-and-refunded or
    succeeded-and-settled, never both, and the balance is exactly the sum of what succeeded."""
    name, key = server.make_named_key(credits=CREDITS)
    client = vidu(server, key)
    emu.fault(provider="vidu", op="poll", secret=server.secret, kind="status", status=500)
    # Around where gengate sees the success (next poll, then re-hosting): measured 0.4-0.7 s here.
    delays = [0.0, 0.15, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.85, 1.0, 1.5]
    ids = [(await client.create_ok(t2v(f"race {i}")))["id"] for i in range(len(delays) + 2)]
    await wait_upstream(emu, server.secret, len(ids), "success")
    for task_id in ids:  # gengate has not seen the success
        assert (await get_task(http, server.url, key, task_id))["status"] == "in_progress"

    async def cancel(task_id: str) -> int:
        return (await call(http, "POST", f"{server.url}/v1/tasks/{task_id}/cancel", key)).status

    # The first one is cancelled while gengate still cannot know: the cancel must win.
    statuses = {ids[0]: await cancel(ids[0])}
    assert statuses[ids[0]] == 200
    emu.clear_faults()

    async def later(task_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        statuses[task_id] = await cancel(task_id)

    await asyncio.gather(*(later(t, d) for t, d in zip(ids[1:-1], delays, strict=True)))
    # The last one is cancelled only after gengate showed its success: the success must win.
    last, _ = await wait_status(http, server.url, key, ids[-1])
    assert last["status"] == "succeeded", last
    statuses[ids[-1]] = await cancel(ids[-1])
    assert statuses[ids[-1]] == 409

    await asyncio.sleep(1.0)  # let any poll still in flight land
    charged = 0
    outcomes = []
    for task_id in ids:
        final = await get_task(http, server.url, key, task_id)
        entries = ledger(server, task_id)
        kinds = [k for k, _ in entries]
        outcomes.append(final["status"])
        if statuses[task_id] == 200:  # the cancel won
            assert final["status"] == "cancelled", (task_id, final)
            assert final["cost"]["settled"] == 0 and final["outputs"] == [], final
            assert entries == [("reserve", PRICE_T2V_4S), ("refund", -PRICE_T2V_4S)], entries
            assert (await client.get(task_id)).body["state"] == "canceled"
        else:  # the success won
            assert statuses[task_id] == 409, statuses
            assert final["status"] == "succeeded", (task_id, final)
            assert final["cost"]["settled"] > 0 and final["outputs"], final
            assert kinds == ["reserve", "settle"], entries
            charged += final["cost"]["settled"]
    assert server.credits(name) == CREDITS - charged, (outcomes, charged)
    assert {"cancelled", "succeeded"} <= set(outcomes), outcomes


@SQLITE_ONLY
async def test_cancel_while_the_create_is_in_flight_stops_the_upstream_job(backend, make_server, emu, vidu, http):
    """The channel takes one job at a time, so the second task is submitted by the poller, not in the
    client's request; the emulator accepts that job and holds its reply 3 s, and the client cancels the
    task meanwhile. The refund is right; the upstream job must not run on unseen."""
    server = make_server(database_url=backend.new_database(), sandbox=False, emulator=emu, env=ENV,
                         max_concurrency=1)
    _, key = server.make_named_key(credits=CREDITS)
    client = vidu(server, key)
    emu.hold(True)
    first = (await client.create_ok(t2v("takes the slot")))["id"]
    second = await client.create_ok(t2v("waits for the slot"))
    assert second["state"] == "queueing", second
    emu.fault(provider="vidu", op="create", secret=server.secret, kind="timeout", seconds=3)
    assert (await call(http, "POST", f"{server.url}/v1/tasks/{first}/cancel", key)).status == 200
    deadline = time.monotonic() + 15
    while len(upstream_tasks(emu, server.secret)) < 2:  # the second job exists upstream; its reply is held
        assert time.monotonic() < deadline, "the second task was never submitted"
        await asyncio.sleep(0.1)
    assert (await get_task(http, server.url, key, second["id"]))["status"] in ("queued", "in_progress")
    answer = await call(http, "POST", f"{server.url}/v1/tasks/{second['id']}/cancel", key)
    assert answer.status == 200 and answer.body["status"] == "cancelled", answer.text
    await asyncio.sleep(4)  # the create's reply arrives
    assert (await get_task(http, server.url, key, second["id"]))["status"] == "cancelled"
    jobs = upstream_tasks(emu, server.secret)
    assert [j["state"] for j in jobs] == ["canceled", "canceled"], jobs
    assert emu.counters(server.secret)["cancels"] == 2
