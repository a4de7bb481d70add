"""Client helpers of the Vidu platform family (`/vidu/ent/v2`): `ViduEntClient` (raw HTTP, one key)."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import aiohttp
import av

from harness.vidu import Reply, send

TERMINAL = frozenset({"success", "failed"})


class ViduEntClient:
    """Raw-HTTP client of gengate's `/vidu/ent/v2`, authenticated with one key (`Token` by default)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str | None, scheme: str = "Token") -> None:
        self.http, self.base, self.key, self.scheme = http, base.rstrip("/"), key, scheme

    async def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                      headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> Reply:
        h = {"Authorization": f"{self.scheme} {self.key}"} if self.key is not None else {}
        # A fresh connection per request: tests pause for CLI calls longer than the server's keep-alive,
        # and a pooled connection the server closes just then fails the next request.
        h["Connection"] = "close"
        h.update(headers or {})
        return await send(self.http, method, self.base + "/vidu/ent/v2" + path, h, json_body=json_body, data=data,
                          params=params, data_is_json=True)

    async def create(self, action: str, body: Any, **kw: Any) -> Reply:
        return await self.request("POST", f"/{action}", json_body=body, **kw)

    async def create_ok(self, action: str, body: Any, **kw: Any) -> dict[str, Any]:
        reply = await self.create(action, body, **kw)
        assert reply.status == 200, (reply.status, reply.text)
        return reply.body

    async def creations(self, task_id: str) -> Reply:
        return await self.request("GET", f"/tasks/{task_id}/creations")

    async def cancel(self, task_id: str) -> Reply:
        return await self.request("POST", f"/tasks/{task_id}/cancel", json_body={"id": task_id})

    async def wait(self, task_id: str, timeout: float = 40) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            reply = await self.creations(task_id)
            assert reply.status == 200, (reply.status, reply.text)
            last = reply.body
            if last["state"] in TERMINAL:
                return last
            await asyncio.sleep(0.15)
        raise AssertionError(f"task {task_id} not terminal within {timeout} s: {last}")


def probe_mp4(data: bytes) -> tuple[int, int, float]:
    """(width, height, duration s) of an MP4, decoded with PyAV."""
    assert data[4:8] == b"ftyp", data[:16]
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames >= 1
        duration = container.duration / 1_000_000 if container.duration else float(stream.duration * stream.time_base)
        return stream.codec_context.width, stream.codec_context.height, duration
