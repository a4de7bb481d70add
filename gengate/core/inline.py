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
    key = f"{_KEYS}{hashlib.sha256(data).hexdigest()}"
    if await storage.stat(key) is None:
        await storage.put_bytes(key, data, "text/plain")
    return INLINE_PREFIX + key


_KEYS = "inline/"  # where stashed text lives in storage; a reference never points anywhere else


def mentions_stash(value: Any) -> bool:
    """Whether a client's request holds a string in the form of a stash reference (refused: only
    gengate writes those, and reading one back must never reach other storage keys). Iterative: a
    body may be nested 512 levels deep."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item.startswith(INLINE_PREFIX):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def unstash(storage: Storage, value: Any) -> Any:
    """`value` with every stashed reference read back from storage (a new structure). Raises
    `LookupError` for a reference outside the stash or one whose text is gone."""
    if isinstance(value, str):
        if not value.startswith(INLINE_PREFIX):
            return value
        key = value[len(INLINE_PREFIX):]
        if not key.startswith(_KEYS) or "/" in key[len(_KEYS):] or await storage.stat(key) is None:
            raise LookupError("no such stashed media")
        chunks = [chunk async for chunk in storage.open_range(key)]
        return b"".join(chunks).decode()
    if isinstance(value, dict):
        return {k: await unstash(storage, v) for k, v in value.items()}
    if isinstance(value, list):
        return [await unstash(storage, v) for v in value]
    return value
