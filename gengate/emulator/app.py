"""The emulator ASGI app: every provider emulator under `/<provider>`, controls under `/_emulator`.

Run it on its own (what `gengate emulate` does):

    app = build_emulator_app(public_base="http://127.0.0.1:9000")
    uvicorn.run(app, host="127.0.0.1", port=9000)      # or: await serve_emulator(port=9000)

or mount it in another app (`Mount("/_sandbox", app)` with `public_base=".../_sandbox"`).

Controls (JSON in, JSON out):
- `GET /_emulator/stats`: counters per provider (stats.py).
- `POST /_emulator/reset`: zero the counters, clear faults and caps, and release every hold;
  `{"counters_only": true}` zeroes the counters only. Tasks are kept.
- `POST /_emulator/faults` (a rule, faults.py) → `{"id"}`; `GET` → `{"faults": [...]}`;
  `DELETE` (or `POST {"clear": true}`) removes them all.
- `POST /_emulator/hold` `{"provider"?, "task_id"?, "on": true|false}` → `{"changed": N}`: freeze
  tasks where they are (without `task_id`: every task of the provider, present and future) or
  let them go on from where they stopped.
- `POST /_emulator/caps` `{"provider"?, "secret"?, "max_running": N|null}`: cap running jobs per
  secret (null removes the cap); `GET` lists caps. A create beyond a cap gets the provider's
  concurrency error and is not a job.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from gengate.emulator.base import EmulatorContext, ProviderEmulator
from gengate.emulator.cdn import MediaSigner, media_route
from gengate.emulator.faults import FaultSpecError, parse_rule
from gengate.emulator.media import MediaCache
from gengate.emulator.registry import discover_emulators
from gengate.emulator.replies import ProviderError
from gengate.emulator.sqlite_store import SqliteStore
from gengate.emulator.stats import ProviderStats
from gengate.emulator.store import Cap, MemoryStore, Store

DEFAULT_SECRET = "sandbox-secret"
DEFAULT_POLL_LATENCY = 0.02
POLL_LATENCY_ENV = "GENGATE_EMULATOR_POLL_LATENCY"


@dataclass(slots=True)
class EmulatorRuntime:
    """What `app.state.emulator` holds, for the code that embeds the app."""

    store: Store
    contexts: dict[str, EmulatorContext]

    def close(self) -> None:
        self.store.close()


def build_emulator_app(
    *,
    secret: str = DEFAULT_SECRET,
    task_seconds: tuple[float, float] = (3.0, 10.0),
    state_dir: Path | None = None,
    public_base: str,
    poll_latency: float | None = None,
    emulators: Sequence[ProviderEmulator] | None = None,
    media_cache_bytes: int = 64 * 1024 * 1024,
) -> Starlette:
    """Build the emulator app.

    `secret` is the accepted upstream secret; several may be given comma-separated ("a,b").
    `task_seconds` is the range a job's duration is drawn from ((0, 0): terminal at once).
    `state_dir` None keeps state in memory; a directory keeps it in SQLite there (shared by
    processes, kept across restarts). `public_base` is the absolute URL the app is reachable at;
    every media URL starts with it. `poll_latency` (default env GENGATE_EMULATOR_POLL_LATENCY or
    0.02 s) is how long each poll reply takes. `emulators` defaults to every discovered one.
    """
    if poll_latency is None:
        poll_latency = float(os.environ.get(POLL_LATENCY_ENV, DEFAULT_POLL_LATENCY))
    accepted = frozenset(s.strip() for s in secret.split(",") if s.strip())
    if not accepted:
        raise ValueError("at least one secret is needed")
    store: Store = MemoryStore() if state_dir is None else SqliteStore(state_dir)
    signer = MediaSigner(store.media_key(), public_base)
    cache = MediaCache(media_cache_bytes)
    runtime = EmulatorRuntime(store, {})
    routes: list[BaseRoute] = []
    for emulator in discover_emulators() if emulators is None else emulators:
        ctx = EmulatorContext(
            provider=emulator.provider,
            store=store,
            stats=ProviderStats(),
            signer=signer,
            secrets=accepted,
            task_seconds=(float(task_seconds[0]), float(task_seconds[1])),
            poll_latency=poll_latency,
            emulator=emulator,
        )
        runtime.contexts[emulator.provider] = ctx
        provider_routes = [*emulator.routes(ctx), media_route(emulator.provider, signer, cache)]
        routes.append(Mount(f"/{emulator.provider}", app=_provider_app(emulator, provider_routes)))

    routes += _control_routes(runtime)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        runtime.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.emulator = runtime
    return app


async def serve_emulator(
    host: str = "127.0.0.1",
    port: int = 9000,
    secret: str = DEFAULT_SECRET,
    task_seconds: tuple[float, float] = (3.0, 10.0),
    *,
    state_dir: Path | None = None,
    public_base: str | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the emulators with uvicorn until cancelled or interrupted."""
    import uvicorn

    if public_base is None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        public_base = f"http://{shown}:{port}"
    app = build_emulator_app(secret=secret, task_seconds=task_seconds, state_dir=state_dir, public_base=public_base)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False))
    await server.serve()


def _provider_app(emulator: ProviderEmulator, routes: list[BaseRoute]) -> ExceptionMiddleware:
    """The provider's routes, with unknown paths, wrong methods and every `ProviderError` a handler
    raises answered in its error shape."""

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await emulator.error_response(404, "no such path", None)(scope, receive, send)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return emulator.error_response(exc.status_code, exc.detail, None, exc.headers)

    async def provider_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProviderError)
        return emulator.error_response(exc.status, exc.message, exc.reason, exc.headers)

    handlers = {HTTPException: http_error, ProviderError: provider_error}
    return ExceptionMiddleware(Router(routes, default=not_found), handlers=handlers)


def _control_routes(runtime: EmulatorRuntime) -> list[BaseRoute]:
    store = runtime.store
    contexts = runtime.contexts

    async def stats(request: Request) -> Response:
        now = EmulatorContext.now()
        return JSONResponse({name: ctx.stats.to_json(store.running(name, now)) for name, ctx in contexts.items()})

    async def reset(request: Request) -> Response:
        body = await _json_body(request, default={})
        for ctx in contexts.values():
            ctx.stats.reset()
        if not body.get("counters_only"):
            store.clear_faults()
            for cap in store.caps():
                store.set_cap(cap._replace(max_running=-1))
            store.hold(None, None, False, EmulatorContext.now())
        return JSONResponse({"ok": True})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"faults": store.faults(EmulatorContext.now())})
        if request.method == "DELETE":
            store.clear_faults()
            return JSONResponse({"ok": True})
        body = await _json_body(request)
        if body.get("clear") is True:
            store.clear_faults()
            return JSONResponse({"ok": True})
        try:
            rule = parse_rule(body, EmulatorContext.now())
            _known_provider(rule["provider"], contexts)
        except FaultSpecError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        store.add_fault(rule)
        return JSONResponse({"id": rule["id"]})

    async def hold(request: Request) -> Response:
        body = await _json_body(request)
        provider, task_id, on = body.get("provider"), body.get("task_id"), body.get("on", True)
        try:
            _known_provider(provider, contexts)
            if task_id is not None and not isinstance(task_id, str):
                raise FaultSpecError("task_id must be a string")
            if not isinstance(on, bool):
                raise FaultSpecError("on must be true or false")
        except FaultSpecError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        changed = store.hold(provider, task_id, on, EmulatorContext.now())
        return JSONResponse({"changed": changed})

    async def caps(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            provider, secret, limit = body.get("provider"), body.get("secret"), body.get("max_running")
            try:
                _known_provider(provider, contexts)
                if secret is not None and not isinstance(secret, str):
                    raise FaultSpecError("secret must be a string")
                if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
                    raise FaultSpecError("max_running must be a non-negative integer or null")
            except FaultSpecError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            store.set_cap(Cap(provider, secret, -1 if limit is None else limit))
        return JSONResponse({"caps": [cap._asdict() for cap in store.caps()]})

    return [
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/hold", hold, methods=["POST"]),
        Route("/_emulator/caps", caps, methods=["GET", "POST"]),
    ]


async def _json_body(request: Request, default: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip() and default is not None:
        return default
    try:
        body = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def _known_provider(provider: Any, contexts: dict[str, EmulatorContext]) -> None:
    if provider is not None and provider not in contexts:
        raise FaultSpecError(f"unknown provider {provider!r}; known: {sorted(contexts)}")
