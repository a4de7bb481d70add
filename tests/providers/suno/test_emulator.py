"""The Suno-API proxy emulator on its own (the standalone `gengate emulate`, raw HTTP): auth, the
envelope, clips walking submitted → queued → streaming → complete, the batch fetch, the raw single
fetch, continuation only within one account, and injected failures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


class Proxy:
    def __init__(self, http: Any, base: str, secret: str | None) -> None:
        self.http, self.base, self.secret = http, base, secret

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def submit(self, action: str, body: Any) -> str:
        status, reply = await self.call("POST", f"/suno/submit/{action}", body)
        assert status == 200 and reply["code"] == "success", reply
        return reply["data"]

    async def rows(self, ids: list[str]) -> list[dict[str, Any]]:
        status, reply = await self.call("POST", "/suno/fetch", {"ids": ids})
        assert status == 200 and reply["code"] == "success", reply
        return reply["data"]

    async def until(self, task_id: str, statuses: set[str], within: float = 30) -> dict[str, Any]:
        end = time.monotonic() + within
        seen: list[str] = []
        while time.monotonic() < end:
            [row] = await self.rows([task_id])
            if not seen or seen[-1] != row["status"]:
                seen.append(row["status"])
            if row["status"] in statuses:
                row["_seen"] = seen
                return row
            await asyncio.sleep(0.05)
        raise AssertionError(f"{task_id}: {seen}")


def envelope(status: int, body: Any, want_status: int, code: str | None = None) -> None:
    assert status == want_status, (status, body)
    assert set(body) == {"code", "message", "data"} and body["data"] is None, body
    if code is not None:
        assert body["code"] == code, body


async def test_music_walk_batch_fetch_and_raw_fetch(emulator, http):
    secret = emulator.new_secret()
    p = Proxy(http, emulator.provider_url("suno"), secret)
    envelope(*await Proxy(http, p.base, None).call("POST", "/suno/submit/music", {"prompt": "x"}), 401)
    envelope(*await p.call("POST", "/suno/submit/video", {"prompt": "x"}), 400, "invalid_request")
    envelope(*await p.call("POST", "/suno/submit/lyrics", {"prompt": ""}), 400, "invalid_request")
    envelope(*await p.call("POST", "/suno/submit/music", {"title": "no lyrics"}), 400, "invalid_request")
    envelope(*await p.call("POST", "/suno/submit/music", {"prompt": "x", "continue_clip_id": "c"}), 400)
    assert emulator.creates(secret, "suno") == 0

    task_id = await p.submit("music", {"prompt": "[Verse]\nHello", "title": "Hi", "tags": "pop", "mv": "chirp-v3-5"})
    done = await p.until(task_id, {"SUCCESS", "FAILURE"})
    assert done["status"] == "SUCCESS", done
    assert set(done["_seen"]) <= {"SUBMITTED", "QUEUED", "IN_PROGRESS", "SUCCESS"}, done["_seen"]
    assert done["action"] == "MUSIC" and done["progress"] == "100%" and done["finish_time"] >= done["submit_time"]
    assert len(done["data"]) == 2
    for clip in done["data"]:
        assert clip["status"] == "complete" and clip["title"] == "Hi" and clip["model_name"] == "chirp-v3-5"
        assert clip["audio_url"] and clip["video_url"] and clip["image_url"] and clip["image_large_url"]
        async with http.get(clip["audio_url"]) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("audio/mpeg")
    lyrics_id = await p.submit("lyrics", {"prompt": "a night drive"})
    rows = await p.rows([lyrics_id, "00000000-0000-4000-8000-000000000000", task_id])
    assert [r["task_id"] for r in rows] == [lyrics_id, task_id]  # unknown ids are absent
    assert rows[0]["status"] == "SUCCESS" and rows[0]["data"]["text"]  # lyrics are ready at once

    status, raw = await p.call("GET", f"/suno/fetch/{task_id}")
    assert status == 200 and isinstance(raw["data"], list) and raw["data"][0]["id"] == done["data"][0]["id"]
    envelope(*await p.call("GET", "/suno/fetch/00000000-0000-4000-8000-000000000000"), 404)
    # Another account sees none of it, and cannot extend its clips.
    other = Proxy(http, p.base, emulator.new_secret())
    assert await other.rows([task_id]) == []
    body = {"prompt": "more", "continue_clip_id": done["data"][0]["id"], "continue_at": 1, "task_id": task_id}
    envelope(*await other.call("POST", "/suno/submit/music", body), 400)
    child = await p.submit("music", body)
    child_done = await p.until(child, {"SUCCESS", "FAILURE"})
    assert child_done["data"][0]["metadata"]["history"][0]["id"] == done["data"][0]["id"]
    status, account = await p.call("GET", "/suno/account")
    assert status == 200 and "credits_left" in account["data"]


async def test_injected_failure_and_unknown_state(emulator, http):
    secret = emulator.new_secret()
    p = Proxy(http, emulator.provider_url("suno"), secret)
    emulator.fault(provider="suno", secret=secret, kind="fail_task", count=1, err_msg="moderated")
    task_id = await p.submit("music", {"gpt_description_prompt": "a song"})
    row = await p.until(task_id, {"FAILURE", "SUCCESS"})
    assert row["status"] == "FAILURE" and row["fail_reason"] == "moderated", row
    assert all(c["status"] == "error" and c["metadata"]["error_message"] == "moderated" for c in row["data"])
    emulator.fault(provider="suno", secret=secret, kind="unknown_state", count=1)
    [odd] = await p.rows([task_id])
    assert odd["status"] not in ("SUCCESS", "FAILURE", "SUBMITTED", "QUEUED", "IN_PROGRESS")
    emulator.fault(provider="suno", secret=secret, kind="status", status=403, message="quota_not_enough", count=1)
    envelope(*await p.call("POST", "/suno/submit/music", {"prompt": "x"}), 403)
