"""`/admin/api/keys`: create (the key shown once), list, read, PATCH (credits, add_credits, models,
expires_at), DELETE (revoke; the key stays readable with `revoked: true`)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gengate.core import keys as core_keys
from gengate.core import ledger
from gengate.core.channels import bump_config_version
from gengate.db.models import keys, ledger_entries
from gengate.web.admin.common import (
    admin_route,
    int_param,
    invalid,
    json_body,
    models_out,
    models_param,
    not_found,
    page,
    timestamp,
)

CREATE_FIELDS = {"name", "credits", "models", "rpm", "expires_at"}
PATCH_FIELDS = {"credits", "add_credits", "models", "rpm", "expires_at", "disabled"}


def _key_object(row: Row[Any], used: int) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "credits": row.credits, "used": used,
            "models": models_out(row.models), "rpm": row.rpm,
            "expires_at": int(row.expires_at) if row.expires_at is not None else None,
            "disabled": bool(row.disabled), "revoked": row.revoked_at is not None, "created_at": int(row.created_at)}


async def _read(request: Request, key_id: int) -> dict[str, Any]:
    db = request.app.state.ctx.db
    async with db.read() as conn:
        row = (await conn.execute(select(keys).where(keys.c.id == key_id))).first()
        if row is None:
            raise not_found("key")
        return _key_object(row, await ledger.spent(conn, key_id))


def _flags(body: dict[str, Any]) -> dict[str, Any]:
    """`rpm` (null: no limit) and `disabled` (a disabled key gets 401 until enabled again)."""
    values: dict[str, Any] = {}
    if "rpm" in body:
        values["rpm"] = int_param(body["rpm"], "rpm", low=1, high=1_000_000)
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise invalid("disabled must be true or false")
        values["disabled"] = body["disabled"]
    return values


def _key_id(request: Request) -> int:
    raw = request.path_params["key_id"]
    if not (raw.isascii() and raw.isdigit()):
        raise not_found("key")
    return int(raw)


async def list_keys(request: Request) -> Response:
    db = request.app.state.ctx.db
    async with db.read() as conn:
        rows = (await conn.execute(select(keys).order_by(keys.c.id.desc()))).all()
        items = [_key_object(r, await ledger.spent(conn, r.id)) for r in rows]
    return page(items, request)


async def create_key(request: Request) -> Response:
    body = await json_body(request)
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        raise invalid(f"unknown fields: {', '.join(sorted(unknown))}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise invalid("name is required (a string of at most 200 characters)")
    credits = int_param(body.get("credits"), "credits")
    models = models_param(body.get("models"))
    expires_at = timestamp(body.get("expires_at"), "expires_at")
    flags = _flags(body)
    ctx = request.app.state.ctx
    async with ctx.db.write() as conn:
        key_id, plain, _ = await core_keys.create_key(conn, request.app.state.box, name=name.strip(),
                                                      credits=credits, models=models, expires_at=expires_at)
        if flags:
            await conn.execute(update(keys).where(keys.c.id == key_id).values(**flags))
    await ctx.config_changed()  # every process forgets a cached "no such key" at once (Redis)
    obj = await _read(request, key_id)
    return JSONResponse({**obj, "key": plain}, status_code=201)


async def get_key(request: Request) -> Response:
    return JSONResponse(await _read(request, _key_id(request)))


async def patch_key(request: Request) -> Response:
    key_id = _key_id(request)
    body = await json_body(request)
    unknown = set(body) - PATCH_FIELDS
    if unknown:
        raise invalid(f"unknown fields: {', '.join(sorted(unknown))}")
    credits = int_param(body.get("credits"), "credits")
    add = int_param(body.get("add_credits"), "add_credits", low=1)
    values: dict[str, Any] = _flags(body)
    if "models" in body:
        values["models"] = models_param(body["models"])
    if "expires_at" in body:
        values["expires_at"] = timestamp(body["expires_at"], "expires_at")
    db = request.app.state.ctx.db
    async with db.write() as conn:
        row = (await conn.execute(select(keys).where(keys.c.id == key_id))).first()
        if row is None:
            raise not_found("key")
        grant = 0
        if "credits" in body:  # set the balance (null: unlimited)
            values["credits"] = credits
            grant = (credits or 0) - (row.credits or 0) if credits is not None else 0
        if add is not None:
            if "credits" in body or row.credits is None:
                raise invalid("add_credits tops up a limited key (and not together with credits)")
            values["credits"] = keys.c.credits + add
            grant = add
        if values:
            await conn.execute(update(keys).where(keys.c.id == key_id).values(**values))
        if grant:
            await conn.execute(insert(ledger_entries).values(key_id=key_id, task_id=None, kind="grant",
                                                             amount=-grant, created_at=time.time()))
        await bump_config_version(conn)
    await request.app.state.ctx.config_changed()  # every process drops its cached keys at once (Redis)
    return JSONResponse(await _read(request, key_id))


async def revoke_key(request: Request) -> Response:
    key_id = _key_id(request)
    db = request.app.state.ctx.db
    async with db.write() as conn:
        exists = await conn.scalar(select(keys.c.id).where(keys.c.id == key_id))
        if exists is None:
            raise not_found("key")
        # by id only (core_keys.revoke_key also matches a key *named* like this id)
        await conn.execute(update(keys).where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
                           .values(revoked_at=time.time()))
        await bump_config_version(conn)
    await request.app.state.ctx.config_changed()  # every process drops its cached keys at once (Redis)
    return JSONResponse(await _read(request, key_id))


def routes() -> list[Route]:
    return [admin_route("/keys", list_keys, ["GET"]), admin_route("/keys", create_key, ["POST"]),
            admin_route("/keys/{key_id}", get_key, ["GET"]), admin_route("/keys/{key_id}", patch_key, ["PATCH"]),
            admin_route("/keys/{key_id}", revoke_key, ["DELETE"])]
