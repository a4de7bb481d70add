"""Client helpers of the Kling family (`/kling/v1`): `KlingClient` (raw HTTP, one gengate key),
`assert_kling_error` (Kling's envelope and code table), `kling_jwt` (a token as Kling's clients sign
it) and `KlingEmulator` (a standalone `gengate emulate` whose secrets are `AK|SK` pairs)."""

from __future__ import annotations

import asyncio
import secrets
import time
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from harness.processes import Emulator
from harness.vidu import Reply, send

TERMINAL = frozenset({"succeed", "failed"})
PATHS = {"text2video": "/v1/videos/text2video", "image2video": "/v1/videos/image2video",
         "images": "/v1/images/generations", "extend": "/v1/videos/video-extend", "lip_sync": "/v1/videos/lip-sync",
         "try_on": "/v1/images/kolors-virtual-try-on"}
# Kling's code table (kling.md §6): code -> HTTP status.
STATUS_OF = {1000: 401, 1001: 401, 1002: 401, 1003: 401, 1004: 401, 1100: 429, 1101: 429, 1102: 429, 1103: 403,
             1200: 400, 1201: 400, 1202: 404, 1203: 404, 1300: 400, 1301: 400, 1302: 429, 1303: 429, 1304: 429,
             5000: 500, 5001: 503, 5002: 504}


class KlingClient:
    """Raw-HTTP client of gengate's `/kling/v1` (or, with `prefix=""` and a JWT, of a Kling upstream)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str | None, prefix: str = "/kling") -> None:
        self.http, self.base, self.key, self.prefix = http, base.rstrip("/"), key, prefix

    async def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                      params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Reply:
        h = {"Authorization": f"Bearer {self.key}"} if self.key is not None else {}
        # A fresh connection per request: tests pause for CLI calls longer than the server's keep-alive,
        # and a pooled connection closed meanwhile would fail the next request.
        h["Connection"] = "close"
        h.update(headers or {})
        return await send(self.http, method, self.base + self.prefix + path, h, json_body=json_body, data=data,
                          params=params, data_is_json=True)

    async def create(self, kind: str, body: Any = None, *, data: Any = None,
                     headers: dict[str, str] | None = None) -> Reply:
        return await self.request("POST", PATHS[kind], json_body=body, data=data, headers=headers)

    async def create_ok(self, kind: str, body: Any, **kw: Any) -> dict[str, Any]:
        reply = await self.create(kind, body, **kw)
        assert reply.status == 200, (reply.status, reply.text)
        assert reply.body["code"] == 0 and reply.body["message"] == "SUCCEED", reply.body
        return reply.body["data"]

    async def get(self, kind: str, task_id: str) -> Reply:
        return await self.request("GET", f"{PATHS[kind]}/{task_id}")

    async def list(self, kind: str, **params: Any) -> Reply:
        return await self.request("GET", PATHS[kind], params={k: str(v) for k, v in params.items()})

    async def wait(self, kind: str, task_id: str, states: frozenset[str] = TERMINAL,
                   timeout: float = 40) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            reply = await self.get(kind, task_id)
            assert reply.status == 200, (reply.status, reply.text)
            last = reply.body["data"]
            if last["task_status"] in states:
                return last
            await asyncio.sleep(0.15)
        raise AssertionError(f"task {task_id} not in {sorted(states)} within {timeout} s: {last}")


def assert_kling_error(reply: Reply, code: int, status: int | None = None) -> None:
    """Kling's error envelope `{code, message, request_id}`, no `data`, with the table's HTTP status."""
    assert "Traceback" not in reply.text, reply.text
    body = reply.body
    assert isinstance(body, dict), (reply.status, reply.text)
    assert body.get("code") == code, (reply.status, body)
    assert reply.status == (status if status is not None else STATUS_OF[code]), (reply.status, body)
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("request_id"), str) and body["request_id"], body
    assert body.get("data") is None, body


def kling_jwt(access_key: str, secret_key: str, *, exp: float | None = None, nbf: float | None = None,
              iss: str | None = None) -> str:
    """A token as Kling's docs sign it: HS256, iss = AK, exp = now + 1800, nbf = now - 5."""
    now = time.time()
    claims = {"iss": access_key if iss is None else iss, "exp": int(now + 1800 if exp is None else exp),
              "nbf": int(now - 5 if nbf is None else nbf)}
    with warnings.catch_warnings():  # tests sign with short, wrong keys on purpose
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret_key, algorithm="HS256", headers={"typ": "JWT"})


class KlingEmulator(Emulator):
    """A standalone `gengate emulate` whose accepted secrets are distinct `AK|SK` pairs."""

    def __init__(self, workdir: Path, task_seconds: float = 2.0, pool: int = 32) -> None:
        super().__init__(workdir, task_seconds, pool)
        self._pool = [f"ak-{secrets.token_hex(6)}|sk-{secrets.token_hex(16)}" for _ in range(pool)]
