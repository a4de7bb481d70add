"""What every route needs, built once at start-up (see gengate.app)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.config import Settings
from gengate.core.adaptor import TaskAdaptor
from gengate.core.bus import CONFIG, Bus
from gengate.core.channels import Router
from gengate.core.crypto import hash_key
from gengate.core.engine import TaskEngine
from gengate.core.errors import AuthError
from gengate.core.keys import CachedKey, ClientKey, KeyCache, _patterns
from gengate.core.leases import CreditLeases
from gengate.core.notify import Notifier
from gengate.core.ratelimit import Limiter, LocalLimiter, enforce
from gengate.db.engine import Database
from gengate.db.models import keys, settings_kv
from gengate.net.ssrf import GuardPolicy
from gengate.storage.base import Storage
from gengate.storage.signing import UrlSigner

log = logging.getLogger("gengate.config")

_KEY = select(keys.c.id, keys.c.name, keys.c.credits, keys.c.models, keys.c.expires_at,
              keys.c.revoked_at, keys.c.disabled, keys.c.rpm).where(keys.c.key_hash == bindparam("h"))
_CONFIG_VERSION = select(settings_kv.c.value).where(settings_kv.c.name == "config_version")


@dataclass
class AppContext:
    settings: Settings
    db: Database
    router: Router
    engine: TaskEngine
    notifier: Notifier
    storage: Storage
    signer: UrlSigner
    adaptors: Mapping[str, TaskAdaptor]
    url_policy: GuardPolicy
    credits: CreditLeases  # limited keys' credit leases, for synchronous calls
    key_cache: KeyCache = field(default_factory=KeyCache)
    limiter: Limiter = field(default_factory=LocalLimiter)  # per-key rpm (Redis when configured)
    bus: Bus = field(default_factory=lambda: Bus(None, ""))  # cross-process wake-ups (Redis when configured)
    # Run at shutdown, newest first, before the database closes (a family's pooled sessions, batched
    # writers that must flush). Families append to it from `routes(ctx)`.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception:
                log.exception("a closer failed at shutdown")

    async def authenticate(self, presented: str | None) -> ClientKey:
        """Check a client key (from this process's key cache, or one query on a miss) and count the
        request against its rpm: RateLimited (429) when over it."""
        if not presented:
            raise AuthError("You didn't provide an API key.")
        h = hash_key(presented)
        cached = self.key_cache.get(h)
        if cached is None:
            generation = self.key_cache.generation()
            row = await self.db.run_read(lambda conn: _fetch_key(conn, h))
            cached = _cached_key(row)
            self.key_cache.put(h, cached, generation)
        if cached.key is None or cached.revoked:
            raise AuthError("Incorrect API key provided.")
        if cached.expires_at is not None and cached.expires_at <= time.time():
            raise AuthError("This API key has expired.")
        await enforce(self.limiter, cached.key.id, cached.key.rpm)
        return cached.key

    def __post_init__(self) -> None:
        self._reload_wanted = asyncio.Event()
        self.bus.on(CONFIG, lambda _arg: self._reload_wanted.set())
        self.bus.on_resync(self._reload_wanted.set)

    async def reload_config(self, version: str | None = None) -> None:
        """Forget cached keys and reload the routing table: the one place a key or channel change
        lands. The config watcher calls it when `config_version` moves, or when another process
        announces a change on the bus. `version`: the new value, read again when None."""
        self.key_cache.clear()
        async with self.db.read() as conn:
            await self.router.refresh(conn, version)

    async def config_changed(self) -> None:
        """This process committed a key or channel change: reload here, and tell the other processes."""
        await self.reload_config()
        self.bus.publish(CONFIG)

    def config_changed_soon(self) -> None:
        """`config_changed` for callers that cannot wait (the engine's auto-disable of a secret)."""
        self._reload_wanted.set()
        self.bus.publish(CONFIG)

    async def watch_config(self) -> None:
        """Background loop: one small read of `config_version` (and of the secrets cooling down, which
        another process may have cooled) per interval (the contract: a change is seen within 2 s),
        whatever the traffic; a reload at once when the bus announces a change."""
        interval = self.settings.config_check_interval
        while True:
            try:
                await asyncio.wait_for(self._reload_wanted.wait(), timeout=interval)
            except TimeoutError:
                pass
            self._reload_wanted.clear()
            try:
                version = await self.db.run_read(self._read_config)
                if version != self.router.version:
                    await self.reload_config(version)
            except Exception as exc:  # the database may be down for a while: keep checking
                # Unable to tell whether a key was revoked: stop trusting the cache until a check works.
                self.key_cache.clear()
                log.warning("config check failed: %s", exc)


    async def _read_config(self, conn: AsyncConnection) -> str:
        version = await _read_config_version(conn)
        await self.router.read_cooldowns(conn)
        return version


async def _fetch_key(conn: AsyncConnection, key_hash: str) -> Row[Any] | None:
    return (await conn.execute(_KEY, {"h": key_hash})).first()


async def _read_config_version(conn: AsyncConnection) -> str:
    return await conn.scalar(_CONFIG_VERSION) or ""


def _cached_key(row: Row[Any] | None) -> CachedKey:
    if row is None:
        return CachedKey(key=None)
    return CachedKey(key=ClientKey(id=row.id, name=row.name, credits=row.credits, models=_patterns(row.models),
                                     rpm=row.rpm),
                     expires_at=row.expires_at, revoked=row.revoked_at is not None or bool(row.disabled))
