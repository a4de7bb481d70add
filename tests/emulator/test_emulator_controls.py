"""The emulator framework over real HTTP: stats, faults, caps, holds, media, shared SQLite state.

The Vidu emulator is the provider under test here; what is checked is the shared machinery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from gengate.emulator import MediaSpec, build_emulator_app
from gengate.emulator.testing import RunningEmulator, bound_socket, running_emulator, serving

SECRET = "sandbox-secret"
OTHER = "other-secret"
AUTH = {"Authorization": f"Token {SECRET}"}
TASKS = "/vidu/vidu/v1/tasks"
BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a boat"}]}}


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(secret=f"{SECRET},{OTHER}", task_seconds=(0, 0), poll_latency=0.05) as running:
        yield running


@pytest.fixture
async def http(emu: RunningEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.url("/_emulator/reset")) as reply:
            assert reply.status == 200
        yield session


async def create(
    http: aiohttp.ClientSession, emu: RunningEmulator, secret: str = SECRET
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.post(emu.url(TASKS), json=BODY, headers={"Authorization": f"Token {secret}"}) as reply:
        return reply.status, await reply.json(content_type=None), reply


async def poll(http: aiohttp.ClientSession, emu: RunningEmulator, task_id: str) -> dict[str, Any]:
    async with http.get(emu.url(f"{TASKS}/{task_id}"), headers=AUTH) as reply:
        assert reply.status == 200
        return await reply.json()


async def stats(http: aiohttp.ClientSession, emu: RunningEmulator) -> dict[str, Any]:
    async with http.get(emu.url("/_emulator/stats")) as reply:
        return (await reply.json())["vidu"]


async def fault(http: aiohttp.ClientSession, emu: RunningEmulator, **rule: Any) -> str:
    async with http.post(emu.url("/_emulator/faults"), json=rule) as reply:
        assert reply.status == 200, await reply.text()
        return (await reply.json())["id"]


async def control(http: aiohttp.ClientSession, emu: RunningEmulator, path: str, body: dict[str, Any]) -> Any:
    async with http.post(emu.url(path), json=body) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def test_stats_shape_and_reset(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    status, task, _ = await create(http, emu)
    assert status == 200
    await poll(http, emu, task["id"])
    counters = {"creates": 1, "polls": 1, "cancels": 0, "running": 0, "max_running": 1}
    assert await stats(http, emu) == {**counters, "by_secret": {SECRET: counters}, "overlapping_polls": 0}
    await control(http, emu, "/_emulator/reset", {})
    zero = {"creates": 0, "polls": 0, "cancels": 0, "running": 0, "max_running": 0}
    assert await stats(http, emu) == {**zero, "by_secret": {}, "overlapping_polls": 0}


async def test_overlapping_polls_are_counted(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    _, task, _ = await create(http, emu)
    await asyncio.gather(*(poll(http, emu, task["id"]) for _ in range(2)))
    await poll(http, emu, task["id"])
    assert (await stats(http, emu))["overlapping_polls"] == 1


async def test_status_fault_with_retry_after(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, provider="vidu", op="create", kind="status", status=429, retry_after=7, count=1)
    status, body, reply = await create(http, emu)
    assert status == 429 and reply.headers["Retry-After"] == "7"
    assert body["code"] == 429 and body["reason"] == "TooManyRequests"
    assert (await stats(http, emu))["creates"] == 0  # a refused create is not a job
    status, _, _ = await create(http, emu)
    assert status == 200  # count 1: the rule expired


async def test_fault_scoped_to_secret_and_op(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, op="poll", secret=OTHER, kind="status", status=500)
    status, task, _ = await create(http, emu)
    assert status == 200
    await poll(http, emu, task["id"])  # another secret's poll fault does not apply
    async with http.get(emu.url("/_emulator/faults")) as reply:
        (listed,) = (await reply.json())["faults"]
    assert listed["secret"] == OTHER and listed["remaining"] is None
    async with http.delete(emu.url("/_emulator/faults")) as reply:
        assert reply.status == 200
    async with http.get(emu.url("/_emulator/faults")) as reply:
        assert (await reply.json())["faults"] == []


async def test_fault_duration_expires(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, op="create", kind="status", status=500, duration=0.3)
    assert (await create(http, emu))[0] == 500
    await asyncio.sleep(0.35)
    assert (await create(http, emu))[0] == 200


async def test_malformed_reply_is_not_a_job(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, op="create", kind="malformed", count=1)
    async with http.post(emu.url(TASKS), json=BODY, headers=AUTH) as reply:
        assert reply.status == 200
        with pytest.raises(ValueError):
            await reply.json(content_type=None)
    assert (await stats(http, emu))["creates"] == 0


async def test_drop_after_accept(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, op="create", kind="drop_after_accept", count=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(http, emu)
    assert (await stats(http, emu))["creates"] == 1  # accepted, so it is a job
    async with http.get(emu.url(f"{TASKS}/history/me"), headers=AUTH) as reply:
        assert (await reply.json())["total"] >= 1
    assert (await create(http, emu))[0] == 200


async def test_drop_when_mounted_in_another_app() -> None:
    """As `gengate serve --sandbox` mounts it: inside a FastAPI app, below a prefix."""
    sock, base = bound_socket()
    outer = FastAPI()
    outer.router.routes.insert(
        0, Mount("/_sandbox", app=build_emulator_app(task_seconds=(0, 0), public_base=base + "/_sandbox"))
    )
    with serving(outer, sock):
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/_sandbox/_emulator/faults", json={"kind": "drop_after_accept"}) as reply:
                assert reply.status == 200
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await http.post(base + "/_sandbox" + TASKS, json=BODY, headers=AUTH)
            await http.delete(base + "/_sandbox/_emulator/faults")
            async with http.post(base + "/_sandbox" + TASKS, json=BODY, headers=AUTH) as reply:
                task = await reply.json()
            async with http.get(base + f"/_sandbox{TASKS}/{task['id']}", headers=AUTH) as reply:
                uri = (await reply.json())["creations"][0]["cover_uri"]
            assert uri.startswith(base + "/_sandbox/vidu/")
            async with http.get(uri) as reply:
                assert reply.status == 200 and reply.headers["Content-Type"] == "image/jpeg"
            async with http.get(base + "/_sandbox/_emulator/stats") as reply:
                assert (await reply.json())["vidu"]["creates"] == 2


async def test_timeout_fault_on_create_accepts_then_delays(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, op="create", kind="timeout", seconds=1.0, count=1)
    with pytest.raises(asyncio.TimeoutError):
        await http.post(emu.url(TASKS), json=BODY, headers=AUTH, timeout=aiohttp.ClientTimeout(total=0.3))
    assert (await stats(http, emu))["creates"] == 1  # the client gave up; the job exists


async def test_timeout_fault_on_poll_answers_late(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    _, task, _ = await create(http, emu)
    await fault(http, emu, op="poll", kind="timeout", seconds=0.3, count=1)
    started = time.monotonic()
    assert (await poll(http, emu, task["id"]))["state"] == "success"
    assert time.monotonic() - started >= 0.3


async def test_unknown_state(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    _, task, _ = await create(http, emu)
    await fault(http, emu, provider="vidu", op="poll", kind="unknown_state", count=2)
    assert [(await poll(http, emu, task["id"]))["state"] for _ in range(3)] == [
        "mystery_state",
        "mystery_state",
        "success",
    ]


async def test_fail_task(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, kind="fail_task", count=1)
    _, failed, _ = await create(http, emu)
    _, fine, _ = await create(http, emu)
    failed = await poll(http, emu, failed["id"])
    assert failed["state"] == "failed" and failed["err_code"] == "CreationPolicyViolation" and failed["err_msg"]
    assert failed["creations"] == []
    assert (await poll(http, emu, fine["id"]))["state"] == "success"


async def test_bad_fault_rules_are_refused(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    for rule in ({"kind": "explode"}, {"kind": "fail_task", "op": "poll"}, {"kind": "status", "count": 0}):
        async with http.post(emu.url("/_emulator/faults"), json=rule) as reply:
            assert reply.status == 400


async def test_cap_refuses_with_quota_exceeded(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    # Held tasks stay running, so the (0, 0) emulator can fill a cap.
    await control(http, emu, "/_emulator/hold", {"provider": "vidu", "on": True})
    await control(http, emu, "/_emulator/caps", {"provider": "vidu", "secret": SECRET, "max_running": 2})
    ids = [(await create(http, emu))[1]["id"] for _ in range(2)]
    status, body, _ = await create(http, emu)
    assert status == 429 and body["reason"] == "QuotaExceeded"
    assert (await create(http, emu, OTHER))[0] == 200  # the cap is per secret
    snapshot = await stats(http, emu)
    assert snapshot["creates"] == 3 and snapshot["running"] == 3 and snapshot["max_running"] == 3
    assert snapshot["by_secret"][SECRET]["max_running"] == 2 and snapshot["by_secret"][SECRET]["running"] == 2

    async with http.delete(emu.url(f"{TASKS}/{ids[0]}"), headers=AUTH) as reply:
        assert reply.status == 200
    assert (await create(http, emu))[0] == 200  # a slot freed up
    await control(http, emu, "/_emulator/caps", {"provider": "vidu", "secret": SECRET, "max_running": None})
    assert (await create(http, emu))[0] == 200
    await control(http, emu, "/_emulator/hold", {"provider": "vidu", "on": False})
    assert (await stats(http, emu))["running"] == 0


async def test_hold_freezes_and_release_resumes(http: aiohttp.ClientSession) -> None:
    with running_emulator(task_seconds=(0.6, 0.6)) as slow:
        _, first, _ = await create(http, slow)
        _, second, _ = await create(http, slow)
        held = await control(http, slow, "/_emulator/hold", {"provider": "vidu", "task_id": first["id"], "on": True})
        assert held == {"changed": 1}
        await asyncio.sleep(0.8)
        assert (await poll(http, slow, first["id"]))["state"] == "created"
        assert (await poll(http, slow, second["id"]))["state"] == "success"
        assert (await stats(http, slow))["running"] == 1

        await control(http, slow, "/_emulator/hold", {"provider": "vidu", "on": True})  # all, and future ones
        _, third, _ = await create(http, slow)
        await asyncio.sleep(0.7)
        assert (await poll(http, slow, third["id"]))["state"] == "created"
        released = await control(http, slow, "/_emulator/hold", {"provider": "vidu", "on": False})
        assert released == {"changed": 2}
        await asyncio.sleep(0.3)
        assert (await poll(http, slow, first["id"]))["state"] != "success"  # it resumed where it stopped
        await asyncio.sleep(0.5)
        assert (await poll(http, slow, first["id"]))["state"] == "success"
        assert (await poll(http, slow, third["id"]))["state"] == "success"


async def test_media_range_head_and_expiry(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    _, task, _ = await create(http, emu)
    uri = (await poll(http, emu, task["id"]))["creations"][0]["uri"]
    async with http.get(uri) as reply:
        whole = await reply.read()
        assert reply.headers["Accept-Ranges"] == "bytes"
    async with http.get(uri, headers={"Range": "bytes=10-19"}) as reply:
        assert reply.status == 206 and await reply.read() == whole[10:20]
        assert reply.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
    async with http.get(uri, headers={"Range": "bytes=-8"}) as reply:
        assert reply.status == 206 and await reply.read() == whole[-8:]
    async with http.get(uri, headers={"Range": f"bytes={len(whole)}-"}) as reply:
        assert reply.status == 416
    async with http.head(uri) as reply:
        assert reply.status == 200 and int(reply.headers["Content-Length"]) == len(whole)
    async with http.get(uri.replace("Signature=", "Signature=0")) as reply:
        assert reply.status == 403

    signer = emu.app.state.emulator.contexts["vidu"].signer
    expired = signer.url("vidu", MediaSpec("jpeg", "1234", 64, 36), "cover.jpeg", now=time.time() - 2 * 3600)
    assert expired.startswith(emu.base_url)
    async with http.get(expired) as reply:
        assert reply.status == 403
    async with http.get(signer.url("vidu", MediaSpec("mp3", "1234", duration=1.5), "song.mp3")) as reply:
        assert reply.status == 200 and reply.headers["Content-Type"] == "audio/mpeg"


async def test_sqlite_state_is_shared_and_survives_restart(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    with running_emulator(task_seconds=(0.6, 0.6), state_dir=tmp_path) as first:
        with running_emulator(task_seconds=(0.6, 0.6), state_dir=tmp_path) as second:
            _, task, _ = await create(http, first)
            # the second process sees the first's task (its state may have moved on under load)
            assert (await poll(http, second, task["id"]))["state"] in ("created", "queueing", "processing", "success")
            await asyncio.sleep(0.7)
            done = await poll(http, second, task["id"])
            assert done["state"] == "success"
            async with http.get(done["creations"][0]["cover_uri"].replace(second.base_url, first.base_url)) as r:
                assert r.status == 200  # one signing key for every process

            await control(http, second, "/_emulator/hold", {"provider": "vidu", "on": True})
            _, held, _ = await create(http, first)  # the hold is shared too
            await asyncio.sleep(0.7)
            assert (await poll(http, first, held["id"]))["state"] == "created"
            await control(http, first, "/_emulator/hold", {"provider": "vidu", "on": False})
    # Restarted on the same directory: the task accepted before the restart still completes.
    with running_emulator(task_seconds=(0.6, 0.6), state_dir=tmp_path) as third:
        await asyncio.sleep(0.6)
        assert (await poll(http, third, held["id"]))["state"] == "success"
        async with http.get(third.url(f"{TASKS}/history/me"), headers=AUTH) as reply:
            assert (await reply.json())["total"] == 2
