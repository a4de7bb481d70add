"""`/admin/api/channels`: add, list (each secret's health: fingerprint, state, reason, running/cap),
read, PATCH (enabled, priority, weight, models), DELETE, and a test of every secret.
Secrets are never returned: only their fingerprint."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gengate.core import channels as chan
from gengate.core.adaptor import Account, HttpCall, TaskRef
from gengate.db.models import channel_secrets, channels
from gengate.providers.registry import provider_names
from gengate.web.admin.common import admin_route, int_param, invalid, json_body, models_param, not_found, page

ADD_FIELDS = {"provider", "base_url", "keys", "name", "models", "model_map", "priority", "weight",
              "max_concurrency", "options"}
PATCH_FIELDS = {"enabled", "priority", "weight", "models"}
TEST_TIMEOUT = 10.0


def _secret_state(s: dict[str, Any], now: float) -> str:
    if not s["enabled"]:
        return f"disabled ({s['status_reason']})" if s.get("status_reason") else "disabled"
    if s.pop("backoff_until", 0) > now:
        return "cooling down"
    return "ok"


async def _channel_objects(request: Request) -> list[dict[str, Any]]:
    db = request.app.state.ctx.db
    async with db.read() as conn:
        listed = await chan.list_channels(conn)
        backoff = {r.id: r.backoff_until for r in
                   (await conn.execute(select(channel_secrets.c.id, channel_secrets.c.backoff_until))).all()}
        created = {r.id: r.created_at for r in (await conn.execute(select(channels.c.id, channels.c.created_at))).all()}
    now = time.time()
    for ch in listed:
        ch["models"] = ch["models"].split(",") if ch["models"] else None
        ch["created_at"] = int(created.get(ch["id"], 0))
        for s in ch["secrets"]:
            s["backoff_until"] = backoff.get(s["id"], 0)
            cooling = s["backoff_until"]
            s["state"] = _secret_state(s, now)
            s["cooldown_until"] = int(cooling) if cooling > now else None
            s["fingerprint"] = s["fingerprint"][:12]
    listed.sort(key=lambda c: c["id"], reverse=True)
    return listed


async def _one(request: Request, channel_id: int) -> dict[str, Any]:
    for ch in await _channel_objects(request):
        if ch["id"] == channel_id:
            return ch
    raise not_found("channel")


def _channel_id(request: Request) -> int:
    raw = request.path_params["channel_id"]
    if not (raw.isascii() and raw.isdigit()):
        raise not_found("channel")
    return int(raw)


async def list_channels(request: Request) -> Response:
    return page(await _channel_objects(request), request)


async def add_channel(request: Request) -> Response:
    body = await json_body(request)
    unknown = set(body) - ADD_FIELDS
    if unknown:
        raise invalid(f"unknown fields: {', '.join(sorted(unknown))}")
    secrets = body.get("keys")
    if not isinstance(secrets, list) or not secrets or not all(isinstance(s, str) and s.strip() for s in secrets):
        raise invalid("keys must be a non-empty list of secrets")
    provider, base_url, name = body.get("provider"), body.get("base_url"), body.get("name")
    if not isinstance(provider, str) or not isinstance(base_url, str):
        raise invalid("provider and base_url are required strings")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        raise invalid("name must be a string of at most 200 characters")
    model_map, options = body.get("model_map"), body.get("options")
    for label, value in (("model_map", model_map), ("options", options)):
        if value is not None and (not isinstance(value, dict)
                                  or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise invalid(f"{label} must be an object of strings")
    ctx = request.app.state.ctx
    async with ctx.db.write() as conn:
        channel_id = await chan.add_channel(
            conn, request.app.state.box, providers=provider_names(), provider=provider, base_url=base_url,
            secrets=[s.strip() for s in secrets], name=name, models=models_param(body.get("models")),
            priority=int_param(body.get("priority"), "priority", default=0, low=-(2**31), high=2**31) or 0,
            weight=int_param(body.get("weight"), "weight", default=1, low=1, high=10_000) or 1,
            max_concurrency=int_param(body.get("max_concurrency"), "max_concurrency", low=1, high=100_000),
            options=options, model_map=model_map)
    await ctx.config_changed()  # here and, through Redis, everywhere
    return JSONResponse(await _one(request, channel_id), status_code=201)


async def get_channel(request: Request) -> Response:
    return JSONResponse(await _one(request, _channel_id(request)))


async def patch_channel(request: Request) -> Response:
    channel_id = _channel_id(request)
    await _one(request, channel_id)
    body = await json_body(request)
    unknown = set(body) - PATCH_FIELDS
    if unknown:
        raise invalid(f"unknown fields: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    if "priority" in body:
        values["priority"] = int_param(body["priority"], "priority", default=0, low=-(2**31), high=2**31)
    if "weight" in body:
        values["weight"] = int_param(body["weight"], "weight", default=1, low=1, high=10_000)
    if "models" in body:
        values["models"] = models_param(body["models"])
    enabled = body.get("enabled")
    if "enabled" in body and not isinstance(enabled, bool):
        raise invalid("enabled must be true or false")
    ctx = request.app.state.ctx
    async with ctx.db.write() as conn:
        if isinstance(enabled, bool):
            await chan.set_channel_enabled(conn, str(channel_id), enabled)
        if values:
            await conn.execute(update(channels).where(channels.c.id == channel_id).values(**values))
            await chan.bump_config_version(conn)
    await ctx.config_changed()  # here and, through Redis, everywhere
    return JSONResponse(await _one(request, channel_id))


async def delete_channel(request: Request) -> Response:
    channel_id = _channel_id(request)
    obj = await _one(request, channel_id)
    ctx = request.app.state.ctx
    async with ctx.db.write() as conn:
        await chan.delete_channel(conn, str(channel_id))
    await ctx.config_changed()  # here and, through Redis, everywhere
    return JSONResponse({"id": channel_id, "name": obj["name"], "deleted": True})


async def _probe(ctx: Any, provider: str, account: Account) -> tuple[str, float, str | None]:
    """An authenticated read that creates no job: the poll of a job id that does not exist (a 404 or
    any non-auth 4xx answer means the secret was accepted)."""
    adaptor = ctx.adaptors.get(provider)
    if adaptor is not None:
        ref = TaskRef(upstream_id="gengate-channel-test", action="", model="", upstream_request={},
                      marker="gengate-channel-test")
        try:
            call = adaptor.build_poll(account, ref)
        except Exception:
            call = HttpCall("GET", "/models", headers={"Authorization": f"Bearer {account.secret}"})
    else:
        call = HttpCall("GET", "/models", headers={"Authorization": f"Bearer {account.secret}"})
    started = time.perf_counter()
    try:
        reply = await asyncio.wait_for(ctx.engine.upstream.send(account, call), TEST_TIMEOUT)
    except Exception as exc:
        return "error", (time.perf_counter() - started) * 1000, f"unreachable: {type(exc).__name__}"
    latency = (time.perf_counter() - started) * 1000
    if reply.status in (401, 403):
        return "unauthorized", latency, f"the upstream refused the secret (HTTP {reply.status})"
    if reply.status >= 500 or reply.status == 429:
        return "error", latency, f"HTTP {reply.status}"
    return "ok", latency, None


async def test_channel(request: Request) -> Response:
    channel_id = _channel_id(request)
    obj = await _one(request, channel_id)
    ctx = request.app.state.ctx
    await ctx.reload_config()
    channel = ctx.router.channels.get(channel_id)
    if channel is None:
        raise not_found("channel")
    fingerprints = {s["id"]: s["fingerprint"] for s in obj["secrets"]}
    results = []
    for secret in channel.secrets:
        if fingerprints.get(secret.id) is None:
            continue
        account = Account(base_url=channel.base_url, secret=secret.value, options=channel.options,
                          provider=channel.provider, channel=channel.name)
        status, latency, error = await _probe(ctx, channel.provider, account)
        if error and secret.value in error:
            error = "error"
        results.append({"secret_id": secret.id, "fingerprint": fingerprints[secret.id], "status": status,
                        "latency_ms": round(latency, 1), "error": error})
    return JSONResponse({"id": channel_id, "name": obj["name"], "ok": all(r["status"] == "ok" for r in results),
                         "data": results})


def routes() -> list[Route]:
    return [admin_route("/channels", list_channels, ["GET"]), admin_route("/channels", add_channel, ["POST"]),
            admin_route("/channels/{channel_id}", get_channel, ["GET"]),
            admin_route("/channels/{channel_id}", patch_channel, ["PATCH"]),
            admin_route("/channels/{channel_id}", delete_channel, ["DELETE"]),
            admin_route("/channels/{channel_id}/test", test_channel, ["POST"])]


