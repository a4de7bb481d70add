"""Client keys: created once and shown once, stored as a hash; credits, model patterns, expiry, revoke."""

from __future__ import annotations

import base64
import fnmatch
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core.channels import bump_config_version
from gengate.core.crypto import SecretBox, hash_key
from gengate.core.errors import InvalidRequest, ModelNotAllowed
from gengate.core.ids import client_key
from gengate.db.models import keys, ledger_entries


@dataclass(frozen=True)
class ClientKey:
    id: int
    name: str
    credits: int | None
    models: tuple[str, ...] | None
    rpm: int | None = None  # requests per minute (gengate.core.ratelimit); None = no limit

    def allows(self, model: str) -> bool:
        return self.models is None or any(fnmatch.fnmatchcase(model, p) for p in self.models)

    def check_model(self, model: str) -> None:
        if not self.allows(model):
            raise ModelNotAllowed(f"The model `{model}` does not exist or you do not have access to it.")


def _patterns(raw: str | None) -> tuple[str, ...] | None:
    if not raw:
        return None
    return tuple(p.strip() for p in raw.split(",") if p.strip())


async def create_key(conn: AsyncConnection, box: SecretBox, *, name: str, credits: int | None,
                     models: str | None, expires_at: float | None,
                     rpm: int | None = None) -> tuple[int, str, str]:
    """Returns (id, the key in clear, the webhook secret `whsec_...`). Neither is stored in clear."""
    if credits is not None and credits < 0:
        raise InvalidRequest("credits must be >= 0")
    if rpm is not None and rpm < 1:
        raise InvalidRequest("rpm must be >= 1")
    existing = await conn.scalar(select(keys.c.id).where(keys.c.name == name))
    if existing is not None:
        raise InvalidRequest(f"a key named {name!r} exists already")
    plain = client_key()
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    now = time.time()
    key_id = await conn.scalar(insert(keys).values(
        name=name, key_hash=hash_key(plain), key_hint=plain[:7], credits=credits, models=models or None,
        expires_at=expires_at, rpm=rpm, webhook_secret_enc=box.seal(webhook_secret), created_at=now,
    ).returning(keys.c.id))
    assert key_id is not None
    if credits:
        await conn.execute(insert(ledger_entries).values(
            key_id=key_id, task_id=None, kind="grant", amount=-credits, created_at=now))
    await bump_config_version(conn)  # servers forget the "no such key" they may have cached
    return key_id, plain, webhook_secret


async def list_keys(conn: AsyncConnection) -> list[dict[str, object]]:
    rows = await conn.execute(select(keys).order_by(keys.c.id))
    return [{"id": r.id, "name": r.name, "hint": r.key_hint + "...", "credits": r.credits,
             "models": r.models, "expires_at": r.expires_at, "rpm": r.rpm, "revoked": r.revoked_at is not None}
            for r in rows]


async def revoke_key(conn: AsyncConnection, name_or_id: str) -> bool:
    cond = keys.c.name == name_or_id
    if name_or_id.isdigit():
        cond = or_(cond, keys.c.id == int(name_or_id))
    res = await conn.execute(update(keys).where(cond, keys.c.revoked_at.is_(None))
                             .values(revoked_at=time.time()))
    if res.rowcount:
        await bump_config_version(conn)  # every server drops its cached keys (KeyCache)
    return res.rowcount > 0


async def webhook_secret(conn: AsyncConnection, box: SecretBox, name: str) -> str | None:
    enc = await conn.scalar(select(keys.c.webhook_secret_enc).where(keys.c.name == name))
    return box.open(enc) if enc else None


@dataclass(frozen=True)
class CachedKey:
    """What authentication needs of a key row. `key` is None when the hash matches no key."""

    key: ClientKey | None
    expires_at: float | None = None
    revoked: bool = False


class KeyCache:
    """Key hash -> CachedKey for this process, so that a known key costs no database round trip.

    Bounded (LRU); unknown hashes are remembered in a smaller LRU of their own, so a flood of made-up
    keys cannot push real keys out. Every change to keys bumps `config_version`, and the process's
    config watcher then calls `clear()`; a change is therefore seen within one check interval.

    A lookup that started before a `clear()` must not put its (possibly stale) answer back after it:
    `generation()` is taken before the database read and `put()` ignores answers of an older generation.
    `ClientKey.credits` is the value read at caching time: only `credits is None` (unlimited) is stable;
    balances are always decided by the database (ledger).
    """

    def __init__(self, max_keys: int = 10_000, max_unknown: int = 1_000) -> None:
        self.max_keys, self.max_unknown = max_keys, max_unknown
        self._known: OrderedDict[str, CachedKey] = OrderedDict()
        self._unknown: OrderedDict[str, CachedKey] = OrderedDict()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    def generation(self) -> int:
        return self._generation

    def get(self, key_hash: str) -> CachedKey | None:
        for lru in (self._known, self._unknown):
            hit = lru.get(key_hash)
            if hit is not None:
                lru.move_to_end(key_hash)
                return hit
        return None

    def put(self, key_hash: str, entry: CachedKey, generation: int) -> None:
        if generation != self._generation:
            return
        lru, cap = (self._known, self.max_keys) if entry.key is not None else (self._unknown, self.max_unknown)
        lru[key_hash] = entry
        lru.move_to_end(key_hash)
        while len(lru) > cap:
            lru.popitem(last=False)

    def clear(self) -> None:
        self._generation += 1
        self._known.clear()
        self._unknown.clear()
