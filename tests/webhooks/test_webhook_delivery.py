"""Signed webhooks for Vidu tasks created with a top-level `callback_url` (gengate's extension).

client → `gengate serve` (subprocess, GENGATE_URL_ALLOW_PRIVATE=1) → HTTP → a recording proxy → the
standalone emulator; deliveries go to a real HTTP receiver on 127.0.0.1 in a thread. The proxy shows
the exact bytes the upstream received, so "the callback URL is never sent upstream" can fail.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
import urllib.request
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_receiver import Hit, Receiver, RecordingProxy, verify_signature

pytestmark = pytest.mark.timeout(150)

ENV = {"GENGATE_URL_ALLOW_PRIVATE": "1", "GENGATE_POLL_INTERVAL": "0.2", "GENGATE_WEBHOOK_BACKOFF_BASE": "0.2"}
CREDITS = 1_000_000
VIDU_ORDER = {s: i for i, s in enumerate(("created", "queueing", "preparation", "scheduling", "processing",
                                          "success"))}
TASK_KEYS = {"id", "input", "settings", "type", "state", "creations", "err_code", "created_at"}
URL_FIELDS = ("uri", "nomark_uri", "download_uri", "cover_uri")


def t2v(prompt: str, callback_url: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": prompt}]},
                            "settings": {"duration": 4, "model": "vidu-1"}}
    if callback_url is not None:
        body["callback_url"] = callback_url
    return body


@pytest.fixture(scope="module")
def proxy(emulator):
    p = RecordingProxy(emulator.base).start()
    yield p
    p.stop()


def start_server(make_server, backend, emulator, proxy):
    """A server (not started) whose Vidu channel goes through `proxy` to the standalone emulator."""
    server = make_server(database_url=backend.new_database(), sandbox=False, env=ENV, start=False)
    secret = emulator.new_secret()
    server.add_channel("vidu", proxy.url("/vidu"), secret, name="proxied-vidu")
    server.upstream, server.secret = emulator, secret
    return server.start()


@pytest.fixture(scope="module")
def server(backend, make_server, emulator, proxy):
    return start_server(make_server, backend, emulator, proxy)


def new_key(server) -> tuple[str, str, str]:
    """(name, key, whsec): `keys create` prints the secret on stderr, `keys webhook-secret` on stdout."""
    name = f"wh-{secrets.token_hex(4)}"
    proc = server.cli_run("keys", "create", "--name", name, "--credits", str(CREDITS))
    key = proc.stdout.strip().splitlines()[-1]
    printed = re.search(r"webhook secret: (whsec_\S+)", proc.stderr)
    whsec = server.cli("keys", "webhook-secret", name).strip().splitlines()[-1]
    assert printed and printed.group(1) == whsec, (proc.stderr, whsec)
    return name, key, whsec


def delivered(server, task_id: str) -> list[dict[str, Any]]:
    return server.db_query(
        "SELECT d.webhook_id, d.state, d.attempts, d.delivered_at, d.dead FROM webhook_deliveries d "
        f"JOIN tasks t ON t.id = d.task_id WHERE t.public_id = '{task_id}' ORDER BY d.id")


def hits_for(hits: list[Hit], task_id: str) -> list[Hit]:
    return [h for h in hits if h.body and json.loads(h.body).get("id") == task_id]


def reached(task_id: str, state: str = "success"):
    def check(hits: list[Hit]) -> bool:
        return any(h.status == 200 and h.json()["state"] == state for h in hits_for(hits, task_id))
    return check


def check_deliveries(hits: list[Hit], whsec: str, task_id: str, path: str) -> list[Hit]:
    """Every request is a signed POST of the Vidu task object; returns the 2xx ones in arrival order,
    after checking: one per webhook-id, one per state, in state order, ending with success."""
    ok: list[Hit] = []
    for h in hits:
        assert h.method == "POST" and h.path == path, (h.method, h.path)
        assert h.headers.get("content-type", "").startswith("application/json"), h.headers
        assert Webhook(whsec).verify(h.body, h.headers) == json.loads(h.body)  # the library
        verify_signature(whsec, h.headers, h.body)  # and the HMAC written out
        payload = h.json()
        assert TASK_KEYS <= set(payload) and payload["id"] == task_id, payload
        if 200 <= h.status < 300:
            ok.append(h)
    ids = [h.webhook_id for h in ok]
    assert len(set(ids)) == len(ids), f"a webhook-id delivered twice: {ids}"
    states = [h.json()["state"] for h in ok]
    assert len(set(states)) == len(states), states
    assert [VIDU_ORDER[s] for s in states] == sorted(VIDU_ORDER[s] for s in states), states
    assert states[-1] == "success" and len(states) >= 2, states
    # A retry is the same message: same webhook-id, same body.
    by_id: dict[str, bytes] = {}
    for h in hits:
        assert by_id.setdefault(h.webhook_id, h.body) == h.body, h.webhook_id
    return ok


def upstream_history(server) -> bytes:
    """The emulator's own `tasks/history/me` for the server's upstream secret, raw."""
    req = urllib.request.Request(f"{server.upstream.base}/vidu/vidu/v1/tasks/history/me?page_size=100",
                                 headers={"Authorization": f"Token {server.secret}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


def without_urls(task: dict[str, Any]) -> dict[str, Any]:
    task = json.loads(json.dumps(task))
    for c in task["creations"]:
        for f in URL_FIELDS:
            c[f] = bool(c.get(f))
    return task


async def wait_success(client, task_id: str) -> dict[str, Any]:
    task = await client.wait(task_id)
    assert task["state"] == "success", task
    return task


async def test_deliveries_signed_in_state_order(server, proxy, vidu):
    _, key, whsec = new_key(server)
    with Receiver("127.0.0.1") as rx:
        callback = rx.url("/hooks/vidu?tenant=7")
        client = vidu(server, key)
        created = await client.create_ok(t2v("webhook order", callback))
        task_id = created["id"]
        final = await wait_success(client, task_id)
        hits = await rx.wait(reached(task_id), what="the success delivery")
        await asyncio.sleep(0.5)  # nothing more may come
        hits = rx.snapshot()

    ok = check_deliveries(hits, whsec, task_id, "/hooks/vidu?tenant=7")
    assert len(ok) == len(hits), [h.status for h in hits]  # the receiver never failed: no retries
    first = ok[0].json()["state"]  # queued in the create itself (a poll may have moved the reply on)
    assert VIDU_ORDER[first] <= VIDU_ORDER[created["state"]], (created["state"], [h.json()["state"] for h in ok])
    # The last payload is the task object as GET shows it (media URLs are signed per render).
    assert without_urls(ok[-1].json()) == without_urls(final)
    assert ok[-1].json()["creations"] and all(c["uri"] for c in ok[-1].json()["creations"])
    # Another key's secret does not verify them.
    _, _, other = new_key(server)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(ok[0].body, ok[0].headers)
    # Each delivery is a row, delivered once.
    rows = delivered(server, task_id)
    assert [r["webhook_id"] for r in rows] == [h.webhook_id for h in ok], rows
    assert all(r["delivered_at"] is not None and r["attempts"] == 1 for r in rows), rows

    # The upstream never saw the callback URL: not in any request it received, not in its history.
    upstream_bodies = b"".join(h.body + h.path.encode() for h in proxy.snapshot())
    assert b"/v1/tasks" in b"".join(h.path.encode() for h in proxy.snapshot())  # it did carry the job
    assert b"callback" not in upstream_bodies and rx.url("").encode() not in upstream_bodies
    assert str(rx.port).encode() not in b"".join(h.body for h in proxy.snapshot() if h.method == "POST")
    history = upstream_history(server)
    assert b"webhook order" in history  # our job is there
    assert b"callback" not in history and rx.url("").encode() not in history


async def test_failing_receiver_gets_retries_with_the_same_id(server, vidu):
    _, key, whsec = new_key(server)
    with Receiver("127.0.0.1") as rx:
        rx.fail_next(3, status=500)
        client = vidu(server, key)
        task_id = (await client.create_ok(t2v("webhook retries", rx.url("/h")), ))["id"]
        await wait_success(client, task_id)
        hits = await rx.wait(reached(task_id), within=30, what="the success delivery")
        await asyncio.sleep(0.5)
        hits = rx.snapshot()

    ok = check_deliveries(hits, whsec, task_id, "/h")
    # The first message failed 3 times, then got through; every retry carried its webhook-id.
    assert [h.status for h in hits[:4]] == [500, 500, 500, 200], [h.status for h in hits]
    assert len({h.webhook_id for h in hits[:4]}) == 1
    assert all(h.status == 200 for h in hits[4:]), [h.status for h in hits]
    assert len(hits) == len(ok) + 3
    # Backoff: the gaps between attempts grow (0.2 s, 0.4 s, 0.8 s, plus the sender's tick).
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits[:4])]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.35 and gaps[2] >= 0.75 and gaps[2] > gaps[0] and gaps[0] < 5, gaps
    # Later messages waited for the earlier one: nothing of another webhook-id before its success.
    first_ok = hits[3].at
    assert all(h.at >= first_ok for h in hits[4:])
    # The task moved on meanwhile, so later messages were waiting, not missing.
    assert len(ok) >= 3, [h.json()["state"] for h in ok]
    rows = delivered(server, task_id)
    assert [r["attempts"] for r in rows] == [4] + [1] * (len(rows) - 1), rows


# Rows survive a restart the same way on both backends; SQLite keeps the folder quick.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_pending_delivery_survives_a_restart(backend, make_server, emulator, proxy, vidu):
    server = start_server(make_server, backend, emulator, proxy)
    _, key, whsec = new_key(server)
    rx = Receiver("127.0.0.1").start()
    rx.stop()  # the port is known, nothing listens: every delivery attempt is refused
    try:
        client = vidu(server, key)
        task_id = (await client.create_ok(t2v("webhook restart", rx.url("/after-restart"))))["id"]
        await wait_success(client, task_id)
        deadline = time.monotonic() + 10
        while True:  # every state change is queued, none delivered, the first one tried
            rows = delivered(server, task_id)
            if rows and rows[-1]["state"] == "success" and rows[0]["attempts"] >= 1:
                break
            assert time.monotonic() < deadline, rows
            await asyncio.sleep(0.2)
        assert all(r["delivered_at"] is None for r in rows), rows
        server.stop()  # SIGTERM
        rx.start()
        server.start()
        hits = await rx.wait(lambda hs: len(hs) >= len(rows), within=30, what="the deliveries after the restart")
        await asyncio.sleep(0.5)
        hits = rx.snapshot()
    finally:
        rx.stop()

    ok = check_deliveries(hits, whsec, task_id, "/after-restart")
    assert [h.webhook_id for h in ok] == [r["webhook_id"] for r in rows]
    assert len(hits) == len(ok)  # the receiver never failed once it was up: one request per message
    assert all(r["delivered_at"] is not None for r in delivered(server, task_id))
