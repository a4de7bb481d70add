"""Where gengate keeps re-hosted media, and the signed URLs that serve it.

``open_storage`` picks the backend from ``GENGATE_STORAGE_URL``; every backend implements
:class:`Storage`, so an S3 backend can be added as ``storage/s3.py`` without touching its callers.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gengate.storage.base import (
    CHUNK_SIZE,
    InvalidKey,
    ObjectNotFound,
    Storage,
    StorageError,
    StoredObject,
    validate_key,
)
from gengate.storage.local import LocalStorage
from gengate.storage.rehost import RehostError, rehost
from gengate.storage.routes import file_routes
from gengate.storage.signing import UrlSigner

__all__ = [
    "CHUNK_SIZE",
    "InvalidKey",
    "LocalStorage",
    "ObjectNotFound",
    "RehostError",
    "Storage",
    "StorageError",
    "StoredObject",
    "UrlSigner",
    "file_routes",
    "open_storage",
    "rehost",
    "validate_key",
]


def open_storage(url: str | None, data_dir: Path) -> Storage:
    """The storage named by ``url``: None (or ``file://`` with no path) is ``<data_dir>/files``.

    ``file:///abs/path`` stores under that directory; ``s3://bucket/prefix`` in a bucket (endpoint from
    ``GENGATE_S3_ENDPOINT_URL``, credentials and region from the standard AWS variables).
    """
    if not url:
        return LocalStorage(Path(data_dir) / "files")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file storage URL must be file:///absolute/path, got {url!r}")
        path = unquote(parts.path)
        return LocalStorage(Path(path) if path else Path(data_dir) / "files")
    if scheme == "s3":
        from gengate.storage.s3 import S3Storage  # aiobotocore is imported only when S3 is used

        endpoint = os.environ.get("GENGATE_S3_ENDPOINT_URL") or None
        return S3Storage(parts.netloc, unquote(parts.path), endpoint_url=endpoint)
    raise ValueError(f"unsupported storage URL {url!r}: expected file:///path or s3://bucket/prefix")
