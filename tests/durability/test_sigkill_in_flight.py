"""50 tasks in flight, `gengate serve` killed with SIGKILL at a moment drawn from a logged seed, restarted.

The 50 creates are sent at once, each with its own Idempotency-Key; the kill may land while some
are still being answered. A create that got no reply is sent again after the restart with the same
key and body (409 while the dead request still counts as in progress, then the task or a new
create), so the client ends with exactly 50 tasks. Then: all 50 terminal and succeeded, the ledger
is the sum of the settled prices, exactly 50 upstream jobs.

Reproduce a run with GENGATE_DURABILITY_SEED=<seed printed by the test>.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import signal
import time

from harness.durability import (
    Client,
    body,
    check_books,
    http_session,
    key_id,
    new_server,
    seed_from_env,
    servers,
    task_rows,
    wait_all_terminal,
)

N = 50
START = 100_000_000


async def test_sigkill_with_50_tasks_in_flight(backend, emu, tmp_path):
    seed = seed_from_env()
    rng = random.Random(seed)
    kill_after = rng.uniform(0.0, 2.5)  # from the first create: during the creates, polls or re-hosting
    print(f"\nSIGKILL test ({backend.name}): seed={seed} kill_after={kill_after:.3f}s "
          f"(rerun with GENGATE_DURABILITY_SEED={seed})")
    server = new_server(tmp_path, backend.new_database())
    secret = emu.new_secret()
    with servers(server):
        server.channel_add(emu.provider_url("vidu"), secret, name="kill-vidu")
        name, key = server.make_named_key(credits=START)
        server.start()
        bodies = [body(f"sigkill {i}") for i in range(N)]
        idem = [f"kill-{i}-{secrets.token_hex(4)}" for i in range(N)]
        ids: dict[int, str] = {}
        async with http_session() as http:
            client = Client(http, server.url, key)

            async def create(i: int) -> None:
                await asyncio.sleep(rng_delays[i])
                reply = await client.create(bodies[i], idem[i])
                if reply is not None:
                    assert reply.status == 200, (reply.status, reply.text)
                    ids[i] = reply.body["id"]

            rng_delays = [rng.uniform(0.0, 0.5) for _ in range(N)]  # spread the creates a little
            started = time.monotonic()
            creates = asyncio.gather(*(create(i) for i in range(N)))
            await asyncio.sleep(kill_after)
            await asyncio.to_thread(server.kill)
            killed_at = time.monotonic() - started
            await creates
            print(f"killed {killed_at:.2f} s after the creates began; {len(ids)} of {N} creates answered")

            await asyncio.to_thread(server.restart, signal.SIGKILL)
            restarted = time.monotonic()
            for i in range(N):  # the creates that got no reply: replay them until answered
                end = time.monotonic() + 30
                while i not in ids:
                    reply = await client.create(bodies[i], idem[i])
                    assert reply is not None, "the restarted server dropped a request"
                    if reply.status == 200:
                        ids[i] = reply.body["id"]
                    else:
                        assert reply.status == 409, (reply.status, reply.text)
                        assert time.monotonic() < end, f"create {i} still in progress 30 s after the restart"
                        await asyncio.sleep(0.25)
            assert len(set(ids.values())) == N

            kid = key_id(server, name)
            rows = await wait_all_terminal(server, kid, within=60, expect=N)
            print(f"all {N} terminal {time.monotonic() - restarted:.1f} s after the restart")
            assert {r["public_id"] for r in rows} == set(ids.values())
            await asyncio.sleep(0.5)
            rows = task_rows(server, kid)
            check_books(server, name, kid, START, rows, emulator=emu, upstream_secrets=(secret,))
            assert emu.creates(secret) == N
