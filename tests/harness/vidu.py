"""Client helpers of the Vidu web/app family (`/vidu/v1`): `ViduClient` (raw HTTP, one key),
`DurableViduClient` (never raises on a dropped connection: a server that dies mid-request gives
None) and `assert_vidu_error` (Vidu's error envelope)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

TERMINAL = frozenset({"success", "failed", "canceled"})


@dataclass
class Reply:
    status: int
    body: Any
    text: str
    headers: Any


async def send(http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], *,
               json_body: Any = None, data: Any = None, params: dict[str, str] | None = None,
               data_is_json: bool = False) -> Reply:
    """One request, its reply read whole (`body`: the JSON, or None when it is not JSON). `data` is
    sent as given; with `data_is_json` it goes as `application/json` unless `headers` say otherwise."""
    kwargs: dict[str, Any] = {"headers": headers}
    if params is not None:
        kwargs["params"] = params
    if json_body is not None:
        kwargs["json"] = json_body
    elif data is not None:
        kwargs["data"] = data
        if data_is_json:
            headers.setdefault("Content-Type", "application/json")
    async with http.request(method, url, **kwargs) as resp:
        text = await resp.text(errors="replace")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return Reply(resp.status, body, text, resp.headers)


class ViduClient:
    """Raw-HTTP client of gengate's `/vidu/v1` (the web/app format), authenticated with one key."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str | None, scheme: str = "Token") -> None:
        self.http, self.base, self.key, self.scheme = http, base.rstrip("/"), key, scheme

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"{self.scheme} {self.key}"} if self.key is not None else {}
        h.update(extra or {})
        return h

    async def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                      headers: dict[str, str] | None = None) -> Reply:
        return await send(self.http, method, self.base + path, self.headers(headers), json_body=json_body, data=data)

    async def create(self, body: Any = None, *, data: Any = None, headers: dict[str, str] | None = None) -> Reply:
        if data is not None:
            headers = {"Content-Type": "application/json", **(headers or {})}
        return await self.request("POST", "/vidu/v1/tasks", json_body=body, data=data, headers=headers)

    async def create_ok(self, body: Any, **kw: Any) -> dict[str, Any]:
        reply = await self.create(body, **kw)
        assert reply.status == 200, (reply.status, reply.text)
        return reply.body

    async def get(self, task_id: str) -> Reply:
        return await self.request("GET", f"/vidu/v1/tasks/{task_id}")

    async def wait(self, task_id: str, states: frozenset[str] = TERMINAL,
                   timeout: float = 40) -> dict[str, Any]:  # noqa: ASYNC109
        """Poll GET until the task's state is in `states` (at most `timeout` s); returns the task object."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            reply = await self.get(task_id)
            assert reply.status == 200, (reply.status, reply.text)
            last = reply.body
            if last["state"] in states:
                return last
            await asyncio.sleep(0.15)
        raise AssertionError(f"task {task_id} not in {sorted(states)} within {timeout} s: {last}")

    async def events(self, task_id: str,
                     timeout: float = 30) -> tuple[Reply, list[tuple[float, Any]], list[str]]:  # noqa: ASYNC109
        """Read the SSE stream `GET /vidu/v1/tasks/state?id=` to its end (at most `timeout` s, else
        aiohttp's timeout error). Returns the reply (headers,
        status; body only for a non-stream reply), the events as (seconds since the request, parsed
        JSON), and every raw non-empty line."""
        started = time.monotonic()
        events: list[tuple[float, Any]] = []
        lines: list[str] = []
        async with self.http.get(f"{self.base}/vidu/v1/tasks/state", params={"id": task_id},
                                 headers=self.headers({"Accept": "text/event-stream"}),
                                 timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200 or not resp.content_type.startswith("text/event-stream"):
                text = await resp.text()
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                return Reply(resp.status, body, text, resp.headers), [], []
            while True:
                raw = await resp.content.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                if not line:
                    continue
                lines.append(line)
                if line.startswith("data:"):
                    events.append((time.monotonic() - started, json.loads(line[5:].strip())))
            return Reply(resp.status, None, "", resp.headers), events, lines



def assert_vidu_error(reply: Reply, status: int | None = None, reason: str | None = None) -> None:
    """Vidu's envelope `{code, reason, message, metadata.trace_id}` with `code` = the HTTP status."""
    assert "Traceback" not in reply.text, reply.text
    if status is not None:
        assert reply.status == status, (reply.status, reply.text)
    body = reply.body
    assert isinstance(body, dict), (reply.status, reply.text)
    assert body.get("code") == reply.status, body
    assert isinstance(body.get("reason"), str) and body["reason"], body
    assert isinstance(body.get("message"), str), body
    assert isinstance(body.get("metadata"), dict) and isinstance(body["metadata"].get("trace_id"), str), body
    assert body["metadata"]["trace_id"], body
    if reason is not None:
        assert body["reason"] == reason, body


class DurableViduClient:
    """gengate's Vidu routes and unified task API for one client key; `request` gives None instead of
    raising when the connection failed or was dropped (the server died)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, key: str) -> None:
        self.http, self.base, self.key = http, base_url.rstrip("/"), key

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                      within: float = 60) -> Reply | None:
        """The reply, or None when the connection failed or was dropped (the server died)."""
        h = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        try:
            async with self.http.request(method, self.base + path, json=body, headers=h,
                                         timeout=aiohttp.ClientTimeout(total=within)) as resp:
                text = await resp.text(errors="replace")
                try:
                    parsed = json.loads(text) if text else None
                except ValueError:
                    parsed = None
                return Reply(resp.status, parsed, text, resp.headers)
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            return None

    async def create(self, payload: dict[str, Any], idempotency_key: str | None = None) -> Reply | None:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.request("POST", "/vidu/v1/tasks", payload, headers)

    async def create_ok(self, payload: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        reply = await self.create(payload, idempotency_key)
        assert reply is not None and reply.status == 200, (reply.status, reply.text) if reply else "no reply"
        return reply.body

    async def get(self, task_id: str) -> dict[str, Any]:
        reply = await self.request("GET", f"/vidu/v1/tasks/{task_id}")
        assert reply is not None and reply.status == 200, (reply.status, reply.text) if reply else "no reply"
        return reply.body

    async def unified(self, task_id: str) -> dict[str, Any]:
        reply = await self.request("GET", f"/v1/tasks/{task_id}")
        assert reply is not None and reply.status == 200, (reply.status, reply.text) if reply else "no reply"
        return reply.body

    async def wait(self, task_id: str, within: float = 30, states: frozenset[str] = TERMINAL
                   ) -> dict[str, Any]:
        end = time.monotonic() + within
        last: Any = None
        while time.monotonic() < end:
            last = await self.get(task_id)
            if last["state"] in states:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"task {task_id} not in {sorted(states)} within {within} s: {last}")
