"""CogView `POST /images/generations` (zhipu.md §5): synchronous, relayed to a `zhipu` channel. The
upstream's image URLs are copied into gengate's storage and replaced by signed gengate media URLs.
Priced per image (`zhipu:image:<model>`, else `zhipu:image:*`); nothing is charged for a failure."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response

from gengate.core.channels import Channel
from gengate.core.errors import GengateError, UpstreamUnavailable
from gengate.providers.openai import bodies as oa_bodies
from gengate.providers.openai.billing import UsageRecord
from gengate.providers.openai.images import read_images_reply
from gengate.providers.zhipu.errors import bad, glm_error
from gengate.storage.rehost import RehostError, rehost

if TYPE_CHECKING:
    from gengate.providers.zhipu.routes import ZhipuRoutes

JSON_TYPE = "application/json"
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10, sock_read=60)
_SIZE = re.compile(r"^(\d{3,4})x(\d{3,4})$")
PRICES: dict[str, int] = {"zhipu:image:cogview-4": 8_500, "zhipu:image:cogview-3-flash": 1,
                          "zhipu:image:*": 8_500}


def check_image(body: dict[str, Any]) -> str:
    """The model of a valid CogView request, or GLM's 1213/1214."""
    model = body.get("model")
    if model is None:
        raise bad("Missing required parameter: model.", "1213", "model")
    if not isinstance(model, str) or not model.strip():
        raise bad("Invalid parameter 'model': expected a non-empty string.", param="model")
    prompt = body.get("prompt")
    if prompt is None:
        raise bad("Missing required parameter: prompt.", "1213", "prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad("Invalid parameter 'prompt': expected a non-empty string.", param="prompt")
    size = body.get("size")
    if size is not None:
        match = _SIZE.match(size) if isinstance(size, str) else None
        if match is None or not all(512 <= int(v) <= 2048 for v in match.groups()):
            raise bad("Invalid parameter 'size': WIDTHxHEIGHT, each side 512-2048.", param="size")
    quality = body.get("quality")
    if quality is not None and quality not in ("hd", "standard"):
        raise bad("Invalid parameter 'quality': hd or standard.", param="quality")
    return model


async def generate(r: ZhipuRoutes, request: Request) -> Response:
    key = await r.key(request)
    raw = await oa_bodies.read_body(request, r.ctx.settings.max_body_bytes)
    try:
        body = oa_bodies.parse_object(raw)
    except GengateError as exc:
        raise bad(exc.message, "1210") from None
    model = body.get("model") if isinstance(body.get("model"), str) else "?"
    rec = UsageRecord(key.id, "images", model, model, limited=key.credits is not None)
    table = r.pricing.table
    try:
        check_image(body)
        r.check_model(key, model)
        each = max(1, table.get(f"zhipu:image:{model}", table["zhipu:image:*"]))
        await r.reserve(rec, each)

        def body_for(channel: Channel) -> tuple[bytes, str]:
            upstream = channel.upstream_model(model)
            return (raw if upstream == model else orjson.dumps({**body, "model": upstream})), upstream

        opened = await r.relay.open(model, "/images/generations", body_for, JSON_TYPE)
        rec.channel_id = opened.channel.id
        reply, items = await read_images_reply(opened.response)
        for item in items:
            url = item.get("url") if isinstance(item, dict) else None
            if isinstance(url, str):
                try:
                    stored = await rehost(r.relay.session, url, r.ctx.storage, "zhipu/images",
                                          timeout=DOWNLOAD_TIMEOUT)
                except RehostError as exc:
                    raise UpstreamUnavailable(f"The upstream's image could not be downloaded ({exc}).",
                                              status=502) from None
                item["url"] = r.ctx.signer.url_for(stored.key, r.ctx.settings.media_url_ttl)
        rec.output_tokens = len(items)
        rec.credits = each * len(items)
    except GengateError as exc:
        r.finish(rec, glm_error(exc).status_code, exc.message)
        raise
    except BaseException:
        r.finish(rec, 499, "client closed the request")
        raise
    r.finish(rec, 200)
    return Response(orjson.dumps(reply), media_type=JSON_TYPE)
