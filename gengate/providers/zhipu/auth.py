"""How a GLM channel sends its key upstream (zhipu.md §1), chosen per channel with `--option auth=`:

- `raw` (default): `Authorization: Bearer {id}.{secret}` as configured.
- `jwt`: a short-lived HS256 token, JOSE header `{"alg": "HS256", "sign_type": "SIGN"}`, payload
  `{"api_key": id, "exp": now_ms + 210000, "timestamp": now_ms}` signed with `secret`; cached per
  secret and signed again `REFRESH_MS` before it expires.

A key without a dot is used as both parts (`S` -> `S.S`: the sandbox's single upstream secret).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping

import jwt

from gengate.core.channels import Channel, Secret

LIFETIME_MS = 210_000
REFRESH_MS = 30_000  # a cached token is replaced this long before its expiry
MAX_CACHED = 4096


def key_parts(value: str) -> tuple[str, str]:
    ident, dot, secret = value.partition(".")
    return (ident, secret) if dot else (value, value)


def sign(value: str, now_ms: int) -> str:
    ident, secret = key_parts(value)
    payload = {"api_key": ident, "exp": now_ms + LIFETIME_MS, "timestamp": now_ms}
    with warnings.catch_warnings():  # GLM's secrets are theirs to choose: no key-length warning
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm="HS256", headers={"alg": "HS256", "sign_type": "SIGN"})


class GLMAuth:
    """The `Authorization` value of a GLM channel's secret (relay.AuthFor)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[tuple[int, str], tuple[str, int]] = {}  # (secret id, value) -> (token, exp ms)
        self.signed = 0  # tokens signed (tests see the cache work)

    def __call__(self, channel: Channel, secret: Secret) -> str:
        return self.header(secret.value, channel.options, secret.id)

    def header(self, value: str, options: Mapping[str, str], cache_id: int = 0) -> str:
        """`Bearer ...` for the key `value` on a channel with `options`."""
        if options.get("auth", "raw").lower() != "jwt":
            ident, part = key_parts(value)
            return f"Bearer {ident}.{part}"
        now_ms = int(self.clock() * 1000)
        cached = self._tokens.get((cache_id, value))
        if cached is not None and cached[1] - REFRESH_MS > now_ms:
            return f"Bearer {cached[0]}"
        token = sign(value, now_ms)
        if len(self._tokens) >= MAX_CACHED:
            self._tokens.clear()
        self._tokens[(cache_id, value)] = (token, now_ms + LIFETIME_MS)
        self.signed += 1
        return f"Bearer {token}"
