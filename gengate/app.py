"""Builds the ASGI app: each provider family's routes, file downloads, health, the sandbox, and the
background loops (poller, change notifier) under one supervisor."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount

from gengate.config import Settings, load_settings
from gengate.core import channels as chan
from gengate.core import tasks as store
from gengate.core.crypto import SecretBox, load_master_key
from gengate.core.engine import TaskEngine
from gengate.core.notify import Notifier
from gengate.core.poller import Poller
from gengate.core.upstream import UpstreamClient
from gengate.core.webhooks import WebhookSender
from gengate.db.engine import Database
from gengate.db.models import settings_kv
from gengate.net.ssrf import GuardedClient, policy_from_env
from gengate.providers.registry import route_factories, task_adaptors
from gengate.storage import open_storage
from gengate.storage.routes import file_routes
from gengate.storage.signing import UrlSigner
from gengate.web.context import AppContext
from gengate.web.metrics import metrics_endpoint
from gengate.web.unified import routes as unified_routes

log = logging.getLogger("gengate")
SANDBOX_SECRET = "sandbox-secret"


async def _persistent_value(db: Database, name: str, make: str) -> str:
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


def _mount_sandbox(app: FastAPI, settings: Settings) -> None:
    from gengate.emulator.app import build_emulator_app

    base = settings.resolved_public_url + "/_sandbox"
    high = max(settings.sandbox_task_seconds, 0.0)
    emulator = build_emulator_app(secret=SANDBOX_SECRET, task_seconds=(high * 0.3, high),
                                  state_dir=settings.data_dir / "sandbox", public_base=base)
    app.router.routes.insert(0, Mount("/_sandbox", app=emulator))


async def _upsert_sandbox_channels(db: Database, box: SecretBox, settings: Settings) -> None:
    from gengate.emulator.registry import discover_emulators

    base = settings.resolved_public_url + "/_sandbox"
    for emu in discover_emulators():
        for attempt in range(5):  # workers starting together race on the insert: the loser updates
            try:
                async with db.write() as conn:
                    await chan.add_channel(conn, box, provider=emu.provider, base_url=f"{base}/{emu.provider}",
                                           secrets=[SANDBOX_SECRET], name=f"sandbox-{emu.provider}",
                                           max_concurrency=settings.sandbox_concurrency, upsert=True)
                break
            except IntegrityError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    db = Database(settings.resolved_database_url)
    box = SecretBox(load_master_key(settings.secret_key, settings.data_dir))
    adaptors = task_adaptors()
    storage = open_storage(settings.storage_url, settings.data_dir)
    upstream = UpstreamClient(settings.connect_timeout, settings.request_timeout)
    notifier = Notifier(lambda ids: _versions(db, ids))
    router = chan.Router(box)
    health: dict[str, Any] = {"ready": False, "loops": {}}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.migrate()
        signing_key = await _persistent_value(db, "url_signing_key", secrets.token_hex(32))
        signer = UrlSigner(bytes.fromhex(signing_key), settings.resolved_public_url)
        if settings.sandbox:
            await _upsert_sandbox_channels(db, box, settings)
        async with db.read() as conn:
            await router.refresh(conn)
        engine = TaskEngine(settings=settings, db=db, router=router, upstream=upstream, storage=storage,
                            signer=signer, adaptors=adaptors, notifier=notifier, owner=owner)
        url_policy = policy_from_env()
        ctx = AppContext(settings=settings, db=db, router=router, engine=engine, notifier=notifier,
                         storage=storage, signer=signer, adaptors=adaptors, url_policy=url_policy)
        hook_client = GuardedClient(url_policy)
        sender = WebhookSender(db, box, hook_client, backoff_base=settings.webhook_backoff_base)
        engine.on_webhook = sender.wake
        app.state.ctx = ctx
        for factory in [unified_routes, *route_factories()]:
            app.router.routes.extend(factory(ctx))
        poller = Poller(engine, tick=settings.poller_tick, batch=settings.poller_batch,
                        lease_seconds=settings.lease_seconds)
        loops = {"poller": asyncio.create_task(poller.run(), name="poller"),
                 "notifier": asyncio.create_task(notifier.run(), name="notifier"),
                 "webhooks": asyncio.create_task(sender.run(), name="webhooks"),
                 "config": asyncio.create_task(ctx.watch_config(), name="config")}
        for name, task in loops.items():
            task.add_done_callback(lambda t, n=name: _loop_died(n, t))
        health["loops"] = loops
        health["poller"] = poller
        health["ready"] = True
        log.info("gengate ready on %s (database: %s, sandbox: %s)", settings.resolved_public_url,
                 db.dialect, settings.sandbox)
        try:
            yield
        finally:
            health["ready"] = False
            for task in loops.values():
                task.cancel()
            await asyncio.gather(*loops.values(), return_exceptions=True)
            await poller.drain(grace=3.0)
            async with db.write() as conn:
                await store.release_leases(conn, owner)
            await upstream.close()
            await hook_client.close()
            await db.dispose()

    app = FastAPI(title="gengate", lifespan=lifespan, docs_url="/docs", redoc_url=None)

    async def healthz(request: Request) -> Response:
        loops = health.get("loops") or {}
        dead = [n for n, t in loops.items() if t.done()]
        if not health["ready"] or dead:
            return JSONResponse({"status": "starting" if not dead else "unhealthy", "dead_loops": dead},
                                status_code=503)
        return JSONResponse({"status": "ok", "database": db.dialect, "sandbox": settings.sandbox,
                             "time": time.time()})

    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/metrics", metrics_endpoint(lambda: app.state.ctx,
                                               lambda: getattr(health.get("poller"), "rounds", 0)), methods=["GET"])
    for route in file_routes(lambda: storage, lambda: app.state.ctx.signer):
        app.router.routes.append(route)
    if settings.sandbox:
        _mount_sandbox(app, settings)
    return app


def _loop_died(name: str, task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    log.critical("background loop %s stopped (%r): stopping this process", name, exc)
    # A gateway whose poller died must not go on answering as if healthy.
    os.kill(os.getpid(), signal.SIGTERM)


async def _versions(db: Database, ids: list[int]) -> dict[int, float]:
    async with db.read() as conn:
        return await store.versions(conn, ids)
