"""Client helpers of the Luma family (`/luma/dream-machine/v1`): the official `lumaai` SDK pointed at a
gengate server (`luma_sdk`), `wait_generation` (poll with the SDK until a terminal state), `download`
and media probes for the asset URLs, and `assert_luma_error` (Luma's `{"detail"}` body)."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import aiohttp
import av
from lumaai import APIStatusError, AsyncLumaAI
from lumaai.types import Generation
from PIL import Image

LUMA_PATH = "/luma/dream-machine/v1"
TERMINAL = frozenset({"completed", "failed"})


def luma_sdk(server_url: str, key: str, **kw: Any) -> AsyncLumaAI:
    """`AsyncLumaAI` with gengate's base URL and a client key; no SDK retries, so that every call the
    test makes is exactly one request."""
    return AsyncLumaAI(base_url=server_url.rstrip("/") + LUMA_PATH, auth_token=key, max_retries=0,
                       timeout=kw.pop("timeout", 30.0), **kw)


async def wait_generation(client: AsyncLumaAI, generation_id: str, timeout: float = 40,  # noqa: ASYNC109
                          states: frozenset[str] = TERMINAL) -> Generation:
    deadline = time.monotonic() + timeout
    last: Generation | None = None
    while time.monotonic() < deadline:
        last = await client.generations.get(generation_id)
        if last.state in states:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"generation {generation_id} not in {sorted(states)} within {timeout} s: {last}")


async def download(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
                   ) -> tuple[int, bytes, Any]:
    async with http.get(url, headers=headers or {}, allow_redirects=False) as resp:
        assert "Authorization" not in resp.request_info.headers  # the signature is the credential
        return resp.status, await resp.read(), resp.headers


def probe_mp4(data: bytes) -> tuple[int, int, float]:
    """(width, height, duration s) of an MP4, decoded with PyAV."""
    assert data[4:8] == b"ftyp", data[:16]
    assert b"moov" in data
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames >= 1
        duration = container.duration / 1_000_000 if container.duration else float(stream.duration * stream.time_base)
        return stream.codec_context.width, stream.codec_context.height, duration


def probe_image(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return str(img.format), img.size


def assert_luma_error(exc: APIStatusError, status: int, contains: str | None = None) -> dict[str, Any]:
    """An SDK error whose body is Luma's `{"detail": "<text>"}` with the given HTTP status."""
    assert exc.status_code == status, (exc.status_code, exc.response.text)
    body = exc.response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and body["detail"], body
    assert "Traceback" not in exc.response.text
    if contains is not None:
        assert contains.lower() in body["detail"].lower(), body
    return body
