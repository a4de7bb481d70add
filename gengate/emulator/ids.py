"""Ids in the providers' forms: decimal digit strings (Vidu, Kling), UUID v4 (Runway, Luma,
Suno), prefixed random strings (`chatcmpl-...`, `resp_...`). The `derived_*` forms follow from a
seed, so that ids of things a task makes (creations, clips) agree on every read and process."""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid

_ALPHANUMERIC = string.ascii_letters + string.digits


def digits_id(length: int = 16) -> str:
    """A random decimal string of exactly `length` digits (no leading zero)."""
    low = 10 ** (length - 1)
    return str(low + secrets.randbelow(9 * low))


def derived_digits_id(seed: str, length: int = 16) -> str:
    """A decimal string of `length` digits that follows from `seed`."""
    low = 10 ** (length - 1)
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:16], "big")
    return str(low + digest % (9 * low))


def uuid_id() -> str:
    return str(uuid.uuid4())


def derived_uuid(seed: str) -> str:
    """A UUID v4 (version and variant bits set) that follows from `seed`."""
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


def prefixed_id(prefix: str, length: int = 24, alphabet: str = _ALPHANUMERIC) -> str:
    """`prefix` + `length` random characters: `prefixed_id("chatcmpl-")`, `prefixed_id("resp_", 48,
    "0123456789abcdef")`."""
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))
