"""gengate against a standalone Kling emulator whose secrets are distinct `AK|SK` pairs (SQLite): the
emulator checks every JWT (signature, exp, nbf), gengate signs with the channel's pair, an upstream
failure refunds, an ambiguous create is found again by gengate's marker, caps hold."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
from harness.kling import KlingClient, assert_kling_error, kling_jwt
from harness.webhooks import Receiver

pytestmark = pytest.mark.timeout(240)

START = 5_000_000
PRICE_5S_STD = 100_000


def t2v(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model_name": "kling-v1", "prompt": prompt, "duration": "5", **extra}



def upstream(http, emu, secret: str, token: str | None = None) -> KlingClient:
    """A raw client of the emulator itself, with a JWT of `secret`'s pair (or `token`)."""
    access, _, secret_key = secret.partition("|")
    return KlingClient(http, emu.provider_url("kling"), token or kling_jwt(access, secret_key), prefix="")


def task_rows(server: Any, public_id: str) -> list[dict[str, Any]]:
    return server.db_query(f"SELECT id, state FROM tasks WHERE public_id = '{public_id}'")


def events_of(server: Any, task_id: int) -> list[str]:
    return [r["reason"] for r in server.db_query(
        f"SELECT reason FROM task_events WHERE task_id = {task_id} ORDER BY id")]


async def test_the_emulator_checks_the_jwt(http, kling_emulator):
    emu = kling_emulator
    secret = emu.new_secret()
    access, _, secret_key = secret.partition("|")
    ok = await upstream(http, emu, secret).list("text2video")
    assert ok.status == 200 and ok.body["code"] == 0 and ok.body["data"] == [], ok.text
    now = time.time()
    cases = [
        (kling_jwt(access, "not-the-secret-key"), 1002),  # wrong signature
        (kling_jwt(access, secret_key, exp=now - 120), 1004),  # expired
        (kling_jwt(access, secret_key, nbf=now + 120), 1003),  # not yet valid
        (kling_jwt("unknown-access-key", secret_key), 1002),  # nobody's access key
        (secret_key, 1002),  # not a JWT at all
    ]
    for token, code in cases:
        assert_kling_error(await upstream(http, emu, secret, token).list("text2video"), code)
    bare = KlingClient(http, emu.provider_url("kling"), None, prefix="")
    assert_kling_error(await bare.list("text2video"), 1001)
    assert emu.counters(secret, "kling")["creates"] == 0


async def test_gengate_signs_with_the_channel_pair_and_sends_its_marker(gw, kling, http):
    emu, secret = gw.upstream, gw.secret
    client = kling(gw, gw.make_key())
    task = await client.create_ok("text2video", t2v("signed", external_task_id="client-order-1"))
    done = await client.wait("text2video", task["task_id"])
    assert done["task_status"] == "succeed", done
    assert done["task_info"] == {"external_task_id": "client-order-1"}
    # Upstream, the job carries gengate's own marker, never the client's id; ids are never shared.
    jobs = (await upstream(http, emu, secret).list("text2video", pageSize=500)).body["data"]
    markers = [j["task_info"].get("external_task_id") for j in jobs]
    assert "client-order-1" not in markers
    assert all(re.fullmatch(r"[0-9a-f]{16}", m or "") for m in markers), markers
    assert task["task_id"] not in [j["task_id"] for j in jobs]


async def test_a_wrong_secret_key_disables_the_secret(make_server, kling_emulator, kling):
    emu = kling_emulator
    access = emu.new_secret().partition("|")[0]
    server = make_server(sandbox=False, start=False)
    server.add_channel("kling", emu.provider_url("kling"), f"{access}|wrong-secret-key", name="bad-pair")
    server.start()
    client = kling(server, server.make_key())
    task = await client.create_ok("text2video", t2v("refused"))
    assert task["task_status"] == "submitted", task  # waits in gengate for a usable secret
    channels = json.loads(server.cli("channels", "list", "--json").strip().splitlines()[-1])
    [shown] = next(c for c in channels if c["name"] == "bad-pair")["secrets"]
    assert shown["enabled"] is False and "401" in (shown["status_reason"] or ""), shown
    assert "wrong-secret-key" not in server.log_text()


async def test_upstream_failure_refunds_in_klings_failure_shape(gw, kling):
    emu, secret = gw.upstream, gw.secret
    name, key = gw.make_named_key(credits=START)
    emu.fault(provider="kling", op="create", secret=secret, kind="fail_task", count=1,
              err_msg="content risk detected")
    client = kling(gw, key)
    task = await client.create_ok("text2video", t2v("risky"))
    done = await client.wait("text2video", task["task_id"])
    assert done["task_status"] == "failed", done
    assert done["task_status_msg"] == "content risk detected"
    assert "task_result" not in done
    await asyncio.sleep(0.5)
    assert gw.credits(name) == START  # refunded, once
    [row] = task_rows(gw, task["task_id"])
    kinds = [r["kind"] for r in gw.db_query(f"SELECT kind FROM ledger_entries WHERE task_id = {row['id']}")]
    assert sorted(kinds) == ["refund", "reserve"]


async def test_ambiguous_create_is_reconciled_by_the_marker(gw, kling):
    emu, secret = gw.upstream, gw.secret
    name, key = gw.make_named_key(credits=START)
    emu.fault(provider="kling", op="create", secret=secret, kind="drop_after_accept", count=1)
    before = emu.counters(secret, "kling")["creates"]
    client = kling(gw, key)
    task = await client.create_ok("text2video", t2v("lost reply"))
    assert task["task_status"] == "submitted", task
    done = await client.wait("text2video", task["task_id"], timeout=60)
    assert done["task_status"] == "succeed", done
    assert emu.counters(secret, "kling")["creates"] == before + 1  # exactly one upstream job
    [row] = task_rows(gw, task["task_id"])
    reasons = events_of(gw, row["id"])
    assert any(r.startswith("create outcome unknown") for r in reasons), reasons
    assert "reconciled: job found upstream" in reasons, reasons
    assert gw.credits(name) == START - PRICE_5S_STD


async def test_twenty_tasks_on_a_secret_capped_at_four(make_server, kling_emulator, kling):
    emu = kling_emulator
    secret = emu.new_secret()
    server = make_server(sandbox=False, start=False)
    server.add_channel("kling", emu.provider_url("kling"), secret, name="capped",
                       extra=("--max-concurrency", "4"))
    server.start()
    client = kling(server, server.make_key())
    tasks = await asyncio.gather(*(client.create_ok("text2video", t2v(f"capped {i}")) for i in range(20)))
    assert {t["task_status"] for t in tasks} <= {"submitted", "processing"}
    done = await asyncio.gather(*(client.wait("text2video", t["task_id"], timeout=150) for t in tasks))
    assert {d["task_status"] for d in done} == {"succeed"}
    counters = emu.counters(secret, "kling")
    assert counters["creates"] == 20 and counters["max_running"] <= 4, counters


async def test_unknown_upstream_state_keeps_polling(gw, kling):
    emu, secret = gw.upstream, gw.secret
    emu.fault(provider="kling", op="poll", secret=secret, kind="unknown_state", count=8)
    client = kling(gw, gw.make_key())
    task = await client.create_ok("text2video", t2v("mystery"))
    done = await client.wait("text2video", task["task_id"], timeout=60)
    assert done["task_status"] == "succeed", done
    assert "unknown upstream state" in gw.log_text()


async def test_callback_url_gets_the_task_object_on_each_change(gw, kling):
    client = kling(gw, gw.make_key())
    with Receiver() as rx:
        task = await client.create_ok("images", {"prompt": "hooked", "callback_url": rx.url("/kling-hook"),
                                                 "external_task_id": "hook-1"})
        done = await client.wait("images", task["task_id"])
        assert done["task_status"] == "succeed", done
        hits = await rx.wait(lambda hits: any(h.json().get("task_status") == "succeed" for h in hits))
    bodies = [h.json() for h in hits]
    assert all(b["task_id"] == task["task_id"] and b["task_info"] == {"external_task_id": "hook-1"}
               for b in bodies), bodies
    assert bodies[-1]["task_result"]["images"][0]["url"].startswith(gw.url + "/")
    assert all(h.headers.get("webhook-signature", "").startswith("v1,") for h in hits)


async def test_an_image_task_of_n_images_holds_n_units(make_server, kling_emulator, kling):
    emu = kling_emulator
    secret = emu.new_secret()
    emu.cap(secret, 4, provider="kling")  # Kling's own limit: a create past it is 1303
    server = make_server(sandbox=False, start=False)
    server.add_channel("kling", emu.provider_url("kling"), secret, name="units",
                       extra=("--max-concurrency", "4"))
    server.start()
    client = kling(server, server.make_key())
    tasks = await asyncio.gather(*(client.create_ok("images", {"prompt": f"units {i}", "n": 3})
                                   for i in range(4)))
    done = await asyncio.gather(*(client.wait("images", t["task_id"], timeout=120) for t in tasks))
    assert {d["task_status"] for d in done} == {"succeed"}, done
    assert all(len(d["task_result"]["images"]) == 3 for d in done)
    counters = emu.counters(secret, "kling")
    # Two tasks of 3 units never ran at once under a cap of 4; gengate queued them instead of a 1303.
    assert counters["creates"] == 4 and counters["max_running"] == 3, counters
    upstream_jobs = (await upstream(client.http, emu, secret).list("images", pageSize=50)).body["data"]
    assert len(upstream_jobs) == 4  # the units are not jobs of their own


async def test_the_emulator_refuses_units_past_the_cap_with_1303(http, kling_emulator):
    emu = kling_emulator
    secret = emu.new_secret()
    emu.cap(secret, 4, provider="kling")
    client = upstream(http, emu, secret)
    assert_kling_error(await client.create("images", {"prompt": "too many", "n": 5}), 1303)
    assert emu.counters(secret, "kling")["creates"] == 0
    assert (await client.create("images", {"prompt": "fits", "n": 4})).status == 200
    assert_kling_error(await client.create("text2video", {"prompt": "no room left"}), 1303)
    assert emu.counters(secret, "kling")["running"] == 4
