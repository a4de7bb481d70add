"""The JWT every upstream Kling call carries (kling.md §1): HS256, signed with the secret key,
`iss` = access key, `exp` = now + 30 min, `nbf` = now - 5 s. Tokens are cached per key pair and
minted again a few minutes before they expire, as Kling's own clients do."""

from __future__ import annotations

import hashlib
import threading
import time
import warnings

import jwt

LIFETIME = 1800  # seconds a token is valid (exp - iat)
NOT_BEFORE_SKEW = 5  # nbf is this far in the past, for clocks a little behind
REFRESH_MARGIN = 300  # a cached token is replaced when it has less than this left

_cache: dict[tuple[str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def key_pair(secret: str) -> tuple[str, str]:
    """A channel secret `ACCESS_KEY|SECRET_KEY` as its two parts; a secret without `|` is both
    (the emulator's `--secret S`: access key and secret key both S)."""
    access, sep, secret_key = secret.partition("|")
    if not sep:
        return secret.strip(), secret.strip()
    return access.strip(), secret_key.strip()


def mint(access_key: str, secret_key: str, now: float | None = None) -> str:
    """A fresh token (not cached)."""
    at = int(time.time() if now is None else now)
    claims = {"iss": access_key, "exp": at + LIFETIME, "nbf": at - NOT_BEFORE_SKEW}
    with warnings.catch_warnings():  # providers' keys may be short; that is theirs to choose
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret_key, algorithm="HS256", headers={"typ": "JWT"})


def bearer_token(secret: str, now: float | None = None) -> str:
    """The token for a channel secret: the cached one while it has more than REFRESH_MARGIN left."""
    access_key, secret_key = key_pair(secret)
    at = time.time() if now is None else now
    # The cache key holds a digest of the secret key, never the key itself.
    cache_key = (access_key, hashlib.sha256(secret_key.encode()).hexdigest())
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None and cached[1] - at > REFRESH_MARGIN:
            return cached[0]
        token = mint(access_key, secret_key, at)
        _cache[cache_key] = (token, int(at) + LIFETIME)
        if len(_cache) > 4096:  # bounded: forget the oldest entries of a long-running process
            for old in list(_cache)[:1024]:
                _cache.pop(old, None)
        return token
