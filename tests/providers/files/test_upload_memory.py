"""A large upload streams to storage: sending 160 MB through `POST /v1/files` grows the server's peak
resident memory by far less than the file, and the stored bytes are exactly what was sent."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.timeout(240)
MiB = 1024 * 1024
SIZE = 160 * MiB


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


async def test_large_upload_is_streamed(http, make_server: Any) -> None:
    server = make_server(sandbox=False, env={"GENGATE_MAX_FILE_BYTES": str(200 * MiB)})
    key = server.make_key()
    block = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(SIZE // len(block)):
            digest.update(block)
            yield block

    before = peak_rss(server.proc.pid)
    form = aiohttp.FormData()
    form.add_field("purpose", "assistants")
    form.add_field("file", body(), filename="big.bin", content_type="application/octet-stream")
    async with http.post(server.url + "/v1/files", data=form, headers={"Authorization": f"Bearer {key}"}) as resp:
        made = await resp.json()
    assert resp.status == 200, made
    assert made["bytes"] == SIZE
    growth = peak_rss(server.proc.pid) - before
    assert growth < 48 * MiB, f"peak memory grew by {growth // MiB} MiB for a {SIZE // MiB} MiB upload"

    received = hashlib.sha256()
    async with http.get(f"{server.url}/v1/files/{made['id']}/content",
                        headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200 and resp.headers["Content-Length"] == str(SIZE)
        async for chunk in resp.content.iter_chunked(MiB):
            received.update(chunk)
    assert received.hexdigest() == digest.hexdigest()
