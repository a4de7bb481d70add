"""`GET /r/{url}` (Jina Reader format) and `POST /v1/scrape` (Firecrawl v1 format): each fetches the
page through the SSRF guard, extracts it, charges the key its per-call price once the reply is ready
(nothing for a refusal or a failed fetch) and answers in its own format and error envelope."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute

from gengate.core import ledger
from gengate.core.errors import InsufficientCredits, InvalidRequest
from gengate.core.keys import ClientKey
from gengate.db.models import keys
from gengate.providers.reader import firecrawl, jina
from gengate.providers.reader.adaptor import EXTRA_PRICES, JINA_PRICE, SCRAPE_PRICE
from gengate.providers.reader.errors import firecrawl_error, jina_error
from gengate.providers.reader.page import Reader
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer, read_json


class JinaError(BaseModel):
    """`{"code", "status", "name", "message", "readableMessage"}`."""

    code: int
    status: int
    name: str
    message: str
    readableMessage: str


class JinaReply(BaseModel):
    """With `Accept: application/json`; the default reply is `text/plain`."""

    code: int
    status: int
    data: dict[str, object]


class JinaBody(BaseModel):
    url: str


class ScrapeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    formats: list[str] = ["markdown"]
    onlyMainContent: bool = True
    includeTags: list[str] = []
    excludeTags: list[str] = []
    headers: dict[str, str] = {}
    timeout: int = 30000


class ScrapeReply(BaseModel):
    success: bool
    data: dict[str, object]


class ScrapeError(BaseModel):
    """`{"success": false, "error", "details"?}`."""

    success: bool
    error: str
    details: list[dict[str, object]] | None = None


JINA = Family(name="jina", prefix="/r", render_error=jina_error, error_model=JinaError, tag="url analysis")
FIRECRAWL = Family(name="firecrawl", prefix="/v1/scrape", render_error=firecrawl_error, error_model=ScrapeError,
                   tag="url analysis")


def routes(ctx: AppContext) -> list[BaseRoute]:
    reader = Reader(ctx)
    defaults = EXTRA_PRICES[0]

    def price_of(name: str) -> int:
        return max(1, ctx.engine.prices.get(name, defaults[name]))

    async def precheck(key: ClientKey, price: int) -> None:
        # Saves a fetch for a key already out of credit (the cached key may be stale: one small read);
        # the charge after the fetch is what decides.
        if key.credits is None:
            return
        left = await ctx.db.run_read(lambda conn: conn.scalar(select(keys.c.credits).where(keys.c.id == key.id)))
        if left is not None and left < price:
            raise InsufficientCredits("insufficient credits")

    async def charge(key: ClientKey, price: int) -> None:
        async with ctx.db.write() as conn:
            await ledger.charge_call(conn, key.id, price)

    async def read(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        return await answer(key, jina.parse(request))

    async def read_posted(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        body = await read_json(request, ctx.settings.max_body_bytes)
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.strip():
            raise InvalidRequest("Invalid URL: the body must be {\"url\": \"https://...\"}", param="url")
        return await answer(key, jina.parse(request, url.strip()))

    async def answer(key: ClientKey, req: jina.JinaRequest) -> Response:
        price = price_of(JINA_PRICE)
        await precheck(key, price)
        page = await reader.read(req.url, req.options, seconds=reader.clamp(req.timeout), use_cache=not req.no_cache,
                                 cache_scope="jina")
        reply: Response = (JSONResponse(jina.render_json(page, req)) if req.as_json
                           else PlainTextResponse(jina.render_text(page, req)))
        await charge(key, price)
        return reply

    async def scrape(request: Request) -> Response:
        key = await ctx.authenticate(bearer(request))
        req = firecrawl.parse(await read_json(request, ctx.settings.max_body_bytes))
        price = price_of(SCRAPE_PRICE)
        await precheck(key, price)
        seconds = reader.clamp(req.timeout_ms / 1000 if req.timeout_ms else None)
        page = await reader.read(req.url, req.options, seconds=seconds, headers=req.headers, cache_scope="firecrawl")
        reply = JSONResponse(firecrawl.render(page, req))
        await charge(key, price)
        return reply

    jina_routes: list[BaseRoute] = [
        JINA.route("/", read_posted, ["POST"], name="read_posted", summary="Read a page given as {\"url\"}",
                   body=JinaBody, reply=JinaReply, reply_media_type="text/plain"),
        JINA.route("/{url:path}", read, ["GET"], name="read", summary="Read a page (Jina Reader format)",
                   reply=JinaReply, reply_media_type="text/plain"),
    ]
    scrape_routes: list[BaseRoute] = [
        FIRECRAWL.route("", scrape, ["POST"], name="scrape", summary="Scrape a page (Firecrawl v1 format)",
                        body=ScrapeBody, reply=ScrapeReply),
    ]
    return [*jina_routes, JINA.fallback(jina_routes), *scrape_routes, FIRECRAWL.fallback(scrape_routes)]
