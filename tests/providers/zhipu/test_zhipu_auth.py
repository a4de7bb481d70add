"""GLM upstream auth per channel (zhipu.md §1): the raw `id.secret` key, or an HS256 JWT (header
`sign_type: SIGN`, `exp`/`timestamp` in ms) cached until shortly before it expires."""

from __future__ import annotations

import jwt

from gengate.core.channels import Channel, Secret
from gengate.providers.zhipu.auth import LIFETIME_MS, REFRESH_MS, GLMAuth


def _channel(options: dict[str, str]) -> Channel:
    return Channel(id=1, name="glm", provider="zhipu", base_url="http://x", models=None, priority=0, weight=1,
                   options=options, enabled=True)


def test_raw_and_jwt_cached_until_near_expiry() -> None:
    now = [1_700_000_000.0]
    auth = GLMAuth(clock=lambda: now[0])
    secret = Secret(id=7, channel_id=1, value="myid.mysecret", max_concurrency=None, enabled=True)
    assert auth(_channel({}), secret) == "Bearer myid.mysecret"
    assert auth(_channel({"auth": "raw"}), Secret(8, 1, "S", None, True)) == "Bearer S.S"
    ch = _channel({"auth": "jwt"})
    first = auth(ch, secret).removeprefix("Bearer ")
    assert jwt.get_unverified_header(first) == {"alg": "HS256", "sign_type": "SIGN", "typ": "JWT"}
    claims = jwt.decode(first, "mysecret", algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"api_key": "myid", "exp": int(now[0] * 1000) + LIFETIME_MS, "timestamp": int(now[0] * 1000)}
    now[0] += (LIFETIME_MS - REFRESH_MS) / 1000 - 1
    assert auth(ch, secret).removeprefix("Bearer ") == first and auth.signed == 1  # still cached
    now[0] += 2
    assert auth(ch, secret).removeprefix("Bearer ") != first and auth.signed == 2  # signed again
