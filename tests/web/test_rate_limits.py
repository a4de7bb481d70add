"""Per-key rate limits (`keys create --rpm N`, the admin API's `rpm`): at most N requests per minute,
one limit across every process sharing Redis, per process without it; over it, the family's own 429
with `Retry-After`.

client (aiohttp) → `gengate serve` subprocesses (one PostgreSQL database, one Redis with a random key
prefix) — nothing is mocked.
"""

from __future__ import annotations

import secrets

import pytest
from harness.processes import free_port
from harness.services import fresh_pg_database, redis_prefix_on

pytestmark = pytest.mark.timeout(240)


def rpm_key(server, rpm: int | None) -> str:
    args = ["keys", "create", "--name", f"rl-{secrets.token_hex(4)}"]
    if rpm is not None:
        args += ["--rpm", str(rpm)]
    out = server.cli(*args).strip().splitlines()
    assert out[-1].startswith("sk-"), out
    return out[-1]


async def get(http, url: str, key: str) -> tuple[int, dict, dict]:
    async with http.get(url, headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, dict(r.headers), await r.json(content_type=None)


async def test_two_processes_sharing_redis_enforce_one_limit(make_server, http, redis_url) -> None:
    with fresh_pg_database() as pg, redis_prefix_on(redis_url) as prefix:
        env = {"GENGATE_SECRET_KEY": secrets.token_urlsafe(24), "GENGATE_REDIS_URL": redis_url,
               "GENGATE_REDIS_PREFIX": prefix, "GENGATE_ADMIN_TOKEN": "adm-" + secrets.token_hex(8)}
        a = make_server(database_url=pg, sandbox=False, env=env)
        b = make_server(database_url=pg, sandbox=False, env=env)
        key = rpm_key(a, 5)
        statuses = []
        for i in range(8):  # alternately through each process: 5 pass in all, not 5 per process
            status, headers, body = await get(http, f"{(a, b)[i % 2].url}/v1/models", key)
            statuses.append(status)
            if status == 429:
                assert 1 <= int(headers["Retry-After"]) <= 60, headers
                assert body["error"]["code"] == "rate_limit_exceeded", body
                assert body["error"]["type"] == "requests", body
        assert statuses == [200] * 5 + [429] * 3, statuses
        # Every family answers the same limit in its own envelope.
        status, headers, body = await get(http, f"{b.url}/vidu/v1/tasks/123", key)
        assert status == 429 and headers["Retry-After"], (status, body)
        assert body["code"] == 429 and body["reason"] == "TooManyRequests", body
        status, headers, body = await get(http, f"{a.url}/kling/v1/videos/text2video/x", key)
        assert status == 429 and body["code"] == 1302 and "Retry-After" in headers, body
        # Another key, and one without a limit, are not affected.
        for k in (rpm_key(a, 6), rpm_key(b, None)):
            for server in (a, b, a, b, a, b):
                assert (await get(http, f"{server.url}/v1/models", k))[0] == 200
        # The admin API's rpm is the same limit.
        async with http.post(f"{a.url}/admin/api/keys", json={"name": f"adm-{secrets.token_hex(3)}", "rpm": 2},
                             headers={"Authorization": f"Bearer {env['GENGATE_ADMIN_TOKEN']}"}) as r:
            assert r.status == 201, await r.text()
            admin_key = (await r.json())["key"]
        got = [(await get(http, f"{s.url}/v1/models", admin_key))[0] for s in (a, b, a)]
        assert got == [200, 200, 429], got


@pytest.mark.parametrize("redis", ["absent", "unreachable"])
async def test_without_redis_each_process_still_limits(make_server, http, redis) -> None:
    env = {} if redis == "absent" else {"GENGATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    server = make_server(sandbox=True, env=env)
    key = rpm_key(server, 3)
    got = [(await get(http, f"{server.url}/v1/models", key))[0] for _ in range(5)]
    assert got == [200, 200, 200, 429, 429], got
    status, headers, body = await get(http, f"{server.url}/runway/v1/tasks/abc", key)
    assert status == 429 and int(headers["Retry-After"]) >= 1, body
    # Everything else works: an unlimited key creates a task that completes.
    free = rpm_key(server, None)
    async with http.post(f"{server.url}/vidu/v1/tasks", headers={"Authorization": f"Bearer {free}"},
                         json={"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a boat"}]},
                               "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}) as r:
        assert r.status == 200, await r.text()
