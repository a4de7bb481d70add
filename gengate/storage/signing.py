"""Signed, expiring download URLs: the signature in the URL is the only credential a media URL needs.

The URL is built from the configured public URL, never from a request's Host header, and the key is
shared by every process (the core persists it), so a URL stays valid across restarts and hosts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import quote

DEFAULT_TTL_SECONDS = 7 * 24 * 3600
# Long-lived URLs expire on the hour: the same file then gets the same URL for an hour, so a task
# read twice (or its webhook and a GET) renders identically and browsers and CDNs can cache it.
EXPIRY_STEP_SECONDS = 3600
MIN_SIGNING_KEY_BYTES = 16


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class UrlSigner:
    def __init__(self, key: bytes, public_url: str, *, clock: Callable[[], float] = time.time) -> None:
        if len(key) < MIN_SIGNING_KEY_BYTES:
            raise ValueError(f"URL signing key must be at least {MIN_SIGNING_KEY_BYTES} bytes")
        if not public_url.startswith(("http://", "https://")):
            raise ValueError(f"public URL must start with http:// or https://, got {public_url!r}")
        self._key = key
        self.public_url = public_url.rstrip("/")
        self._clock = clock

    def signature(self, key: str, exp: int) -> str:
        message = f"{key}\n{exp}".encode()
        return _b64url(hmac.new(self._key, message, hashlib.sha256).digest())

    def url_for(self, key: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        exp = int(self._clock()) + ttl_seconds
        if ttl_seconds >= 24 * EXPIRY_STEP_SECONDS:
            exp = -(-exp // EXPIRY_STEP_SECONDS) * EXPIRY_STEP_SECONDS  # rounded up: never shorter
        return f"{self.public_url}/files/{quote(key, safe='/')}?exp={exp}&sig={self.signature(key, exp)}"

    def verify(self, key: str, exp: int | str, sig: str) -> bool:
        """True when ``sig`` signs ``key`` and ``exp`` and ``exp`` has not passed."""
        if isinstance(exp, str):
            # Only short plain-ASCII decimals were ever signed (isdigit alone accepts other scripts, and
            # int() refuses very long digit strings with an error instead of False).
            if not (exp.isascii() and exp.isdigit() and len(exp) <= 12):
                return False
            exp = int(exp)
        if exp < self._clock():
            return False
        expected = self.signature(key, exp).encode("ascii")
        # Compare bytes: hmac.compare_digest refuses non-ASCII str, and sig comes from the client.
        return hmac.compare_digest(expected, sig.encode("utf-8", "surrogateescape"))

    def seconds_left(self, exp: int) -> int:
        """How long a URL expiring at ``exp`` stays valid, for Cache-Control."""
        return max(0, exp - int(self._clock()))
