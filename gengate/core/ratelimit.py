"""Requests per minute per client key (`keys create --rpm N`, the admin API's `rpm`).

A sliding one-minute window: a request is let through when fewer than N requests of that key were let
through in the last 60 s. With `GENGATE_REDIS_URL` the window lives in Redis (one sorted set per key,
checked and updated by one Lua script, so every process sharing that Redis enforces one limit
together); without it, or while Redis cannot be reached, each process keeps its own window.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections import deque
from typing import Any, Protocol

from gengate.core.errors import RateLimited

log = logging.getLogger("gengate.ratelimit")

WINDOW = 60.0


class Limiter(Protocol):
    async def hit(self, key_id: int, rpm: int) -> float | None:
        """Counts one request; None when it is allowed, else the seconds until one would be."""
        ...

    async def close(self) -> None: ...


class LocalLimiter:
    """This process's own sliding window (Redis absent or unreachable)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.windows: dict[int, deque[float]] = {}

    async def hit(self, key_id: int, rpm: int) -> float | None:
        now = self.clock()
        window = self.windows.setdefault(key_id, deque())
        while window and window[0] <= now - WINDOW:
            window.popleft()
        if len(window) >= rpm:
            return max(window[0] + WINDOW - now, 0.001)
        window.append(now)
        return None

    async def close(self) -> None:
        return None


# KEYS[1] the key's window; ARGV: now (ms), window (ms), limit, member. Returns -1 when allowed,
# else the milliseconds until the oldest request leaves the window.
_SCRIPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(tonumber(oldest[2]) + window - now, 1)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""


class RedisLimiter:
    """One window per key shared by every process using this Redis (keys `<prefix>rpm:<key id>`)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.prefix = prefix
        self.script = self.client.register_script(_SCRIPT)
        self.local = LocalLimiter()
        self._warned = False

    async def hit(self, key_id: int, rpm: int) -> float | None:
        now_ms = int(time.time() * 1000)
        member = f"{now_ms}-{secrets.token_hex(6)}"
        try:
            wait_ms = await self.script(keys=[f"{self.prefix}rpm:{key_id}"],
                                        args=[now_ms, int(WINDOW * 1000), rpm, member])
        except Exception as exc:  # Redis down or unreachable: limit per process
            if not self._warned:
                log.warning("rate limits: Redis unreachable (%s), counting per process", exc)
                self._warned = True
            return await self.local.hit(key_id, rpm)
        self._warned = False
        return None if int(wait_ms) < 0 else int(wait_ms) / 1000

    async def close(self) -> None:
        await self.client.aclose()


def make_limiter(redis_url: str | None, prefix: str) -> Limiter:
    return RedisLimiter(redis_url, prefix) if redis_url else LocalLimiter()


async def enforce(limiter: Limiter, key_id: int, rpm: int | None) -> None:
    """Raises RateLimited (the family's 429 with Retry-After) when the key is over its rpm."""
    if not rpm:
        return
    wait = await limiter.hit(key_id, rpm)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(f"Rate limit reached: {rpm} requests per minute for this key. "
                          f"Try again in {seconds} s.", retry_after=seconds)
