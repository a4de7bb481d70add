"""The OpenAI legacy billing endpoints that chat front-ends read, for the calling key (its Bearer):
`GET /v1/dashboard/billing/subscription` (US dollars) and `GET /v1/dashboard/billing/usage` (US cents,
optional `start_date`/`end_date` as YYYY-MM-DD, end exclusive). Errors in OpenAI's envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core import ledger
from gengate.core.errors import InvalidRequest
from gengate.db.models import keys, ledger_entries
from gengate.providers.openai.errors import openai_error
from gengate.providers.openai.schemas import OpenAIError
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer

FAMILY = Family(name="billing", prefix="/v1/dashboard/billing", render_error=openai_error, error_model=OpenAIError)
UNLIMITED_USD = 100000000
CREDITS_PER_USD = 1_000_000
CREDITS_PER_CENT = 10_000


def _date(raw: str | None, name: str) -> float | None:
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise InvalidRequest(f"{name} must be a date as YYYY-MM-DD", param=name) from None


def routes(ctx: AppContext) -> list[BaseRoute]:
    async def subscription(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        async with ctx.db.read() as conn:
            row = (await conn.execute(select(keys.c.credits, keys.c.expires_at).where(keys.c.id == key.id))).first()
            spent = await ledger.spent(conn, key.id)
        if row is None or row.credits is None:
            limit: float = UNLIMITED_USD
        else:
            limit = (row.credits + spent) / CREDITS_PER_USD
        expires = row.expires_at if row is not None else None
        return JSONResponse({"object": "billing_subscription", "has_payment_method": True,
                             "hard_limit_usd": limit, "soft_limit_usd": limit, "system_hard_limit_usd": limit,
                             "access_until": int(expires) if expires else 0})

    async def usage(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        start = _date(request.query_params.get("start_date"), "start_date")
        end = _date(request.query_params.get("end_date"), "end_date")
        cond: Any = and_(ledger_entries.c.key_id == key.id, ledger_entries.c.kind != "grant")
        if start is not None:
            cond = and_(cond, ledger_entries.c.created_at >= start)
        if end is not None:
            cond = and_(cond, ledger_entries.c.created_at < end)
        async with ctx.db.read() as conn:
            total = await conn.scalar(select(func.coalesce(func.sum(ledger_entries.c.amount), 0)).where(cond))
        return JSONResponse({"object": "list", "total_usage": int(total or 0) / CREDITS_PER_CENT})

    family_routes: list[BaseRoute] = [
        FAMILY.route("/subscription", subscription, ["GET"], summary="The key's grant (OpenAI legacy billing)"),
        FAMILY.route("/usage", usage, ["GET"], summary="What the key spent, in US cents (OpenAI legacy billing)"),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
