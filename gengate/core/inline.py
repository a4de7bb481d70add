"""Large inline media (a base64 image of several MB in a create body) kept out of the stored request:
the text goes to storage, content-addressed, and a short reference stands in for it in the task's
upstream request; the create that goes upstream gets the text back."""

from __future__ import annotations

import hashlib
from typing import Any

from gengate.core.adaptor import INLINE_PREFIX
from gengate.storage.base import Storage


async def stash(storage: Storage, value: str) -> str:
    data = value.encode()
    key = f"inline/{hashlib.sha256(data).hexdigest()}"
    if await storage.stat(key) is None:
        await storage.put_bytes(key, data, "text/plain")
    return INLINE_PREFIX + key


async def unstash(storage: Storage, value: Any) -> Any:
    """`value` with every stashed reference read back from storage (a new structure)."""
    if isinstance(value, str):
        if not value.startswith(INLINE_PREFIX):
            return value
        chunks = [chunk async for chunk in storage.open_range(value[len(INLINE_PREFIX):])]
        return b"".join(chunks).decode()
    if isinstance(value, dict):
        return {k: await unstash(storage, v) for k, v in value.items()}
    if isinstance(value, list):
        return [await unstash(storage, v) for v in value]
    return value
