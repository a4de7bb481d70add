"""`/metrics`: `gengate_tasks{provider,state}` is read from the database at each scrape, in the unified
statuses, so a status with no task reads 0 (it used to keep its last value), and every family of
interface.md "Metrics" appears from the first scrape; `gengate_channel_secret_up` reads 0 for a secret
that is cooling down (a 429 with Retry-After from its upstream), not only for a disabled one.

client (aiohttp) → `gengate serve --sandbox` (subprocess) → its in-process Vidu emulator, held so that a
task can be seen running. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from gengate.core.crypto import fingerprint

pytestmark = pytest.mark.timeout(180)

BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat"}]},
        "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}
STATUSES = ("queued", "in_progress", "succeeded", "failed", "cancelled")
FAMILIES = ("gengate_http_requests_total", "gengate_http_request_duration_seconds",
            "gengate_upstream_requests_total", "gengate_upstream_request_duration_seconds", "gengate_tasks",
            "gengate_credits_total", "gengate_channel_secret_up", "gengate_webhook_deliveries_total")


@pytest.fixture(scope="module")
def server(backend, make_server):
    return make_server(database_url=backend.new_database())


async def scrape(http, server) -> tuple[str, dict[str, float]]:
    async with http.get(f"{server.url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    series = re.findall(r'^gengate_tasks\{provider="vidu",state="(\w+)"\} (\S+)$', text, re.M)
    gauge = {state: float(value) for state, value in series}
    return text, gauge


async def wait_gauge(http, server, state: str, value: float, limit: float = 30) -> dict[str, float]:
    end = time.monotonic() + limit
    gauge: dict[str, float] = {}
    while time.monotonic() < end:
        _, gauge = await scrape(http, server)
        if gauge.get(state) == value:
            return gauge
        await asyncio.sleep(0.2)
    raise AssertionError(f"gengate_tasks{{state={state!r}}} never {value}: {gauge}")


async def test_every_family_is_there_from_the_first_scrape(server, http) -> None:
    text, gauge = await scrape(http, server)
    for family in FAMILIES:
        assert re.search(rf"^# TYPE {family} (counter|gauge|histogram)$", text, re.M), family
    assert gauge == dict.fromkeys(STATUSES, 0.0)  # every status of every provider, before any task


async def test_the_task_gauge_follows_the_database_to_a_terminal_state(server, http, vidu) -> None:
    key = server.make_key()
    client = vidu(server, key)
    server.upstream.hold(True)
    try:
        done = await client.create_ok(BODY)
        running = await client.create_ok(BODY)
        await wait_gauge(http, server, "in_progress", 2)
        async with http.post(f"{server.url}/v1/tasks/{running['id']}/cancel",
                             headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 200, await r.text()
        await wait_gauge(http, server, "cancelled", 1)
    finally:
        server.upstream.hold(False)
    await client.wait(done["id"])
    gauge = await wait_gauge(http, server, "succeeded", 1)
    assert gauge == {"queued": 0, "in_progress": 0, "succeeded": 1, "failed": 0, "cancelled": 1}
    assert gauge == (await scrape(http, server))[1]  # and it stays so
    assert "running" not in (await scrape(http, server))[0]  # internal states never show


async def secret_up(http, server, channel: str, secret: str) -> float:
    text, _ = await scrape(http, server)
    found = re.findall(rf'^gengate_channel_secret_up\{{channel="{channel}",secret="{fingerprint(secret)}"\}} (\S+)$',
                       text, re.M)
    assert len(found) == 1, text
    return float(found[0])


async def test_a_secret_cooling_down_is_not_up(make_server, emulator, http, vidu) -> None:
    server = make_server(sandbox=False, emulator=emulator, env={"GENGATE_BACKOFF_MAX": "60"})
    key = server.make_key(credits=1_000_000)
    assert await secret_up(http, server, "emu-vidu", server.secret) == 1
    emulator.fault(kind="status", status=429, retry_after=30, op="create", secret=server.secret, count=1)
    reply = await vidu(server, key).create(BODY)
    assert reply.status == 200, reply.text  # queued: the upstream's 429 is the secret's, not the task's
    assert await secret_up(http, server, "emu-vidu", server.secret) == 0  # backing off for 30 s
    # Disabled (by the operator) reads 0 as well.
    server.cli("channels", "disable", "emu-vidu")
    await asyncio.sleep(1.5)  # the server's config check
    assert await secret_up(http, server, "emu-vidu", server.secret) == 0
