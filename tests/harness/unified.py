"""Raw-HTTP client helpers for gengate's unified task API (`/v1/tasks/{id}`, `/events`, `/cancel`),
shared by the tests under tests/unified (a plain module, not a conftest)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

UNIFIED_STATUSES = ("queued", "in_progress", "succeeded", "failed", "cancelled")
UNIFIED_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
STATUS_RANK = {"queued": 0, "in_progress": 1, "succeeded": 2, "failed": 2, "cancelled": 2}
TASK_KEYS = {"id", "object", "provider", "model", "status", "progress", "created_at", "updated_at", "outputs",
             "error", "cost"}
PRICE_T2V_4S = 20_000  # 4 s of `model: vidu-1` at its default resolution (shipped price table)


def t2v(prompt: str = "a paper boat on a rainy street", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": prompt}]},
                            "settings": {"duration": 4, "model": "vidu-1"}}
    body.update(extra)
    return body


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class Answer:
    status: int
    body: Any
    text: str
    headers: Any


async def call(http: aiohttp.ClientSession, method: str, url: str, key: str | None = None,
               json_body: Any = None, scheme: str = "Bearer") -> Answer:
    headers = {"Authorization": f"{scheme} {key}"} if key else {}
    async with http.request(method, url, headers=headers, json=json_body) as resp:
        text = await resp.text(errors="replace")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return Answer(resp.status, body, text, resp.headers)


def assert_openai_error(answer: Answer, status: int | None = None, code: str | None = None) -> None:
    """OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`, nothing else."""
    assert "Traceback" not in answer.text, answer.text
    if status is not None:
        assert answer.status == status, (answer.status, answer.text)
    assert answer.headers.get("Content-Type", "").startswith("application/json"), answer.headers
    body = answer.body
    assert isinstance(body, dict) and set(body) == {"error"}, (answer.status, answer.text)
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    if code is not None:
        assert err["code"] == code, err


def check_unified(obj: dict[str, Any], task_id: str | None = None) -> None:
    """The shape of gengate's task object (interface.md "Unified task API")."""
    assert set(obj) == TASK_KEYS, obj
    if task_id is not None:
        assert obj["id"] == task_id, obj
    assert obj["object"] == "task"
    assert obj["status"] in UNIFIED_STATUSES, obj
    assert obj["progress"] is None or (isinstance(obj["progress"], int) and 0 <= obj["progress"] <= 100), obj
    for name in ("created_at", "updated_at"):
        assert isinstance(obj[name], int) and not isinstance(obj[name], bool), obj
        assert abs(obj[name] - time.time()) < 600, obj
    assert obj["created_at"] <= obj["updated_at"], obj
    assert isinstance(obj["outputs"], list), obj
    for out in obj["outputs"]:
        assert set(out) == {"url", "type"} and isinstance(out["url"], str) and isinstance(out["type"], str), out
    if obj["status"] in ("failed", "cancelled"):
        err = obj["error"]
        assert isinstance(err, dict) and set(err) == {"code", "message"}, obj
        assert isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str), obj
    else:
        assert obj["error"] is None, obj
    cost = obj["cost"]
    assert isinstance(cost, dict) and set(cost) == {"reserved", "settled"}, obj
    assert isinstance(cost["reserved"], int) and cost["reserved"] >= 0, obj
    if obj["status"] in UNIFIED_TERMINAL:
        assert isinstance(cost["settled"], int) and 0 <= cost["settled"] <= cost["reserved"], obj
    else:
        assert cost["settled"] is None, obj
    if obj["status"] != "succeeded":
        assert obj["outputs"] == [], obj


async def get_task(http: aiohttp.ClientSession, base: str, key: str, task_id: str) -> dict[str, Any]:
    answer = await call(http, "GET", f"{base}/v1/tasks/{task_id}", key)
    assert answer.status == 200, (answer.status, answer.text)
    check_unified(answer.body, task_id)
    return answer.body


async def wait_status(http: aiohttp.ClientSession, base: str, key: str, task_id: str,
                      statuses: frozenset[str] | set[str] = UNIFIED_TERMINAL, within: float = 40
                      ) -> tuple[dict[str, Any], list[str]]:
    """Poll `GET /v1/tasks/{id}` until its status is in `statuses`; returns the object and every status seen."""
    deadline = time.monotonic() + within
    seen: list[str] = []
    last: Any = None
    while time.monotonic() < deadline:
        last = await get_task(http, base, key, task_id)
        if not seen or seen[-1] != last["status"]:
            seen.append(last["status"])
        if last["status"] in statuses:
            return last, seen
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} not in {sorted(statuses)} within {within} s: {last}")


@dataclass
class Stream:
    status: int
    content_type: str
    events: list[tuple[float, Any]] = field(default_factory=list)  # (seconds since the request, JSON)
    blocks: list[list[str]] = field(default_factory=list)  # every event block's non-empty lines
    closed_after: float | None = None  # seconds since the request when the server closed the stream
    error: Answer | None = None  # a non-stream reply


async def read_events(http: aiohttp.ClientSession, base: str, key: str | None, task_id: str,
                      within: float = 30, path: str | None = None) -> Stream:
    """Read `GET /v1/tasks/{id}/events` until the server closes it (or `within` s: an assertion)."""
    started = time.monotonic()
    url = base + (path or f"/v1/tasks/{task_id}/events")
    async with http.get(url, headers={**bearer(key), "Accept": "text/event-stream"},
                        timeout=aiohttp.ClientTimeout(total=within)) as resp:
        ctype = resp.headers.get("Content-Type", "")
        if resp.status != 200 or not ctype.startswith("text/event-stream"):
            text = await resp.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            return Stream(resp.status, ctype, error=Answer(resp.status, body, text, resp.headers))
        stream = Stream(resp.status, ctype)
        block: list[str] = []
        while True:
            try:
                raw = await resp.content.readline()
            except TimeoutError:
                raise AssertionError(f"the stream of {task_id} did not close within {within} s: "
                                     f"{[e for _, e in stream.events]}") from None
            if not raw:
                break
            line = raw.decode().rstrip("\r\n")
            if line:
                block.append(line)
                continue
            if block:
                stream.blocks.append(block)
                data = [ln for ln in block if ln.startswith("data:")]
                if data:
                    stream.events.append((time.monotonic() - started, json.loads(data[0][5:].strip())))
                block = []
        if block:
            stream.blocks.append(block)
        stream.closed_after = time.monotonic() - started
        return stream
