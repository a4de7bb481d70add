"""/files/{key} over a real HTTP server: signatures, metadata headers, ranges, streaming."""

from __future__ import annotations

import hashlib
import json
import re
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import yarl
from multidict import CIMultiDictProxy
from starlette.applications import Starlette
from starlette.types import ASGIApp
from storage_server import serve_app  # noqa: F401  (a fixture)

from gengate.storage import CHUNK_SIZE, LocalStorage, UrlSigner, file_routes
from gengate.storage.routes import RangeNotSatisfiable, parse_range

SIGNING_KEY = b"s" * 32
DATA = bytes(range(256)) * 400  # 102,400 bytes
KEY = "vidu/2025/11/25/clip.mp4"
BIG_KEY = "big/fifty.mp4"
BIG_SIZE = 50 * 1024 * 1024


@dataclass
class FileServer:
    base_url: str
    signer: UrlSigner
    storage: LocalStorage


@pytest.fixture(scope="module")
async def server(serve_app: Callable[[ASGIApp], str], tmp_path_factory: pytest.TempPathFactory) -> FileServer:  # noqa: F811
    app = Starlette(routes=file_routes(lambda: app.state.storage, lambda: app.state.signer))
    base_url = serve_app(app)
    storage = LocalStorage(tmp_path_factory.mktemp("files"))
    app.state.storage = storage
    app.state.signer = UrlSigner(SIGNING_KEY, base_url)
    await storage.put_bytes(KEY, DATA, "video/mp4")
    await storage.put_bytes("empty.txt", b"", "text/plain")

    async def big() -> AsyncIterator[bytes]:
        block = b"\x42" * CHUNK_SIZE
        for _ in range(BIG_SIZE // CHUNK_SIZE):
            yield block

    await storage.put_stream(BIG_KEY, big(), "video/mp4")
    return FileServer(base_url, app.state.signer, storage)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(
    http: aiohttp.ClientSession, url: str, method: str = "GET", **headers: str
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with http.request(method, url, headers=headers, allow_redirects=False) as response:
        return response.status, response.headers, await response.read()


async def test_full_get(server: FileServer, http: aiohttp.ClientSession) -> None:
    url = server.signer.url_for(KEY)
    assert url.startswith(server.base_url + "/files/")
    status, headers, body = await _get(http, url)
    assert status == 200
    assert body == DATA
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Content-Length"] == str(len(DATA))
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert re.fullmatch(r"private, max-age=\d+", headers["Cache-Control"])
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Range" not in headers


async def test_head(server: FileServer, http: aiohttp.ClientSession) -> None:
    status, headers, body = await _get(http, server.signer.url_for(KEY), "HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(DATA))
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=100-100", 100, 101),
        ("bytes=50000-", 50000, len(DATA)),
        ("bytes=-500", len(DATA) - 500, len(DATA)),
        ("bytes=-999999", 0, len(DATA)),
        ("bytes=102000-999999", 102000, len(DATA)),
    ],
)
async def test_range(
    server: FileServer, http: aiohttp.ClientSession, range_header: str, start: int, end: int
) -> None:
    status, headers, body = await _get(http, server.signer.url_for(KEY), Range=range_header)
    assert status == 206
    assert body == DATA[start:end]
    assert headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert headers["Content-Length"] == str(end - start)
    assert headers["Content-Type"] == "video/mp4"


async def test_head_with_range(server: FileServer, http: aiohttp.ClientSession) -> None:
    status, headers, body = await _get(http, server.signer.url_for(KEY), "HEAD", Range="bytes=10-19")
    assert (status, body) == (206, b"")
    assert headers["Content-Range"] == f"bytes 10-19/{len(DATA)}"
    assert headers["Content-Length"] == "10"


@pytest.mark.parametrize("range_header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "garbage"])
async def test_ranges_we_do_not_serve_get_the_whole_body(
    server: FileServer, http: aiohttp.ClientSession, range_header: str
) -> None:
    status, _, body = await _get(http, server.signer.url_for(KEY), Range=range_header)
    assert (status, body) == (200, DATA)


@pytest.mark.parametrize("range_header", [f"bytes={len(DATA)}-", "bytes=999999-1000000", "bytes=-0"])
async def test_unsatisfiable_range(
    server: FileServer, http: aiohttp.ClientSession, range_header: str
) -> None:
    status, headers, body = await _get(http, server.signer.url_for(KEY), Range=range_header)
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert b'"range_not_satisfiable"' in body


async def test_empty_file(server: FileServer, http: aiohttp.ClientSession) -> None:
    url = server.signer.url_for("empty.txt")
    status, headers, body = await _get(http, url)
    assert (status, body, headers["Content-Length"]) == (200, b"", "0")
    status, headers, _ = await _get(http, url, Range="bytes=0-")
    assert (status, headers["Content-Range"]) == (416, "bytes */0")


async def test_conditional_requests(server: FileServer, http: aiohttp.ClientSession) -> None:
    url = server.signer.url_for(KEY)
    etag = f'"{hashlib.sha256(DATA).hexdigest()}"'
    status, headers, body = await _get(http, url, **{"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    status, _, body = await _get(http, url, Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert (status, body) == (200, DATA)
    status, _, body = await _get(http, url, Range="bytes=0-9", **{"If-Range": etag})
    assert (status, body) == (206, DATA[:10])


def _error_code(body: bytes) -> str:
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    return str(error["code"])


async def test_missing_signature(server: FileServer, http: aiohttp.ClientSession) -> None:
    status, _, body = await _get(http, f"{server.base_url}/files/{KEY}")
    assert (status, _error_code(body)) == (403, "invalid_signature")


async def test_tampered_signature(server: FileServer, http: aiohttp.ClientSession) -> None:
    url = server.signer.url_for(KEY)
    status, _, body = await _get(http, url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
    assert (status, _error_code(body)) == (403, "invalid_signature")
    # A valid signature for one key does not open another.
    other = url.replace("clip.mp4", "clip2.mp4")
    status, _, body = await _get(http, other)
    assert (status, _error_code(body)) == (403, "invalid_signature")


async def test_expired_signature(server: FileServer, http: aiohttp.ClientSession) -> None:
    past = UrlSigner(SIGNING_KEY, server.base_url, clock=lambda: time.time() - 3600)
    status, _, body = await _get(http, past.url_for(KEY, ttl_seconds=60))
    assert (status, _error_code(body)) == (403, "invalid_signature")


async def test_missing_file(server: FileServer, http: aiohttp.ClientSession) -> None:
    for method in ("GET", "HEAD"):
        status, _, body = await _get(http, server.signer.url_for("vidu/nope.mp4"), method)
        assert status == 404
        if method == "GET":
            assert _error_code(body) == "file_not_found"


@pytest.mark.parametrize("key", [f"x/../{KEY}", "a%2F..%2Fb"])
async def test_signed_but_unsafe_key_is_not_found(
    server: FileServer, http: aiohttp.ClientSession, key: str
) -> None:
    # encoded=True keeps the client from normalising the ".." away before it reaches the server.
    url = yarl.URL(server.signer.url_for(key), encoded=True)
    async with http.get(url) as response:
        assert (response.status, _error_code(await response.read())) == (404, "file_not_found")


async def test_other_methods(server: FileServer, http: aiohttp.ClientSession) -> None:
    status, headers, body = await _get(http, server.signer.url_for(KEY), "DELETE")
    assert (status, headers["Allow"], _error_code(body)) == (405, "GET, HEAD", "method_not_allowed")
    assert await server.storage.stat(KEY) is not None


async def test_large_file_streams_with_bounded_memory(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    url = server.signer.url_for(BIG_KEY)
    received = 0
    tracemalloc.start()
    try:
        async with http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(BIG_SIZE)
            async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                received += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert received == BIG_SIZE
    # Client and server share this process, so this bounds both sides.
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"


async def test_large_file_range_from_the_middle(server: FileServer, http: aiohttp.ClientSession) -> None:
    start = BIG_SIZE // 2 + 3
    status, headers, body = await _get(
        http, server.signer.url_for(BIG_KEY), Range=f"bytes={start}-{start + 99}"
    )
    assert (status, body) == (206, b"\x42" * 100)
    assert headers["Content-Range"] == f"bytes {start}-{start + 99}/{BIG_SIZE}"


async def test_object_deleted_after_stat_is_not_found(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    # The metadata is there but the bytes are gone: the route answers 404 instead of a broken 200.
    await server.storage.put_bytes("gone.bin", b"abc", "application/octet-stream")
    (server.storage.root / "objects" / "gone.bin").unlink()
    status, _, body = await _get(http, server.signer.url_for("gone.bin"))
    assert (status, _error_code(body)) == (404, "file_not_found")


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=0-", 10, (0, 10)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=8-20", 10, (8, 10)),
        ("Bytes = 2 - 4", 10, (2, 5)),
        ("bytes=4-2", 10, None),
        ("bytes=-", 10, None),
        ("bytes=0-1, 4-5", 10, None),
        ("bytes=" + "9" * 40 + "-", 10, None),
    ],
)
def test_parse_range(header: str, size: int, span: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == span


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=-5", 0), ("bytes=0-", 0)]
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)
