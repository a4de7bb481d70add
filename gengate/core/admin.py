"""The operator's admin token and the sandbox's upstream secret.

Each is generated once into the database (`settings_kv`, sealed with the master key, so a copy of
the database alone reveals neither), which makes every process on one database agree and a restart
keep them. `GENGATE_ADMIN_TOKEN` overrides the stored admin token; otherwise every process copies
the stored one to `<data-dir>/admin.token` (mode 0600) for the operator to read.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from gengate.config import Settings
from gengate.core.crypto import SecretBox
from gengate.db.engine import Database
from gengate.db.models import settings_kv

ADMIN_TOKEN_FILE = "admin.token"
ADMIN_TOKEN_PREFIX = "gga-"  # never `sk-`: a client key is never an admin token
_ADMIN_TOKEN = "admin_token"
_SANDBOX_SECRET = "sandbox_upstream_secret"


async def persistent_value(db: Database, name: str, make: str) -> str:
    """A value shared by every process on this database (created by whichever starts first)."""
    async with db.read() as conn:
        value = await conn.scalar(select(settings_kv.c.value).where(settings_kv.c.name == name))
    if value is not None:
        return value
    try:
        async with db.write() as conn:
            await conn.execute(insert(settings_kv).values(name=name, value=make))
        return make
    except IntegrityError:
        async with db.read() as conn:
            return await conn.scalar(select(settings_kv.c.value).where(settings_kv.c.name == name))


async def _sealed_value(db: Database, box: SecretBox, name: str, make: Callable[[], str]) -> str:
    return box.open(await persistent_value(db, name, box.seal(make())))


async def admin_token(db: Database, box: SecretBox, settings: Settings) -> str:
    """`GENGATE_ADMIN_TOKEN`, else the database's own (generated on first use), copied to
    `<data-dir>/admin.token`."""
    if settings.admin_token:
        return settings.admin_token
    token = await _sealed_value(db, box, _ADMIN_TOKEN, lambda: ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32))
    write_private_file(settings.data_dir / ADMIN_TOKEN_FILE, token + "\n")
    return token


async def sandbox_secret(db: Database, box: SecretBox) -> str:
    """The upstream secret of the in-process sandbox emulators: random, one per database."""
    return await _sealed_value(db, box, _SANDBOX_SECRET, lambda: "sbx-" + secrets.token_urlsafe(32))


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 (atomically; nothing is written when it is already so)."""
    try:
        if path.read_text("utf-8") == text and (path.stat().st_mode & 0o777) == 0o600:
            return
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(temp, path)
