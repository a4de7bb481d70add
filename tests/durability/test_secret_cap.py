"""`--max-concurrency 4` on one secret with 20 tasks, on both backends (the slot is a database row).

The emulator holds every job where it is until the 20 creates are answered, so the cap is full for
certain: exactly 4 jobs upstream, the 16 others answered in Vidu's `queueing` state at create. Then
the hold is released: all 20 succeed, never more than 4 running upstream at once, 20 jobs in all.
"""

from __future__ import annotations

import asyncio

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

N = 20
CAP = 4
START = 10_000_000

EMULATOR_TASK_SECONDS = 0.6  # each emulated job is short here (the `emu` fixture reads this)


async def test_twenty_tasks_on_a_secret_capped_at_four(backend, emu, tmp_path):
    server = new_server(tmp_path, backend.new_database())
    secret = emu.new_secret()
    with servers(server):
        server.channel_add(emu.provider_url("vidu"), secret, name="capped", max_concurrency=CAP)
        name, key = server.make_named_key(credits=START)
        server.start()
        emu.hold(True)
        try:
            async with http_session() as http:
                client = Client(http, server.url, key)
                replies = await asyncio.gather(*(client.create_ok(body(f"cap {i}")) for i in range(N)))
                states = sorted(r["state"] for r in replies)
                assert states.count("queueing") == N - CAP, states
                assert emu.creates(secret) == CAP
                counters = emu.counters(secret)
                assert counters["running"] == CAP and counters["max_running"] == CAP, counters
                kid = key_id(server, name)
                assert sum(r["state"] == "queued" for r in task_rows(server, kid)) == N - CAP
                await asyncio.sleep(0.5)  # the poller must not push a 5th job while the 4 are held
                assert emu.creates(secret) == CAP
                emu.hold(False)
                rows = await wait_all_terminal(server, kid, within=40, expect=N)
                for r in replies:
                    assert (await client.get(r["id"]))["state"] == "success"
        finally:
            emu.hold(False)
        counters = emu.counters(secret)
        assert counters["max_running"] <= CAP, counters
        assert counters["creates"] == N
        check_books(server, name, kid, START, rows, emulator=emu, upstream_secrets=(secret,))
