"""Client keys: created once and shown once, stored as a hash; credits, model patterns, expiry, revoke."""

from __future__ import annotations

import base64
import fnmatch
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

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
                     models: str | None, expires_at: float | None) -> tuple[int, str, str]:
    """Returns (id, the key in clear, the webhook secret `whsec_...`). Neither is stored in clear."""
    if credits is not None and credits < 0:
        raise InvalidRequest("credits must be >= 0")
    existing = await conn.scalar(select(keys.c.id).where(keys.c.name == name))
    if existing is not None:
        raise InvalidRequest(f"a key named {name!r} exists already")
    plain = client_key()
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    now = time.time()
    key_id = await conn.scalar(insert(keys).values(
        name=name, key_hash=hash_key(plain), key_hint=plain[:7], credits=credits, models=models or None,
        expires_at=expires_at, webhook_secret_enc=box.seal(webhook_secret), created_at=now,
    ).returning(keys.c.id))
    assert key_id is not None
    if credits:
        await conn.execute(insert(ledger_entries).values(
            key_id=key_id, task_id=None, kind="grant", amount=-credits, created_at=now))
    return key_id, plain, webhook_secret


async def list_keys(conn: AsyncConnection) -> list[dict[str, object]]:
    rows = await conn.execute(select(keys).order_by(keys.c.id))
    return [{"id": r.id, "name": r.name, "hint": r.key_hint + "...", "credits": r.credits,
             "models": r.models, "expires_at": r.expires_at, "revoked": r.revoked_at is not None}
            for r in rows]


async def revoke_key(conn: AsyncConnection, name_or_id: str) -> bool:
    cond = keys.c.name == name_or_id
    if name_or_id.isdigit():
        cond = or_(cond, keys.c.id == int(name_or_id))
    res = await conn.execute(update(keys).where(cond, keys.c.revoked_at.is_(None))
                             .values(revoked_at=time.time()))
    return res.rowcount > 0


async def webhook_secret(conn: AsyncConnection, box: SecretBox, name: str) -> str | None:
    enc = await conn.scalar(select(keys.c.webhook_secret_enc).where(keys.c.name == name))
    return box.open(enc) if enc else None
