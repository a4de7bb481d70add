"""PostgreSQL without pool pre-ping: when the server drops every connection of a running gateway
(`pg_terminate_backend`, what a restart does), the next requests are answered and every background
loop lives on. A real `gengate serve --sandbox` on PostgreSQL; nothing mocked."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.parametrize("backend", ["pg"], indirect=True)]

BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat"}]},
        "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}


async def test_requests_and_loops_survive_dropped_connections(backend, make_server, vidu, http) -> None:
    url = backend.new_database()
    server = make_server(database_url=url)
    db_name = url.rsplit("/", 1)[1]
    key = server.make_key()
    created = await vidu(server, key).create_ok(BODY)
    auth = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        killed = backend.fetch(url.rsplit("/", 1)[0] + "/postgres",
                               f"SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                               f"WHERE datname = '{db_name}' AND pid <> pg_backend_pid()")
        assert killed and all(r["ok"] for r in killed)
        await asyncio.sleep(0.3)  # the gateway's loops go on meanwhile (poller tick 0.1 s)
        for path in (f"/v1/tasks/{created['id']}", "/metrics"):
            async with http.get(server.url + path, headers=auth) as r:
                assert r.status == 200, (path, r.status, await r.text())
        fresh = server.make_key()  # a key not cached yet: read from the database
        async with http.get(f"{server.url}/v1/tasks/{created['id']}",
                            headers={"Authorization": f"Bearer {fresh}"}) as r:
            assert r.status == 404
    await vidu(server, key).wait(created["id"])  # the poller carried the task to its end
    async with http.get(server.url + "/healthz") as r:
        assert r.status == 200, await r.text()
    assert server.running()
