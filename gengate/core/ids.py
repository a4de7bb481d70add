"""Random public ids in each provider's own form. Upstream ids are never shown to clients."""

from __future__ import annotations

import secrets
import uuid


def digits(n: int = 18) -> str:
    """A decimal string of exactly n digits with no leading zero (Vidu, Kling)."""
    first = str(secrets.randbelow(9) + 1)
    return first + "".join(str(secrets.randbelow(10)) for _ in range(n - 1))


def uuid4() -> str:
    return str(uuid.uuid4())


def prefixed(prefix: str, nbytes: int = 16) -> str:
    return prefix + secrets.token_hex(nbytes)


def client_key() -> str:
    return "sk-" + secrets.token_urlsafe(36)
