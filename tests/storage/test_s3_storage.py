"""`S3Storage` against a real S3-compatible server (moto, as its own process): the Storage contract —
streamed multipart writes with bounded parts, whole-or-nothing objects, stat, ranged streamed reads,
delete — and keys under the configured prefix."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from harness.s3 import S3_ENV, MotoServer, moto_server

from gengate.storage.base import InvalidKey, ObjectNotFound
from gengate.storage.s3 import S3Storage

pytestmark = pytest.mark.timeout(120)
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
async def storage(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[S3Storage]:
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    s = S3Storage(moto.new_bucket(), "pre/fix", endpoint_url=moto.url, part_size=5 * MiB)
    yield s
    await s.close()


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def read_all(storage: S3Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in storage.open_range(key, start, end)])


async def test_small_and_multipart_objects(storage: S3Storage) -> None:
    small = os.urandom(1000)
    big = os.urandom(12 * MiB + 123)  # three parts of 5 MiB, the last short
    for key, data in (("a/small.bin", small), ("a/big.mp4", big)):
        stored = await storage.put_stream(key, chunks(data), "video/mp4")
        assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert await storage.stat(key) == stored
        assert await read_all(storage, key) == data
    assert await read_all(storage, "a/big.mp4", 5 * MiB - 10, 5 * MiB + 10) == big[5 * MiB - 10:5 * MiB + 10]
    assert await read_all(storage, "a/big.mp4", len(big) - 5) == big[-5:]
    assert await read_all(storage, "a/small.bin", 10, 10) == b""


async def test_objects_live_under_the_prefix(storage: S3Storage) -> None:
    await storage.put_bytes("k/x.txt", b"hello", "text/plain")
    s3 = await storage._s3()
    listing = await s3.list_objects_v2(Bucket=storage.bucket)
    assert [o["Key"] for o in listing["Contents"]] == ["pre/fix/k/x.txt"]


async def test_failed_stream_stores_nothing(storage: S3Storage) -> None:
    class Stop(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)  # one part already uploaded
        raise Stop

    with pytest.raises(Stop):
        await storage.put_stream("x/broken.bin", broken(), "application/octet-stream")
    assert await storage.stat("x/broken.bin") is None
    s3 = await storage._s3()
    uploads = await s3.list_multipart_uploads(Bucket=storage.bucket)
    assert not uploads.get("Uploads")  # aborted


async def test_missing_objects_and_delete(storage: S3Storage) -> None:
    assert await storage.stat("nope/x") is None
    with pytest.raises(ObjectNotFound):
        await read_all(storage, "nope/x")
    await storage.put_bytes("d/x.bin", b"123", "application/octet-stream")
    await storage.delete("d/x.bin")
    await storage.delete("d/x.bin")  # missing is not an error
    assert await storage.stat("d/x.bin") is None
    for bad in ("../x", "/abs", "a/../b"):
        with pytest.raises(InvalidKey):
            await storage.stat(bad)
