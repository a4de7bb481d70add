"""rehost: copying upstream results into storage from a real HTTP server, and its typed failures."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from storage_server import serve_app  # noqa: F401  (a fixture)

from gengate.storage import CHUNK_SIZE, LocalStorage, RehostError, rehost
from gengate.storage.rehost import choose_extension

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 100
MEGABYTE = 1024 * 1024
HUGE_SIZE = 50 * MEGABYTE


async def _stream(size: int) -> AsyncIterator[bytes]:
    block = b"\x7f" * CHUNK_SIZE
    for _ in range(size // CHUNK_SIZE):
        yield block


async def media(request: Request) -> Response:
    content_type = request.query_params.get("type")
    headers = {"Content-Type": content_type} if content_type else {}
    return Response(VIDEO, headers=headers)


async def status(request: Request) -> Response:
    return Response(b"nope", status_code=int(request.path_params["code"]))


async def big(request: Request) -> Response:
    # Content-Length announces the size up front.
    return Response(b"\x01" * (2 * MEGABYTE), media_type="video/mp4")


async def big_chunked(request: Request) -> StreamingResponse:
    # No Content-Length: the limit must be enforced while streaming.
    return StreamingResponse(_stream(2 * MEGABYTE), media_type="video/mp4")


async def huge(request: Request) -> StreamingResponse:
    return StreamingResponse(_stream(HUGE_SIZE), media_type="video/mp4")


async def stalled(request: Request) -> StreamingResponse:
    async def slow() -> AsyncIterator[bytes]:
        yield b"first bytes"
        await asyncio.sleep(1)
        yield b"too late"

    return StreamingResponse(slow(), media_type="video/mp4")


APP = Starlette(
    routes=[
        Route("/media/{name:path}", media),
        Route("/status/{code:int}", status),
        Route("/big", big),
        Route("/big-chunked", big_chunked),
        Route("/huge", huge),
        Route("/stalled", stalled),
    ]
)


@pytest.fixture(scope="module")
def upstream(serve_app: Callable[[ASGIApp], str]) -> str:  # noqa: F811
    return serve_app(APP)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("path", "content_type", "ext", "stored_type"),
    [
        ("/media/result", "video/mp4", "mp4", "video/mp4"),
        ("/media/result", "image/jpeg", "jpg", "image/jpeg"),
        ("/media/result", "image/png; charset=binary", "png", "image/png"),
        ("/media/result", "audio/mpeg", "mp3", "audio/mpeg"),
        ("/media/out.webm", "application/octet-stream", "webm", "video/webm"),
        ("/media/a/b/cover.PNG?sig=1", "binary/octet-stream", "png", "image/png"),
        ("/media/out.xyz", "application/x-custom", "xyz", "application/x-custom"),
        ("/media/noext", None, "bin", "application/octet-stream"),
    ],
)
async def test_rehost_stores_bytes_under_prefix(
    upstream: str,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    path: str,
    content_type: str | None,
    ext: str,
    stored_type: str,
) -> None:
    storage = LocalStorage(tmp_path)
    url = upstream + path
    if content_type:
        url += ("&" if "?" in url else "?") + "type=" + content_type.replace(" ", "%20").replace(";", "%3B")
    stored = await rehost(http, url, storage, "vidu/2025/11/25")
    assert stored.key.startswith("vidu/2025/11/25/") and stored.key.endswith("." + ext)
    assert stored.size == len(VIDEO)
    assert stored.sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert stored.content_type == stored_type
    assert await storage.stat(stored.key) == stored
    assert b"".join([c async for c in storage.open_range(stored.key)]) == VIDEO


async def test_keys_are_random(upstream: str, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    first = await rehost(http, upstream + "/media/x?type=video/mp4", storage, "p/")
    second = await rehost(http, upstream + "/media/x?type=video/mp4", storage, "p/")
    assert first.key != second.key
    assert first.key.startswith("p/") and "//" not in first.key


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(404, False), (403, False), (400, False), (408, True), (429, True), (500, True), (503, True)],
)
async def test_http_errors(
    upstream: str, http: aiohttp.ClientSession, tmp_path: Path, code: int, retryable: bool
) -> None:
    with pytest.raises(RehostError) as caught:
        await rehost(http, f"{upstream}/status/{code}?token=secret", LocalStorage(tmp_path), "p")
    assert caught.value.retryable is retryable
    assert caught.value.status == code
    assert "token" not in str(caught.value)  # upstream query strings often carry credentials
    assert _stored_files(tmp_path) == []


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_too_large(upstream: str, http: aiohttp.ClientSession, tmp_path: Path, path: str) -> None:
    with pytest.raises(RehostError, match="larger than") as caught:
        await rehost(http, upstream + path, LocalStorage(tmp_path), "p", max_bytes=MEGABYTE)
    assert caught.value.retryable is False
    assert _stored_files(tmp_path) == []


async def test_connection_refused_is_retryable(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(RehostError) as caught:
            await rehost(http, f"http://127.0.0.1:{port}/x.mp4", LocalStorage(tmp_path), "p")
    assert caught.value.retryable is True and caught.value.status is None


async def test_read_timeout_is_retryable(upstream: str, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=0.2)
    with pytest.raises(RehostError) as caught:
        await rehost(http, upstream + "/stalled", LocalStorage(tmp_path), "p", timeout=timeout)
    assert caught.value.retryable is True
    assert _stored_files(tmp_path) == []


async def test_large_download_streams_with_bounded_memory(
    upstream: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path)
    tracemalloc.start()
    try:
        stored = await rehost(http, upstream + "/huge", storage, "big")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored.size == HUGE_SIZE
    assert stored.sha256 == hashlib.sha256(b"\x7f" * HUGE_SIZE).hexdigest()
    # The upstream server runs in this process too, so this bounds both sides.
    assert peak < 8 * MEGABYTE, f"peak {peak} bytes"


@pytest.mark.parametrize("url", ["ftp://example.com/x.mp4", "http://[::1/x"])
async def test_malformed_url_is_not_retryable(http: aiohttp.ClientSession, tmp_path: Path, url: str) -> None:
    with pytest.raises(RehostError) as caught:
        await rehost(http, url, LocalStorage(tmp_path), "p")
    assert caught.value.retryable is False


async def test_unsafe_prefix_is_refused(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await rehost(http, "http://127.0.0.1:9/x", LocalStorage(tmp_path), "../etc")


@pytest.mark.parametrize(
    ("content_type", "url", "ext"),
    [
        ("video/mp4", "https://cdn/x.bin", "mp4"),
        ("", "https://cdn/a/clip.MOV?token=1", "mov"),
        ("application/octet-stream", "https://cdn/a/img.jpeg", "jpg"),
        ("", "https://cdn/a/noext", "bin"),
        ("", "https://cdn/a/weird.ex-t", "bin"),
        ("", "https://cdn/a/long.abcdefghij", "bin"),
    ],
)
def test_choose_extension(content_type: str, url: str, ext: str) -> None:
    assert choose_extension(content_type, url) == ext
