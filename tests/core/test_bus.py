"""Cross-process wake-ups through Redis (gengate/core/bus.py, interface.md "Redis").

client (aiohttp) → two `gengate serve` processes on one PostgreSQL database and one Redis (a random
key prefix per test) → the standalone emulator, whose hold control keeps tasks running until the
test changes them. Nothing is mocked. In the tests with Redis, both processes run their database
fallbacks (`GENGATE_CHANGE_CHECK_INTERVAL`, `GENGATE_CONFIG_CHECK_INTERVAL`) only every 30 s, so
anything seen sooner on process B came through the bus. Without Redis (absent, or a dead port)
the same things work through the 1 s database checks, with at most one warning per process.
The first tests drive `Bus` itself in this process against the real Redis.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from harness.processes import GengateServer, free_port
from harness.services import fresh_pg_database
from harness.unified import call, t2v
from harness.webhooks import Hit, Receiver

from gengate.core.bus import CONFIG, TASK, Bus

pytestmark = pytest.mark.timeout(240)

SLOW_FALLBACK = {"GENGATE_CHANGE_CHECK_INTERVAL": "30", "GENGATE_CONFIG_CHECK_INTERVAL": "30"}
CREDITS = 10**9


def shared_env(**extra: str) -> dict[str, str]:
    return {"GENGATE_SECRET_KEY": secrets.token_urlsafe(24), "GENGATE_ADMIN_TOKEN": "adm-" + secrets.token_hex(8),
            "GENGATE_URL_ALLOW_PRIVATE": "1", **extra}


@pytest.fixture
def pair_on(make_server, emulator) -> Iterator[Callable[[dict[str, str]], tuple[GengateServer, GengateServer]]]:
    """`pair_on(env)`: processes A (which added the Vidu channel, the standalone emulator) and B on one
    fresh PostgreSQL database; both stopped before the database is dropped."""
    started: list[GengateServer] = []
    with fresh_pg_database() as pg:

        def make(env: dict[str, str]) -> tuple[GengateServer, GengateServer]:
            a = make_server(database_url=pg, sandbox=False, env=env, emulator=emulator)
            b = make_server(database_url=pg, sandbox=False, env=env)
            started.extend((a, b))
            return a, b

        try:
            yield make
        finally:
            emulator.hold(False)
            for server in started:
                server.close()


async def test_the_bus_carries_changes_between_processes_and_recovers_a_cut_connection(redis_url,
                                                                                     redis_prefix) -> None:
    import redis

    a, b = Bus(redis_url, redis_prefix), Bus(redis_url, redis_prefix)
    stranger = Bus(redis_url, redis_prefix + "another-deployment:")
    heard: dict[str, list[str]] = {"a": [], "b": [], "stranger": []}
    resyncs: list[float] = []
    for name, bus in (("a", a), ("b", b), ("stranger", stranger)):
        bus.on(TASK, heard[name].append)
        bus.on(CONFIG, lambda _arg, name=name: heard[name].append("config"))
    b.on_resync(lambda: resyncs.append(time.monotonic()))
    loops = [asyncio.create_task(bus.run()) for bus in (a, b, stranger)]
    try:
        await until(lambda: a.connected and b.connected and stranger.connected, 10, "three subscriptions")
        assert len(resyncs) == 1  # on the first subscription too
        a.publish(TASK, 7)
        a.publish(TASK, 7)
        a.publish(CONFIG)
        await until(lambda: "config" in heard["b"], 3, "the change on the other end")
        await asyncio.sleep(0.2)
        assert heard["b"] == ["7", "config"], heard  # the same change twice in a row goes once
        assert heard["a"] == [] and heard["stranger"] == [], heard  # not to itself, not to another prefix
        # Cut b's subscription (as a Redis restart would): it subscribes again and resyncs.
        admin = redis.Redis.from_url(redis_url)
        try:
            ids = [c["id"] for c in admin.client_list(_type="pubsub") if c["name"] == f"gengate-bus-{b.origin}"]
            assert len(ids) == 1, admin.client_list(_type="pubsub")
            admin.client_kill_filter(_id=ids[0])
        finally:
            admin.close()
        await until(lambda: len(resyncs) == 2 and b.connected, 10, "a new subscription after the cut")
        a.publish(TASK, 8)
        await until(lambda: "8" in heard["b"], 3, "a change after the reconnection")
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for bus in (a, b, stranger):
            await bus.close()


async def test_a_bus_without_redis_never_blocks_and_warns_once(caplog) -> None:
    bus = Bus(f"redis://127.0.0.1:{free_port()}/0", "gengate-test-dead:")
    loop = asyncio.create_task(bus.run())
    try:
        slowest = 0.0
        for i in range(30):  # about 3 s of changes while Redis is away
            started = time.monotonic()
            bus.publish(TASK, i)
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.1)
        assert slowest < 0.01, slowest
        assert not bus.connected and not loop.done()
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await bus.close()
    warnings = [r for r in caplog.records if r.name == "gengate.bus" and r.levelname == "WARNING"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "127.0.0.1" not in warnings[0].getMessage()  # the URL (it may hold a password) is not logged


async def watch(http: aiohttp.ClientSession, base: str, key: str, task_id: str,
                seen: list[tuple[float, dict[str, Any]]]) -> None:
    """Read `GET /v1/tasks/{id}/events` until it closes, noting when each event arrived."""
    async with http.get(f"{base}/v1/tasks/{task_id}/events", headers={"Authorization": f"Bearer {key}"},
                        timeout=aiohttp.ClientTimeout(total=90)) as resp:
        assert resp.status == 200, await resp.text()
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data:"):
                seen.append((time.monotonic(), json.loads(line[5:])))


async def until(check: Callable[[], bool], within: float, what: str) -> float:
    """Wait until `check()` holds; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} not within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def cancel_seen_on_b(http: aiohttp.ClientSession, vidu: Any, a: GengateServer, b: GengateServer,
                           key: str, within: float) -> float:
    """Create a (held) task on A, stream it on B, cancel it on A: seconds until B's stream had it."""
    created = await vidu(a, key).create_ok(t2v("a boat on the bus"))
    task_id = created["id"]
    seen: list[tuple[float, dict[str, Any]]] = []
    reader = asyncio.create_task(watch(http, b.url, key, task_id, seen))
    try:
        await until(lambda: bool(seen), 10, "the stream's first event")
        assert seen[0][1]["status"] in ("queued", "in_progress"), seen
        started = time.monotonic()
        answer = await call(http, "POST", f"{a.url}/v1/tasks/{task_id}/cancel", key)
        assert answer.status == 200 and answer.body["status"] == "cancelled", answer.text
        try:
            await asyncio.wait_for(asyncio.shield(reader), within)
        except TimeoutError:
            raise AssertionError(f"process B's stream did not see the cancel within {within} s: "
                                 f"{[e['status'] for _, e in seen]}") from None
    finally:
        reader.cancel()
    assert seen[-1][1]["status"] == "cancelled", [e["status"] for _, e in seen]
    return seen[-1][0] - started


async def status_on(http: aiohttp.ClientSession, server: GengateServer, key: str) -> int:
    async with http.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status


async def admin(http: aiohttp.ClientSession, server: GengateServer, method: str, path: str,
                body: Any = None) -> tuple[int, Any]:
    async with http.request(method, f"{server.url}/admin/api{path}", json=body,
                            headers={"Authorization": f"Bearer {server.admin_token}"}) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_stream_on_one_process_sees_a_change_made_on_another_at_once(pair_on, redis_url, redis_prefix,
                                                                         emulator, http, vidu) -> None:
    a, b = pair_on(shared_env(GENGATE_REDIS_URL=redis_url, GENGATE_REDIS_PREFIX=redis_prefix, **SLOW_FALLBACK))
    key = a.make_key(credits=CREDITS)
    emulator.hold(True)  # tasks stay in progress until cancelled
    # The fallback would take 30 s: anything under 5 s came through Redis; most come in milliseconds.
    delays = [await cancel_seen_on_b(http, vidu, a, b, key, within=5) for _ in range(6)]
    assert statistics.median(delays) < 0.5, delays
    assert max(delays) < 5, delays
    for server in (a, b):
        assert "Redis unreachable" not in server.log_text()


async def test_key_revoked_on_one_process_is_refused_on_another_at_once(pair_on, redis_url, redis_prefix,
                                                                       http) -> None:
    a, b = pair_on(shared_env(GENGATE_REDIS_URL=redis_url, GENGATE_REDIS_PREFIX=redis_prefix, **SLOW_FALLBACK))
    # Through the CLI (which shares GENGATE_REDIS_URL): B had the key cached.
    name, key = a.make_named_key()
    assert await status_on(http, b, key) == 200
    assert await status_on(http, b, key) == 200  # from B's key cache now
    proc = a.cli_run("keys", "revoke", name)
    assert "Redis unreachable" not in proc.stderr, proc.stderr
    took = await wait_status(http, b, key, 401, within=5)
    assert took < 1.0, took  # B's own check runs every 30 s
    # Through the admin API of A.
    status, created = await admin(http, a, "POST", "/keys", {"name": f"adm-{secrets.token_hex(3)}"})
    assert status == 201, created
    assert await status_on(http, b, created["key"]) == 200
    status, revoked = await admin(http, a, "DELETE", f"/keys/{created['id']}")
    assert status == 200 and revoked["revoked"] is True, revoked
    took = await wait_status(http, b, created["key"], 401, within=5)
    assert took < 1.0, took
    # A channel deleted on A is out of B's routing table at once too: B refuses a create.
    status, channels = await admin(http, a, "GET", "/channels")
    channel_id = channels["data"][0]["id"]
    live_key = a.make_key(credits=CREDITS)
    assert (await call(http, "POST", f"{b.url}/vidu/v1/tasks", live_key, t2v("routed"), scheme="Token")).status == 200
    status, _ = await admin(http, a, "DELETE", f"/channels/{channel_id}")
    assert status == 200
    started = time.monotonic()
    while True:
        answer = await call(http, "POST", f"{b.url}/vidu/v1/tasks", live_key, t2v("no channel"), scheme="Token")
        if answer.status != 200:
            assert 400 <= answer.status < 500, answer.text
            break
        assert time.monotonic() - started < 1.0, "B still routes to the deleted channel"
        await asyncio.sleep(0.02)


async def wait_status(http: aiohttp.ClientSession, server: GengateServer, key: str, expected: int,
                      within: float) -> float:
    started = time.monotonic()
    while (got := await status_on(http, server, key)) != expected:
        if time.monotonic() - started > within:
            raise AssertionError(f"{server.url} still answers {got} after {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.parametrize("redis", ["absent", "dead-port"])
async def test_without_redis_every_process_falls_back_to_the_database(pair_on, emulator, http, vidu,
                                                                      redis) -> None:
    extra = {} if redis == "absent" else {"GENGATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    a, b = pair_on(shared_env(**extra))
    name, key = a.make_named_key(credits=CREDITS)
    for server in (a, b, a, b):  # requests succeed, with no wait for Redis
        started = time.monotonic()
        assert await status_on(http, server, key) == 200
        assert time.monotonic() - started < 1.0
    # A stream on B sees a change made on A through the 1 s database check.
    emulator.hold(True)
    delay = await cancel_seen_on_b(http, vidu, a, b, key, within=5)
    assert delay < 5, delay
    emulator.hold(False)
    # Webhooks are delivered: a task created on B with a callback URL succeeds and is announced.
    with Receiver("127.0.0.1") as rx:
        created = await vidu(b, key).create_ok(t2v("a hooked boat", callback_url=rx.url("/hook")))

        def succeeded(hits: list[Hit]) -> bool:
            return any(h.json().get("id") == created["id"] and h.json().get("state") == "success" for h in hits)

        await rx.wait(succeeded, within=60, what="the success delivery")
    # The CLI still works, and B refuses the revoked key through its own config check.
    proc = a.cli_run("keys", "revoke", name)
    assert ("Redis unreachable" in proc.stderr) == (redis == "dead-port"), proc.stderr
    await wait_status(http, b, key, 401, within=5)
    # At most one warning per process about the bus, and no error at all.
    for server in (a, b):
        log = server.log_text()
        assert log.count("bus: Redis unreachable") == (1 if redis == "dead-port" else 0), log[-3000:]
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
