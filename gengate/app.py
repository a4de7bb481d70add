"""Builds the ASGI app: each provider family's routes, file downloads, health, the sandbox, and the
background loops (poller, change notifier, webhook sender, config watcher, and with Redis the bus)
under one supervisor."""

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
from fastapi_offline import FastAPIOffline
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gengate.config import Settings, load_settings
from gengate.core import channels as chan
from gengate.core import tasks as store
from gengate.core.admin import admin_token, persistent_value, sandbox_secret
from gengate.core.bus import POLLER, WEBHOOK, Bus
from gengate.core.crypto import SecretBox, load_master_key
from gengate.core.engine import TaskEngine
from gengate.core.leases import CreditLeases
from gengate.core.notify import Notifier
from gengate.core.poller import Poller
from gengate.core.pricing import PriceTable
from gengate.core.ratelimit import make_limiter
from gengate.core.upstream import UpstreamClient
from gengate.core.webhooks import WebhookSender
from gengate.db.engine import Database
from gengate.net.ssrf import GuardedClient, policy_from_env
from gengate.providers.registry import default_prices, route_factories, task_adaptors, task_views
from gengate.storage import open_storage
from gengate.storage.routes import file_routes
from gengate.storage.signing import UrlSigner
from gengate.web.admin import admin_routes
from gengate.web.admin.billing import routes as billing_routes
from gengate.web.context import AppContext
from gengate.web.documented import DocumentedRoute
from gengate.web.metrics import MetricsMiddleware, metrics_endpoint
from gengate.web.routing import install_routes
from gengate.web.sandbox import sandbox_mount, upsert_sandbox_channels
from gengate.web.unified import routes as unified_routes

log = logging.getLogger("gengate")
WAKE_EVERY = 0.05  # the most often this process wakes other processes' pollers or webhook senders


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    db = Database(settings.resolved_database_url)
    box = SecretBox(load_master_key(settings.secret_key, settings.data_dir))
    adaptors = task_adaptors()
    storage = open_storage(settings.storage_url, settings.data_dir)
    upstream = UpstreamClient(settings.connect_timeout, settings.request_timeout)
    bus = Bus(settings.redis_url, settings.redis_prefix)  # does nothing without GENGATE_REDIS_URL
    notifier = Notifier(lambda ids: _versions(db, ids), interval=settings.change_check_interval, bus=bus)
    router = chan.Router(box)
    health: dict[str, Any] = {"ready": False, "loops": {}}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.migrate()
        signing_key = await persistent_value(db, "url_signing_key", secrets.token_hex(32))
        signer = UrlSigner(bytes.fromhex(signing_key), settings.resolved_public_url)
        app.state.admin_token = await admin_token(db, box, settings)
        if settings.sandbox:
            upstream_secret = await sandbox_secret(db, box)
            await upsert_sandbox_channels(db, box, settings, upstream_secret)
            app.router.routes.insert(0, sandbox_mount(settings, upstream_secret, app.state.admin_token))
        async with db.read() as conn:
            await router.refresh(conn)
        engine = TaskEngine(settings=settings, db=db, router=router, upstream=upstream, storage=storage,
                            signer=signer, adaptors=adaptors, views=task_views(),
                            prices=PriceTable(default_prices(), settings.prices), notifier=notifier, owner=owner)
        url_policy = policy_from_env()
        ctx = AppContext(settings=settings, db=db, router=router, engine=engine, notifier=notifier,
                         storage=storage, signer=signer, adaptors=adaptors, url_policy=url_policy,
                         credits=CreditLeases(db, owner, settings.credit_lease_seconds),
                         limiter=make_limiter(settings.redis_url, settings.redis_prefix), bus=bus)
        ctx.closers.append(ctx.credits.close)  # after the families' writers (closers run newest first)
        ctx.closers.append(ctx.limiter.close)
        ctx.closers.append(bus.close)
        hook_client = GuardedClient(url_policy)
        sender = WebhookSender(db, box, hook_client, backoff_base=settings.webhook_backoff_base)
        engine.on_webhook = bus.throttled(WEBHOOK, sender.wake, every=WAKE_EVERY)
        engine.on_config = ctx.config_changed_soon
        bus.on(WEBHOOK, lambda _arg: sender.wake())
        bus.on_resync(sender.wake)
        app.state.ctx = ctx
        app.state.box = box
        install_routes(app, [unified_routes(ctx), billing_routes(ctx),
                             *(factory(ctx) for factory in route_factories())])
        poller = Poller(engine, tick=settings.poller_tick, batch=settings.poller_batch,
                        lease_seconds=settings.lease_seconds)
        engine.on_queued = bus.throttled(POLLER, poller.wake, every=WAKE_EVERY)
        bus.on(POLLER, lambda _arg: poller.wake())
        bus.on_resync(poller.wake)
        loops = {"poller": asyncio.create_task(poller.run(), name="poller"),
                 "notifier": asyncio.create_task(notifier.run(), name="notifier"),
                 "webhooks": asyncio.create_task(sender.run(), name="webhooks"),
                 "config": asyncio.create_task(ctx.watch_config(), name="config")}
        if bus.enabled:
            loops["bus"] = asyncio.create_task(bus.run(), name="bus")
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
            await ctx.close()
            async with db.write() as conn:
                await store.release_leases(conn, owner)
            await upstream.close()
            await hook_client.close()
            close_storage = getattr(storage, "close", None)  # S3: its HTTP client; local files: none
            if close_storage is not None:
                await close_storage()
            await db.dispose()

    # Swagger UI's assets come from the fastapi-offline package, served under /docs/assets: no CDN.
    app = FastAPIOffline(title="gengate", lifespan=lifespan, docs_url="/docs", redoc_url=None,
                         static_url="/docs/assets", swagger_ui_parameters={"validatorUrl": None})
    app.add_middleware(MetricsMiddleware)  # gengate_http_requests_total by route template

    async def healthz(request: Request) -> Response:
        loops = health.get("loops") or {}
        dead = [n for n, t in loops.items() if t.done()]
        poller = health.get("poller")
        # A poller whose round has not come back for this long is stuck (a hung database, say).
        stalled_for = time.time() - poller.last_round_at if poller is not None and poller.last_round_at else 0.0
        if stalled_for > max(30.0, 20 * settings.poller_tick):
            dead.append(f"poller (stalled {stalled_for:.0f} s)")
        if not health["ready"] or dead:
            return JSONResponse({"status": "starting" if not dead else "unhealthy", "dead_loops": dead},
                                status_code=503)
        return JSONResponse({"status": "ok", "database": db.dialect, "sandbox": settings.sandbox,
                             "time": time.time()})

    app.router.routes.append(DocumentedRoute("/healthz", healthz, "GET", operation_id="healthz",
                                             tags=["operations"], auth=False))
    app.router.routes.append(DocumentedRoute("/metrics", metrics_endpoint(lambda: app.state.ctx,
                                             lambda: getattr(health.get("poller"), "rounds", 0)), "GET",
                                             operation_id="metrics", tags=["operations"], auth=False,
                                             reply_media_type="text/plain"))
    app.router.routes.extend(admin_routes())  # /admin/api, behind the admin token
    for route in file_routes(lambda: storage, lambda: app.state.ctx.signer):
        app.router.routes.append(route)
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
