"""What every route needs, built once at start-up (see gengate.app)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from gengate.config import Settings
from gengate.core.adaptor import TaskAdaptor
from gengate.core.channels import Router
from gengate.core.crypto import hash_key
from gengate.core.engine import TaskEngine
from gengate.core.errors import AuthError
from gengate.core.keys import ClientKey, _patterns
from gengate.core.notify import Notifier
from gengate.db.engine import Database
from gengate.db.models import keys, settings_kv
from gengate.net.ssrf import GuardPolicy
from gengate.storage.base import Storage
from gengate.storage.signing import UrlSigner

# One query per request: the key, and the config version that says whether channels changed.
_AUTH = select(keys.c.id, keys.c.name, keys.c.credits, keys.c.models, keys.c.expires_at, keys.c.revoked_at,
               select(settings_kv.c.value).where(settings_kv.c.name == "config_version").scalar_subquery()
               .label("cv")).where(keys.c.key_hash == bindparam("h"))


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

    async def authenticate(self, presented: str | None) -> ClientKey:
        """Check a client key, and pick up key/channel changes made since the last request (one query)."""
        import time

        if not presented:
            raise AuthError("You didn't provide an API key.")
        async with self.db.read() as conn:
            row = (await conn.execute(_AUTH, {"h": hash_key(presented)})).first()
            if row is not None and (row.cv or "") != self.router.version:
                await self.router.refresh(conn, row.cv or "")
        if row is None or row.revoked_at is not None:
            raise AuthError("Incorrect API key provided.")
        if row.expires_at is not None and row.expires_at <= time.time():
            raise AuthError("This API key has expired.")
        return ClientKey(id=row.id, name=row.name, credits=row.credits, models=_patterns(row.models))
