"""Kling's creates on existing media against a standalone emulator whose secrets are distinct `AK|SK`
pairs (SQLite): an extend or lip-sync of a video goes to the exact upstream account that made it, a
disabled or removed account is a clear error with nothing charged, an upstream failure is refunded."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from harness.kling import KlingClient, assert_kling_error, kling_jwt

from .test_flow import png_base64

pytestmark = pytest.mark.timeout(240)

START = 5_000_000
PRICES = {"extend": 100_000, "lip_sync": 50_000, "try_on": 100_000}  # lip-sync: 5 s at 10,000 a second
ROUTE_WAIT = 1.5  # seconds for a server to see a channel change made from the CLI


def speech(video: dict[str, Any]) -> dict[str, Any]:
    return {"input": {**video, "mode": "text2video", "text": "Good evening", "voice_id": "oversea_male1"}}


async def made_video(client: KlingClient, prompt: str) -> dict[str, Any]:
    task = await client.create_ok("text2video", {"model_name": "kling-v1", "prompt": prompt})
    done = await client.wait("text2video", task["task_id"])
    assert done["task_status"] == "succeed", done
    return done["task_result"]["videos"][0]


@pytest.fixture(scope="module")
def two_accounts(make_server, kling_emulator):
    """A server whose Kling channel `first` (priority 5) is at first its only one."""
    server = make_server(sandbox=False, start=False, env={"GENGATE_URL_ALLOW_PRIVATE": "1"})
    first = kling_emulator.new_secret()
    server.add_channel("kling", kling_emulator.provider_url("kling"), first, name="first",
                       extra=("--priority", "5"))
    server.first = first
    server.start()
    yield server
    kling_emulator.clear_faults()


async def test_extend_and_lip_sync_go_to_the_account_that_made_the_video(two_accounts, kling_emulator, kling):
    server, emu = two_accounts, kling_emulator
    first = server.first
    name, key = server.make_named_key(credits=START)
    client = kling(server, key)
    parent = await made_video(client, "made on the first account")
    assert emu.creates(first, "kling") == 1

    # A second account, preferred from now on: new work goes there...
    second = emu.new_secret()
    server.add_channel("kling", emu.provider_url("kling"), second, name="second", extra=("--priority", "0"))
    await asyncio.sleep(ROUTE_WAIT)
    other = await made_video(client, "made on the second account")
    assert (emu.creates(first, "kling"), emu.creates(second, "kling")) == (1, 1)

    # ...but every task on the first video goes to the first account, which alone holds it.
    children = [await client.create_ok("extend", {"video_id": parent["id"], "prompt": f"on and on {i}"})
                for i in range(2)]
    synced = await client.create_ok("lip_sync", speech({"video_id": parent["id"]}))
    on_second = await client.create_ok("extend", {"video_id": other["id"]})
    for kind, task in [("extend", c) for c in children] + [("lip_sync", synced), ("extend", on_second)]:
        done = await client.wait(kind, task["task_id"])
        assert done["task_status"] == "succeed", done
    assert (emu.creates(first, "kling"), emu.creates(second, "kling")) == (4, 2)

    # Upstream, the extend carried the first account's own video id, never gengate's.
    access, _, secret_key = first.partition("|")
    raw = KlingClient(client.http, emu.provider_url("kling"), kling_jwt(access, secret_key), prefix="")
    jobs = (await raw.list("extend")).body["data"]
    assert len(jobs) == 2 and all(j["task_info"]["parent_video"]["id"] != parent["id"] for j in jobs), jobs

    # The first account disabled by the operator: a task on its video cannot be made; nothing is charged.
    before = server.credits(name)
    server.cli("channels", "disable", "first")
    await asyncio.sleep(ROUTE_WAIT)
    for kind, body in (("extend", {"video_id": parent["id"]}), ("lip_sync", speech({"video_id": parent["id"]}))):
        reply = await client.create(kind, body)
        assert_kling_error(reply, 1201)
        assert "disabled or removed" in reply.body["message"], reply.body
    # Removed for good: the same.
    server.cli("channels", "delete", "first")
    await asyncio.sleep(ROUTE_WAIT)
    assert_kling_error(await client.create("extend", {"video_id": parent["id"]}), 1201)
    assert server.credits(name) == before
    assert (emu.creates(first, "kling"), emu.creates(second, "kling")) == (4, 2)
    # The second account's videos are not affected.
    done = await client.wait("extend", (await client.create_ok("extend", {"video_id": other["id"]}))["task_id"])
    assert done["task_status"] == "succeed", done


async def test_the_emulator_knows_a_video_only_on_its_own_account(http, kling_emulator):
    emu = kling_emulator
    owner_secret, stranger_secret = emu.new_secret(), emu.new_secret()

    def raw(secret: str) -> KlingClient:
        access, _, secret_key = secret.partition("|")
        return KlingClient(http, emu.provider_url("kling"), kling_jwt(access, secret_key), prefix="")

    owner = raw(owner_secret)
    task = (await owner.create("text2video", {"prompt": "upstream"})).body["data"]
    done = await owner.wait("text2video", task["task_id"])
    video_id = done["task_result"]["videos"][0]["id"]
    assert_kling_error(await raw(stranger_secret).create("extend", {"video_id": video_id}), 1203)
    assert emu.creates(stranger_secret, "kling") == 0
    assert (await owner.create("extend", {"video_id": video_id})).status == 200



@pytest.mark.parametrize("kind", ["extend", "lip_sync", "try_on"])
async def test_an_upstream_failure_is_refunded(gw, kling, kind):
    emu, secret = gw.upstream, gw.secret
    name, key = gw.make_named_key(credits=START)
    client = kling(gw, key)
    if kind == "try_on":
        body: dict[str, Any] = {"human_image": png_base64(), "cloth_image": "https://example.com/coat.png"}
        spent = 0
    else:
        video = await made_video(client, f"a parent for {kind}")
        body = {"video_id": video["id"]} if kind == "extend" else speech({"video_id": video["id"]})
        spent = 100_000
    emu.fault(provider="kling", op="create", secret=secret, kind="fail_task", count=1, err_msg="content risk detected")
    task = await client.create_ok(kind, body)
    done = await client.wait(kind, task["task_id"])
    assert done["task_status"] == "failed" and done["task_status_msg"] == "content risk detected", done
    assert "task_result" not in done
    for _ in range(20):
        if gw.credits(name) == START - spent:
            break
        await asyncio.sleep(0.25)
    assert gw.credits(name) == START - spent  # the reservation came back, once
    rows = gw.db_query(f"SELECT l.kind, l.amount FROM ledger_entries l JOIN tasks t ON t.id = l.task_id "
                       f"WHERE t.public_id = '{task['task_id']}'")
    assert sorted((r["kind"], abs(r["amount"])) for r in rows) == [("refund", PRICES[kind]),
                                                                   ("reserve", PRICES[kind])], rows


async def test_a_large_base64_audio_is_stashed_and_sent_whole(gw, kling):
    client = kling(gw, gw.make_key())
    audio = base64.b64encode(bytes(range(256)) * 1200).decode()  # ~400 KB of base64
    task = await client.create_ok("lip_sync", {"input": {
        "video_url": "https://example.com/talk.mp4", "mode": "audio2video", "audio_type": "file",
        "audio_file": audio}})
    row = gw.db_query(f"SELECT request, upstream_request FROM tasks WHERE public_id = '{task['task_id']}'")[0]
    assert len(row["request"]) < 4096 and len(row["upstream_request"]) < 4096, row
    done = await client.wait("lip_sync", task["task_id"])
    assert done["task_status"] == "succeed", done


async def test_an_extend_whose_create_reply_was_lost_is_found_by_the_marker(gw, kling):
    emu, secret = gw.upstream, gw.secret
    client = kling(gw, gw.make_key())
    video = await made_video(client, "a parent whose extend reply is lost")
    emu.fault(provider="kling", op="create", secret=secret, kind="drop_after_accept", count=1)
    before = emu.creates(secret, "kling")
    task = await client.create_ok("extend", {"video_id": video["id"]})
    done = await client.wait("extend", task["task_id"], timeout=60)
    assert done["task_status"] == "succeed", done
    assert emu.creates(secret, "kling") == before + 1  # one upstream job, found again through the extend list
    reasons = [r["reason"] for r in gw.db_query(
        "SELECT e.reason FROM task_events e JOIN tasks t ON t.id = e.task_id "
        f"WHERE t.public_id = '{task['task_id']}' ORDER BY e.id")]
    assert "reconciled: job found upstream" in reasons, reasons
