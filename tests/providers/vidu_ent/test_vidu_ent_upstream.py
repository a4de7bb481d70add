"""The Vidu platform format against a standalone `gengate emulate` (never killed), whose counters and
faults are scoped by the channel's own upstream secret: concurrency caps, an ambiguous create
reconciled to exactly one job, unknown states, and the emulator itself (raw HTTP, spec behaviour).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.request

import pytest
from harness.vidu import Reply, assert_vidu_error
from harness.vidu_ent import ViduEntClient
from harness.webhooks import Receiver, verify_signature

pytestmark = pytest.mark.timeout(240)

ENV = {"GENGATE_POLL_INTERVAL": "0.2", "GENGATE_AMBIGUITY_GRACE": "3", "GENGATE_URL_ALLOW_PRIVATE": "1",
       "GENGATE_WEBHOOK_BACKOFF_BASE": "0.2"}
ORDER = {"created": 0, "queueing": 1, "processing": 2, "success": 3}


@pytest.fixture(scope="module")
def server(make_server, emulator):
    server = make_server(sandbox=False, env=ENV, start=False)
    secret = emulator.new_secret()
    server.add_channel("vidu-ent", emulator.provider_url("vidu-ent"), secret, name="emu-vidu-ent",
                       extra=("--max-concurrency", "4"))
    server.upstream, server.secret = emulator, secret
    yield server.start()
    emulator.clear_faults()


@pytest.fixture
def client(server, http):
    return ViduEntClient(http, server.url, server.make_key())


def counters(server) -> dict[str, int]:
    return server.upstream.counters(server.secret, "vidu-ent")


async def test_twenty_tasks_never_more_than_four_upstream(server, client):
    before = counters(server)["creates"]
    created = await asyncio.gather(*(client.create_ok("text2video", {"model": "viduq1", "prompt": f"clip {i}"})
                                     for i in range(20)))
    # Excess tasks wait in gengate, shown in the platform's queued state.
    assert {t["state"] for t in created} <= {"created", "queueing", "processing"}
    assert any(t["state"] == "queueing" for t in created), [t["state"] for t in created]
    done = await asyncio.gather(*(client.wait(t["task_id"], timeout=120) for t in created))
    assert [d["state"] for d in done] == ["success"] * 20
    after = counters(server)
    assert after["creates"] - before == 20
    assert after["max_running"] <= 4, after


async def test_ambiguous_create_is_reconciled_to_one_job(server, client):
    before = counters(server)["creates"]
    server.upstream.fault(provider="vidu-ent", op="create", kind="drop_after_accept", count=1, secret=server.secret)
    task = await client.create_ok("text2video", {"model": "viduq1", "prompt": "the reply is lost"})
    assert task["state"] in ("created", "queueing"), task
    done = await client.wait(task["task_id"], timeout=60)
    assert done["state"] == "success", done
    assert counters(server)["creates"] - before == 1  # found through the list, never sent twice


@pytest.mark.parametrize("rule", [
    {"kind": "malformed"},  # a 200 that is not JSON: no job; reconciled as "none", then sent again
    {"kind": "status", "status": 500, "count": 2},  # proved not accepted: retried after backoff
    {"kind": "status", "status": 429, "retry_after": 1},
], ids=["malformed", "500", "429"])
async def test_refused_or_garbled_creates_end_in_exactly_one_job(server, client, rule):
    before = counters(server)["creates"]
    server.upstream.fault(**{"count": 1, **rule, "provider": "vidu-ent", "op": "create", "secret": server.secret})
    task = await client.create_ok("text2video", {"model": "viduq1", "prompt": f"after a {rule['kind']} fault"})
    done = await client.wait(task["task_id"], timeout=60)
    assert done["state"] == "success", done
    assert counters(server)["creates"] - before == 1


async def test_unknown_upstream_states_keep_polling(server, client):
    server.upstream.fault(provider="vidu-ent", op="poll", kind="unknown_state", count=3, secret=server.secret)
    task = await client.create_ok("text2video", {"model": "viduq1", "prompt": "odd states"})
    assert (await client.wait(task["task_id"]))["state"] == "success"


async def test_upstream_refusal_is_the_platform_error_and_free(server, client):
    server.upstream.fault(provider="vidu-ent", op="create", kind="status", status=400, count=1,
                          secret=server.secret, message="prompt blocked")
    reply = await client.create("text2video", {"model": "viduq1", "prompt": "refused upstream"})
    assert_vidu_error(reply, 400)
    assert "prompt blocked" in reply.body["message"]


async def test_callbacks_are_gengates_own_in_the_creations_shape(server, http):
    name = f"wh-{secrets.token_hex(4)}"
    key = server.make_named_key(name)[1]
    whsec = server.cli("keys", "webhook-secret", name).strip().splitlines()[-1]
    client = ViduEntClient(http, server.url, key)
    with Receiver("127.0.0.1") as rx:
        task = await client.create_ok("text2video", {"model": "viduq1", "prompt": "call me", "payload": "p1",
                                                     "callback_url": rx.url()})
        assert "callback_url" not in task
        hits = await rx.wait(lambda hits: any(h.json()["state"] == "success" for h in hits), within=40)
    for hit in hits:
        verify_signature(whsec, hit.headers, hit.body)
    bodies = [h.json() for h in hits]
    assert all(b["id"] == task["task_id"] and b["payload"] == "p1" for b in bodies), bodies
    states = [b["state"] for b in bodies]
    assert states == sorted(states, key=ORDER.__getitem__) and len(set(states)) == len(states), states
    assert bodies[-1]["creations"][0]["url"].startswith(server.url + "/")
    # The client's callback URL never went upstream: the emulator echoes every field it received.
    listed = call(server, "GET", "/ent/v2/tasks?pager.pagesz=100")
    [upstream] = [t for t in listed.body["tasks"] if t["prompt"] == "call me"]
    assert "callback_url" not in upstream and upstream["payload"] == "p1"


async def test_idempotency_key_replays_the_same_task(server, client):
    body = {"model": "viduq1", "prompt": "once only"}
    before = counters(server)["creates"]
    first = await client.create_ok("text2video", body, headers={"Idempotency-Key": "k-1"})
    again = await client.create_ok("text2video", body, headers={"Idempotency-Key": "k-1"})
    assert again["task_id"] == first["task_id"]
    other = await client.create("text2video", {**body, "prompt": "changed"}, headers={"Idempotency-Key": "k-1"})
    assert_vidu_error(other, 422)
    assert counters(server)["creates"] - before == 1


# ------------------------------------------------------------------ the emulator on its own
def call(server, method: str, path: str, body: object = None, token: str | None = None) -> Reply:
    url = server.upstream.provider_url("vidu-ent") + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Token {token or server.secret}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            return Reply(resp.status, json.loads(text), text, resp.headers)
    except urllib.error.HTTPError as err:
        text = err.read().decode()
        return Reply(err.code, json.loads(text), text, err.headers)


async def test_emulator_speaks_the_platform_format(server):
    assert_vidu_error(call(server, "POST", "/ent/v2/text2video", {"model": "viduq1", "prompt": "p"},
                           token="wrong"), 401, "Unauthorized")
    assert_vidu_error(call(server, "POST", "/ent/v2/text2video", {"model": "viduq1"}), 400, "FieldLacking")
    assert_vidu_error(call(server, "POST", "/ent/v2/img2video", {"model": "viduq1", "images": []}), 400,
                      "FieldItemCountOutOfRange")
    assert_vidu_error(call(server, "GET", "/ent/v2/tasks/1/creations"), 404, "TaskNotFound")
    assert_vidu_error(call(server, "POST", "/ent/v2/upscale", {"model": "vidu1.0", "creation_id": "1"}), 404,
                      "CreationNotFound")
    created = call(server, "POST", "/ent/v2/text2video", {"model": "viduq1", "prompt": "direct", "x": 1})
    assert created.status == 200 and len(created.body["task_id"]) == 18 and created.body["x"] == 1, created.text
    assert created.body["state"] == "created" and created.body["created_at"].endswith("Z")
    got = call(server, "GET", f"/ent/v2/tasks/{created.body['task_id']}/creations")
    assert got.body["state"] in ("created", "queueing", "processing") and got.body["creations"] == []
    cancelled = call(server, "POST", f"/ent/v2/tasks/{created.body['task_id']}/cancel",
                     {"id": created.body["task_id"]})
    assert cancelled.status == 200 and cancelled.body == {}
    got = call(server, "GET", f"/ent/v2/tasks/{created.body['task_id']}/creations")
    assert got.body["state"] == "failed" and got.body["err_code"] == "UserCancelled"
    assert_vidu_error(call(server, "POST", f"/ent/v2/tasks/{created.body['task_id']}/cancel", {}), 400,
                      "BadRequest")
    listed = call(server, "GET", "/ent/v2/tasks?pager.pagesz=1")
    assert listed.status == 200 and len(listed.body["tasks"]) == 1
