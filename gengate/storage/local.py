"""Storage on the local filesystem, the embedded default (``<data-dir>/files``).

Layout under the root: ``objects/<key>`` holds the bytes, ``meta/<key>.json`` the size, sha256 and
content type, and ``tmp/`` the partial writes. Keeping metadata in its own tree (rather than a
``<key>.meta`` sidecar) means no object key can ever collide with a metadata file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from gengate.storage.base import (
    CHUNK_SIZE,
    ObjectNotFound,
    StoredObject,
    validate_content_type,
    validate_key,
)

# Incoming chunks are gathered up to this size before one write in a worker thread: a thread hop per
# 64 KiB network chunk would cost more than the write itself.
_WRITE_BUFFER = 1024 * 1024


class _TempWriter:
    """A file being written under ``tmp/``, hashed as it goes; committed by an atomic rename."""

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.path = tmp_dir / f"{secrets.token_hex(16)}.part"
        self._file: BinaryIO = self.path.open("xb")
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray) -> None:
        self._sha256.update(data)  # hashlib releases the GIL on large buffers, so this runs in parallel
        self._file.write(data)
        self.size += len(data)

    def commit(self, object_path: Path, meta_path: Path, key: str, content_type: str) -> StoredObject:
        # fsync before rename: otherwise a crash can leave a renamed but empty file on some filesystems.
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        stored = StoredObject(
            key=key, size=self.size, sha256=self._sha256.hexdigest(), content_type=content_type
        )
        object_path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        # The metadata file is the commit marker (stat reads only it). On overwrite, dropping the old
        # one first means a concurrent reader sees "missing" for a moment, never old metadata on new bytes.
        meta_path.unlink(missing_ok=True)
        os.replace(self.path, object_path)
        meta_tmp = self.path.with_suffix(".meta")
        meta_tmp.write_text(
            json.dumps({"size": stored.size, "sha256": stored.sha256, "content_type": content_type})
        )
        os.replace(meta_tmp, meta_path)
        return stored

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _open_at(path: Path, offset: int) -> BinaryIO:
    f = path.open("rb")
    f.seek(offset)
    return f


class LocalStorage:
    """Objects as files under ``root``; blocking file I/O runs in worker threads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"

    def _object_path(self, key: str) -> Path:
        return self._objects / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self._meta / f"{validate_key(key)}.json"

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], content_type: str) -> StoredObject:
        object_path, meta_path = self._object_path(key), self._meta_path(key)
        content_type = validate_content_type(content_type)
        writer = await asyncio.to_thread(_TempWriter, self._tmp)
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    full, buffer = buffer, bytearray()
                    await asyncio.to_thread(writer.write, full)
            if buffer:
                await asyncio.to_thread(writer.write, buffer)
            return await asyncio.to_thread(writer.commit, object_path, meta_path, key, content_type)
        except BaseException:
            # Synchronous on purpose: it must run even when the task is being cancelled, and it is cheap.
            writer.discard()
            raise

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        object_path, meta_path = self._object_path(key), self._meta_path(key)
        content_type = validate_content_type(content_type)

        def write_all() -> StoredObject:
            writer = _TempWriter(self._tmp)
            try:
                writer.write(data)
                return writer.commit(object_path, meta_path, key, content_type)
            except BaseException:
                writer.discard()
                raise

        return await asyncio.to_thread(write_all)

    async def stat(self, key: str) -> StoredObject | None:
        meta_path = self._meta_path(key)
        try:
            text = await asyncio.to_thread(meta_path.read_text)
        except (FileNotFoundError, NotADirectoryError):
            return None
        meta = json.loads(text)
        return StoredObject(key, int(meta["size"]), str(meta["sha256"]), str(meta["content_type"]))

    async def open_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        object_path = self._object_path(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range [{start}, {end})")
        try:
            f = await asyncio.to_thread(_open_at, object_path, start)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        try:
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(f.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        object_path, meta_path = self._object_path(key), self._meta_path(key)

        def remove() -> None:
            # Metadata first: once it is gone the object is invisible, even if the next unlink fails.
            meta_path.unlink(missing_ok=True)
            object_path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)
