"""LocalStorage: atomic streamed writes, metadata, ranges, deletes and key safety."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gengate.storage import (
    CHUNK_SIZE,
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    StoredObject,
    open_storage,
    validate_key,
)

DATA = bytes(range(256)) * 1000  # 256,000 bytes, every offset distinguishable


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read(storage: LocalStorage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.open_range(key, start, end)])


def _leftovers(root: Path) -> list[Path]:
    tmp = root / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


async def test_put_bytes_then_stat_and_read(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    stored = await storage.put_bytes("vidu/2025/11/25/abc.mp4", DATA, "video/mp4")
    expected = StoredObject(
        "vidu/2025/11/25/abc.mp4", len(DATA), hashlib.sha256(DATA).hexdigest(), "video/mp4"
    )
    assert stored == expected
    assert await storage.stat("vidu/2025/11/25/abc.mp4") == expected
    assert await _read(storage, "vidu/2025/11/25/abc.mp4") == DATA
    assert _leftovers(tmp_path) == []


async def test_put_stream_hashes_while_streaming(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    parts = [DATA[i : i + 7000] for i in range(0, len(DATA), 7000)]
    stored = await storage.put_stream("a/b.png", _chunks(*parts), "image/png")
    assert stored.size == len(DATA)
    assert stored.sha256 == hashlib.sha256(DATA).hexdigest()
    assert await storage.stat("a/b.png") == stored
    assert await _read(storage, "a/b.png") == DATA


async def test_content_type_is_kept_not_guessed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_bytes("x/clip.bin", b"abc", "audio/mpeg")
    stored = await storage.stat("x/clip.bin")
    assert stored is not None and stored.content_type == "audio/mpeg"
    await storage.put_bytes("x/empty-type", b"abc", "")
    stored = await storage.stat("x/empty-type")
    assert stored is not None and stored.content_type == "application/octet-stream"


async def test_header_injection_in_content_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await LocalStorage(tmp_path).put_bytes("a.txt", b"x", "text/plain\r\nSet-Cookie: a=b")


async def test_ranges_are_half_open(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_bytes("r.bin", DATA, "application/octet-stream")
    assert await _read(storage, "r.bin", 0, 10) == DATA[:10]
    assert await _read(storage, "r.bin", 100_000, None) == DATA[100_000:]
    assert await _read(storage, "r.bin", 70_000, 200_001) == DATA[70_000:200_001]
    assert await _read(storage, "r.bin", 5, 5) == b""
    assert await _read(storage, "r.bin", len(DATA) + 5) == b""
    assert await _read(storage, "r.bin", 10, len(DATA) * 2) == DATA[10:]
    with pytest.raises(ValueError):
        await _read(storage, "r.bin", 10, 5)


async def test_reads_stream_in_bounded_chunks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_bytes("r.bin", DATA, "application/octet-stream")
    sizes = [len(chunk) async for chunk in storage.open_range("r.bin")]
    assert len(sizes) > 1 and max(sizes) <= CHUNK_SIZE and sum(sizes) == len(DATA)


async def test_missing_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert await storage.stat("nope/x.mp4") is None
    with pytest.raises(ObjectNotFound):
        await _read(storage, "nope/x.mp4")


async def test_delete_is_idempotent(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_bytes("d/x.jpg", b"jpeg", "image/jpeg")
    await storage.delete("d/x.jpg")
    assert await storage.stat("d/x.jpg") is None
    with pytest.raises(ObjectNotFound):
        await _read(storage, "d/x.jpg")
    await storage.delete("d/x.jpg")


async def test_overwrite_replaces_bytes_and_metadata(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_bytes("o.bin", b"first", "text/plain")
    second = await storage.put_bytes("o.bin", b"second!", "image/png")
    assert await storage.stat("o.bin") == second
    assert await _read(storage, "o.bin") == b"second!"


async def test_failed_stream_stores_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (2 * 1024 * 1024)  # enough to have reached the temp file
        raise RuntimeError("upstream hung up")

    with pytest.raises(RuntimeError, match="hung up"):
        await storage.put_stream("f/broken.mp4", broken(), "video/mp4")
    assert await storage.stat("f/broken.mp4") is None
    assert not (tmp_path / "objects" / "f" / "broken.mp4").exists()
    assert _leftovers(tmp_path) == []


async def test_large_stream_uses_bounded_memory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    block = b"\xab" * CHUNK_SIZE
    count = 50 * 1024 * 1024 // CHUNK_SIZE

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield block  # the same object each time, so only the storage's own buffers are measured

    tracemalloc.start()
    try:
        stored = await storage.put_stream("big/video.mp4", fifty_megabytes(), "video/mp4")
        read = 0
        async for chunk in storage.open_range("big/video.mp4"):
            read += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored.size == read == count * CHUNK_SIZE
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "..",
        "a/../b",
        "../x",
        "a/..",
        "a\\b",
        "a\x00b",
        "a//b",
        "a/",
        "a/./b",
        ".hidden",
        "a/ b",
        "é.mp4",
        "a" * 1025,
    ],
)
async def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(InvalidKey):
        validate_key(key)
    with pytest.raises(InvalidKey):
        await storage.put_bytes(key, b"x", "text/plain")
    with pytest.raises(InvalidKey):
        await storage.stat(key)
    with pytest.raises(InvalidKey):
        await storage.delete(key)
    with pytest.raises(InvalidKey):
        await _read(storage, key)


@pytest.mark.parametrize("key", ["vidu/2025/11/25/Ab_c-9.mp4", "x", "a.b.c", "_x/-y/z.tar.gz"])
def test_safe_keys_are_accepted(key: str) -> None:
    assert validate_key(key) == key


def test_invalid_key_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_key("../x")


def test_open_storage_defaults_to_data_dir(tmp_path: Path) -> None:
    storage = open_storage(None, tmp_path)
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "files"
    storage = open_storage("file://", tmp_path)
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "files"


def test_open_storage_file_url(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/media", Path("/unused"))
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "media"
    with pytest.raises(ValueError):
        open_storage("file://somehost/x", tmp_path)


def test_open_storage_s3_and_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gengate.storage.s3 import S3Storage

    monkeypatch.setenv("GENGATE_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    storage = open_storage("s3://bucket/some/prefix/", tmp_path)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.endpoint_url) == ("bucket", "some/prefix", "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="bucket"):
        open_storage("s3:///prefix", tmp_path)
    with pytest.raises(ValueError, match="unsupported"):
        open_storage("ftp://x/y", tmp_path)
