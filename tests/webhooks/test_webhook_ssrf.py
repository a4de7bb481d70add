"""The SSRF rule on webhook `callback_url`s (url-analysis.md §3): refused at create in Vidu's envelope,
with nothing created upstream and nothing charged; an operator allow-list (GENGATE_URL_ALLOW_CIDRS) lets
127.0.0.2 play a public host, whose redirect to 127.0.0.1 never leads a delivery there.

client → `gengate serve` (subprocess, without GENGATE_URL_ALLOW_PRIVATE) → HTTP → the standalone
emulator (its `creates` counter per secret proves "nothing created upstream"); receivers are real
HTTP servers on 127.0.0.1 / 127.0.0.2 in threads.
"""

from __future__ import annotations

import asyncio

import pytest
from harness.vidu import assert_vidu_error
from webhook_receiver import Receiver

# The address rules do not touch the database: SQLite is enough.
pytestmark = [pytest.mark.timeout(120), pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

CREDITS = 1_000_000
BASE_ENV = {"GENGATE_POLL_INTERVAL": "0.2", "GENGATE_WEBHOOK_BACKOFF_BASE": "0.2"}

REFUSED = [
    "http://127.0.0.1:8000/hook",  # loopback
    "http://127.1/hook",  # loopback, short form
    "http://2130706433/hook",  # loopback, as one decimal number
    "http://10.0.0.1/hook",  # private
    "http://192.168.1.10/hook",  # private
    "http://169.254.169.254/latest/meta-data/",  # link-local, cloud metadata
    "http://[::1]:8000/hook",  # IPv6 loopback
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://100.64.0.1/hook",  # shared / CGNAT
    "http://localhost:8000/hook",  # a refused name
    "http://hooks.localhost/hook",  # *.localhost
    "http://metadata.google.internal/computeMetadata/v1/",  # a refused name
    "http://0.0.0.0:8000/hook",  # "this network"
    "file:///etc/passwd",  # not http(s)
    "ftp://example.com/hook",  # not http(s)
]


def t2v(callback_url: str | None) -> dict:
    body = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "ssrf"}]},
            "settings": {"duration": 4, "model": "vidu-1"}}
    if callback_url is not None:
        body["callback_url"] = callback_url
    return body


@pytest.fixture(scope="module")
def strict_server(backend, make_server, emulator):
    """No GENGATE_URL_ALLOW_* at all: the default rules."""
    return make_server(database_url=backend.new_database(), sandbox=False, emulator=emulator, env=BASE_ENV)


@pytest.fixture(scope="module")
def cidr_server(backend, make_server, emulator):
    """127.0.0.2/32 allow-listed, nothing else."""
    return make_server(database_url=backend.new_database(), sandbox=False, emulator=emulator,
                       env={**BASE_ENV, "GENGATE_URL_ALLOW_CIDRS": "127.0.0.2/32"})


def task_count(server, key_name: str) -> int:
    rows = server.db_query("SELECT count(*) AS n FROM tasks t JOIN keys k ON k.id = t.key_id "
                           f"WHERE k.name = '{key_name}'")
    return int(rows[0]["n"])


async def test_refused_callbacks_are_4xx_at_create(strict_server, emulator, vidu):
    server = strict_server
    name, key = server.make_named_key(credits=CREDITS)
    creates = emulator.creates(server.secret)
    client = vidu(server, key)
    wrong = []
    for callback_url in REFUSED:
        reply = await client.create(t2v(callback_url))
        try:
            assert_vidu_error(reply, 400)
            assert callback_url not in reply.text  # the URL may hold credentials: never echoed whole
        except AssertionError as exc:
            wrong.append((callback_url, reply.status, reply.text[:300], str(exc)[:200]))
    assert not wrong, "callback URLs not refused as they should be:\n" + "\n".join(map(repr, wrong))
    assert emulator.creates(server.secret) == creates  # nothing created upstream
    assert server.credits(name) == CREDITS  # nothing charged
    assert task_count(server, name) == 0  # nothing created here either


async def test_same_request_without_a_callback_is_accepted(strict_server, emulator, vidu):
    """The control for the test above: the 400 came from the callback URL alone."""
    server = strict_server
    name, key = server.make_named_key(credits=CREDITS)
    creates = emulator.creates(server.secret)
    created = await vidu(server, key).create_ok(t2v(None))
    assert created["state"] in ("created", "queueing", "processing"), created
    assert emulator.creates(server.secret) == creates + 1
    assert task_count(server, name) == 1


async def test_allow_listed_host_redirecting_to_loopback(cidr_server, emulator, vidu):
    server = cidr_server
    name, key = server.make_named_key(credits=CREDITS)
    with Receiver("127.0.0.1") as private:
        # 127.0.0.1 itself stays refused: the allow-list names 127.0.0.2 only.
        refused = await vidu(server, key).create(t2v(private.url("/hook")))
        assert_vidu_error(refused, 400)
        assert task_count(server, name) == 0 and server.credits(name) == CREDITS

        with Receiver("127.0.0.2", redirect_to=private.url("/stolen")) as public:
            client = vidu(server, key)
            task_id = (await client.create_ok(t2v(public.url("/hook"))))["id"]
            assert (await client.wait(task_id))["state"] == "success"
            # The allow-listed receiver got the deliveries (answered 307, so they are retried) ...
            hits = await public.wait(lambda hs: len({h.webhook_id for h in hs}) >= 1 and len(hs) >= 3,
                                   what="deliveries (and retries) to 127.0.0.2")
            assert all(h.status == 307 and h.headers.get("webhook-id") for h in hits), hits
            await asyncio.sleep(1.0)  # time for anything that would follow the redirect
        # ... and nothing ever reached 127.0.0.1.
        assert private.snapshot() == []
    rows = server.db_query("SELECT d.delivered_at, d.last_status FROM webhook_deliveries d JOIN tasks t "
                           f"ON t.id = d.task_id WHERE t.public_id = '{task_id}'")
    assert rows and all(r["delivered_at"] is None for r in rows), rows
    assert {r["last_status"] for r in rows} <= {307, None}, rows
