"""The key's task list (`GET /v1/tasks`, newest first, cursor `after`) and `DELETE /v1/tasks/{id}`:
a live task is cancelled upstream first and refunded once; afterwards it is 404 on every route."""

from __future__ import annotations

import pytest
from unified_client import assert_openai_error, call, t2v, wait_status

pytestmark = [pytest.mark.timeout(120), pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

ENV = {"GENGATE_POLL_INTERVAL": "0.2", "GENGATE_SANDBOX_TASK_SECONDS": "2"}
CREDITS = 10_000_000


@pytest.fixture(scope="module")
def server(backend, make_server):
    return make_server(database_url=backend.url, env=ENV)


async def test_list_pages_newest_first_and_only_this_keys(server, vidu, http):
    key = server.make_key(credits=CREDITS)
    other = server.make_key(credits=CREDITS)
    ids = [(await vidu(server, key).create_ok(t2v(f"list {i}")))["id"] for i in range(5)]
    await vidu(server, other).create_ok(t2v("not yours"))
    first = await call(http, "GET", f"{server.url}/v1/tasks?limit=2", key)
    assert first.status == 200, first.text
    assert first.body["object"] == "list" and first.body["has_more"] is True
    assert [t["id"] for t in first.body["data"]] == [ids[4], ids[3]]
    assert all(t["object"] == "task" and t["provider"] == "vidu" for t in first.body["data"])
    rest = await call(http, "GET", f"{server.url}/v1/tasks?limit=10&after={first.body['last_id']}", key)
    assert [t["id"] for t in rest.body["data"]] == [ids[2], ids[1], ids[0]] and rest.body["has_more"] is False
    for bad in ("limit=0", "limit=101", "limit=x"):
        assert_openai_error(await call(http, "GET", f"{server.url}/v1/tasks?{bad}", key), 400)
    assert_openai_error(await call(http, "GET", f"{server.url}/v1/tasks", None), 401)


async def test_delete_cancels_a_live_task_once_then_404_everywhere(server, vidu, http):
    name, key = server.make_named_key(credits=CREDITS)
    server.upstream.hold(True)
    try:
        live = (await vidu(server, key).create_ok(t2v("to delete")))["id"]
        cancels = server.upstream.stats()["vidu"]["cancels"]
        gone = await call(http, "DELETE", f"{server.url}/v1/tasks/{live}", key)
        assert gone.status == 200 and gone.body == {"id": live, "object": "task.deleted", "deleted": True}
        assert server.upstream.stats()["vidu"]["cancels"] == cancels + 1
    finally:
        server.upstream.hold(False)
    for method, path in (("GET", f"/v1/tasks/{live}"), ("GET", f"/v1/tasks/{live}/events"),
                         ("POST", f"/v1/tasks/{live}/cancel"), ("DELETE", f"/v1/tasks/{live}")):
        assert_openai_error(await call(http, method, server.url + path, key), 404)
    assert (await vidu(server, key).get(live)).status == 404
    assert server.credits(name) == CREDITS  # reserved, then refunded exactly once
    rows = server.db_query(f"SELECT kind, COUNT(*) AS n FROM ledger_entries l JOIN tasks t ON t.id = l.task_id "
                           f"WHERE t.public_id = '{live}' GROUP BY kind ORDER BY kind")
    assert rows == [{"kind": "refund", "n": 1}, {"kind": "reserve", "n": 1}], rows
    listed = await call(http, "GET", f"{server.url}/v1/tasks", key)
    assert live not in [t["id"] for t in listed.body["data"]]


async def test_delete_a_finished_task_keeps_its_charge(server, vidu, http):
    name, key = server.make_named_key(credits=CREDITS)
    done = (await vidu(server, key).create_ok(t2v("finished then deleted")))["id"]
    final, _ = await wait_status(http, server.url, key, done)
    assert final["status"] == "succeeded"
    assert (await call(http, "DELETE", f"{server.url}/v1/tasks/{done}", key)).status == 200
    assert server.credits(name) == CREDITS - final["cost"]["settled"]
    assert_openai_error(await call(http, "GET", f"{server.url}/v1/tasks/{done}", key), 404)
    other = server.make_key(credits=CREDITS)  # another key's delete is a 404, not a delete
    assert_openai_error(await call(http, "DELETE", f"{server.url}/v1/tasks/{done}", other), 404)


async def test_replaying_the_idempotency_key_of_a_deleted_task_is_404(server, vidu, http):
    """A retry with the Idempotency-Key of a deleted task neither shows it again nor makes a new one."""
    name, key = server.make_named_key(credits=CREDITS)
    headers = {"Idempotency-Key": "replay-after-delete"}
    first = await vidu(server, key).create(t2v("kept then deleted"), headers=headers)
    assert first.status == 200, first.text
    gone = await call(http, "DELETE", f"{server.url}/v1/tasks/{first.body['id']}", key)
    assert gone.status == 200, gone.text
    creates = server.upstream.creates(server.secret)
    again = await vidu(server, key).create(t2v("kept then deleted"), headers=headers)
    assert again.status == 404, again.text
    assert server.upstream.creates(server.secret) == creates
    assert server.db_query(f"SELECT count(*) AS n FROM tasks t JOIN keys k ON k.id = t.key_id "
                           f"WHERE k.name = '{name}'")[0]["n"] == 1
