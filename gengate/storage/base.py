"""The storage contract: what every backend (local files now, S3 later) offers the rest of gengate.

Objects are write-once blobs under relative keys such as ``vidu/2025/11/25/<random>.mp4``; each keeps
its size, sha256 and content type so that serving never has to guess or re-read the bytes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

# Reads and streamed writes move this much at a time, so memory stays bounded whatever the object size.
CHUNK_SIZE = 64 * 1024

MAX_KEY_LENGTH = 1024
# One path segment: no leading dot (so no ".", "..", or hidden files) and only characters that need no
# escaping in a URL path or on any filesystem; this also keeps keys valid S3 keys.
_SEGMENT = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,254}")
# A media type with optional parameters, printable ASCII only: it is echoed in a response header.
_CONTENT_TYPE = re.compile(r"[!-~]+/[!-~]+(?:;[ -~]*)?")

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class StorageError(Exception):
    """Base class of the errors a storage backend raises on purpose."""


class InvalidKey(StorageError, ValueError):
    """The key is not a safe relative path (``..``, absolute, backslash, NUL, odd characters)."""


class ObjectNotFound(StorageError, LookupError):
    """No object is stored under the key."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # lowercase hex
    content_type: str


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative object key, else raise :class:`InvalidKey`."""
    if not key:
        raise InvalidKey("storage key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"storage key is longer than {MAX_KEY_LENGTH} characters")
    # The explicit checks give a clear message; the segment pattern below would reject them anyway.
    if "\x00" in key:
        raise InvalidKey("storage key contains a NUL byte")
    if "\\" in key:
        raise InvalidKey("storage key contains a backslash")
    if key.startswith("/"):
        raise InvalidKey("storage key must be relative, not absolute")
    for segment in key.split("/"):
        if segment == "..":
            raise InvalidKey("storage key must not contain '..'")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKey(
                f"storage key segment {segment!r} must be 1-255 of [A-Za-z0-9_.-] and not start with '.'"
            )
    return key


def validate_content_type(content_type: str) -> str:
    """Return a safe content type (printable ASCII ``type/subtype``), defaulting to octet-stream."""
    content_type = content_type.strip()
    if not content_type:
        return DEFAULT_CONTENT_TYPE
    if not _CONTENT_TYPE.fullmatch(content_type):
        raise ValueError(f"invalid content type {content_type!r}")
    return content_type


class Storage(Protocol):
    """A blob store. Every method validates the key first and raises :class:`InvalidKey` if unsafe."""

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], content_type: str) -> StoredObject:
        """Store the chunks under ``key``, atomically: readers see the whole object or none.

        Memory stays bounded by a small buffer whatever the size. If ``chunks`` raises, nothing is
        stored and the exception propagates unchanged (callers use this to enforce size limits).
        """
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    async def stat(self, key: str) -> StoredObject | None:
        """The object's metadata, or None when no object is stored under ``key``."""
        ...

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` (half-open, like slicing; ``end=None`` means to the end).

        Use as ``async for chunk in storage.open_range(...)``. Raises :class:`ObjectNotFound` on the
        first iteration when the object does not exist.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""
        ...
