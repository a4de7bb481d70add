"""Client helpers of the Suno-API relay family (`/suno`): `SunoClient` (raw HTTP, one key) and
`assert_suno_error` (the `{code, message, data: null}` envelope)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from harness.vidu import Reply, send

FINAL = frozenset({"SUCCESS", "FAILURE"})


class SunoClient:
    def __init__(self, http: aiohttp.ClientSession, base: str, key: str | None) -> None:
        self.http, self.base, self.key = http, base.rstrip("/"), key

    async def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                      headers: dict[str, str] | None = None) -> Reply:
        h = {"Authorization": f"Bearer {self.key}"} if self.key is not None else {}
        h.update(headers or {})
        return await send(self.http, method, self.base + path, h, json_body=json_body, data=data, data_is_json=True)

    async def submit(self, action: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", f"/suno/submit/{action}", json_body=body, **kw)

    async def submit_ok(self, action: str, body: Any, **kw: Any) -> str:
        reply = await self.submit(action, body, **kw)
        assert reply.status == 200, (reply.status, reply.text)
        assert reply.body["code"] == "success" and reply.body["message"] == "", reply.body
        assert isinstance(reply.body["data"], str) and reply.body["data"], reply.body
        return reply.body["data"]

    async def fetch(self, task_id: str) -> Reply:
        return await self.request("GET", f"/suno/fetch/{task_id}")

    async def fetch_many(self, ids: Any, **extra: Any) -> Reply:
        return await self.request("POST", "/suno/fetch", json_body={"ids": ids, **extra})

    async def wait(self, task_id: str, timeout: float = 40) -> dict[str, Any]:  # noqa: ASYNC109
        """GET /suno/fetch/{id} until the task is SUCCESS or FAILURE; returns its TaskDto."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            reply = await self.fetch(task_id)
            assert reply.status == 200, (reply.status, reply.text)
            assert reply.body["code"] == "success", reply.body
            last = reply.body["data"]
            if last["status"] in FINAL:
                return last
            await asyncio.sleep(0.15)
        raise AssertionError(f"task {task_id} not final within {timeout} s: {last}")


def assert_suno_error(reply: Reply, status: int, code: str | None = None, message: str | None = None) -> None:
    assert "Traceback" not in reply.text, reply.text
    assert reply.status == status, (reply.status, reply.text)
    body = reply.body
    assert isinstance(body, dict) and set(body) == {"code", "message", "data"}, reply.text
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str), body
    assert body["data"] is None, body
    if code is not None:
        assert body["code"] == code, body
    if message is not None:
        assert body["message"] == message, body
