"""`serve --sandbox`: the in-process emulators mounted at `/_sandbox`, one channel per provider
pointing there, and their control routes (`/_sandbox/_emulator/...`) behind the admin token.

The upstream secret is random per database (gengate.core.admin.sandbox_secret), so a client of the
gateway cannot call the sandbox upstream directly."""

from __future__ import annotations

import asyncio
import hmac

from sqlalchemy.exc import IntegrityError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from gengate.config import Settings
from gengate.core import channels as chan
from gengate.core.crypto import SecretBox
from gengate.db.engine import Database
from gengate.providers.registry import provider_names

SANDBOX_PREFIX = "/_sandbox"
CONTROLS = "_emulator"


def sandbox_base(settings: Settings) -> str:
    return settings.resolved_public_url + SANDBOX_PREFIX


def sandbox_mount(settings: Settings, secret: str, admin_token: str) -> Mount:
    """The emulators accepting `secret`, with their controls open to the admin token only."""
    from gengate.emulator.app import build_emulator_app

    high = max(settings.sandbox_task_seconds, 0.0)
    emulator = build_emulator_app(secret=secret, task_seconds=(high * 0.3, high),
                                  state_dir=settings.data_dir / "sandbox", public_base=sandbox_base(settings))
    return Mount(SANDBOX_PREFIX, app=AdminOnlyControls(emulator, admin_token))


async def upsert_sandbox_channels(db: Database, box: SecretBox, settings: Settings, secret: str) -> None:
    from gengate.emulator.registry import discover_emulators

    base = sandbox_base(settings)
    for emu in discover_emulators():
        for attempt in range(5):  # workers starting together race on the insert: the loser updates
            try:
                async with db.write() as conn:
                    await chan.add_channel(conn, box, providers=provider_names(), provider=emu.provider,
                                           base_url=f"{base}/{emu.provider}{getattr(emu, 'base_path', '')}",
                                           models=_models(emu), secrets=[secret], name=f"sandbox-{emu.provider}",
                                           max_concurrency=settings.sandbox_concurrency, upsert=True)
                break
            except IntegrityError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))


def is_admin(headers: Headers, admin_token: str) -> bool:
    """`Authorization: Bearer <admin token>` (compared in constant time)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), admin_token.encode())


class AdminOnlyControls:
    """Answers 401 `{"error": {"code", "message"}}` (the admin envelope) to a request for the mounted
    app's `/_emulator/...` routes without the admin token; everything else passes through."""

    def __init__(self, app: ASGIApp, admin_token: str) -> None:
        self.app, self.admin_token = app, admin_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_control(scope) and not is_admin(Headers(scope=scope), self.admin_token):
            reply = JSONResponse({"error": {"code": "unauthorized",
                                            "message": "the emulator controls need Authorization: Bearer "
                                                       "<admin token>"}}, status_code=401)
            await reply(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_control(scope: Scope) -> bool:
    """Whether the path below the mount starts with `_emulator` (any number of slashes first)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.lstrip("/").startswith(CONTROLS)


def _models(emu: object) -> str | None:
    """The models a sandbox channel serves: the emulator's `sandbox_models` (interface.md's sandbox
    table; any other name is the family's model-not-found), or every model when it names none."""
    models = getattr(emu, "sandbox_models", None)
    return ",".join(models) if models else None
