"""`POST /v1/images/generations` and `/v1/images/edits` for OpenAI image models (openai.md §5).

Priced per image by model, size and quality; the reservation is `n` images. A `url` in the upstream
reply is downloaded into gengate's storage and replaced by a signed gengate media URL (interface.md
"Media URLs"); `b64_json` is relayed as it came. An edit's multipart body is forwarded as its bytes,
only its `model` part renamed under a channel's `--model-map`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response

from gengate.core.channels import Channel
from gengate.core.errors import GengateError, InvalidRequest, UpstreamUnavailable
from gengate.providers.openai import bodies, multipart
from gengate.providers.openai.billing import UsageRecord
from gengate.providers.openai.errors import openai_error
from gengate.providers.openai.image_providers import ProviderImages
from gengate.providers.openai.prices import image_price, price_model
from gengate.storage.rehost import RehostError, rehost

if TYPE_CHECKING:
    from gengate.providers.openai.routes import OpenAIRoutes

JSON_TYPE = "application/json"
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10, sock_read=60)


def _int_field(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidRequest(f"Invalid type for '{name}': expected an integer.", param=name)


def _str_field(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Invalid type for '{name}': expected a string.", param=name)
    return value


class ImageCall:
    """The fields of an images request that routing, validation and billing read."""

    def __init__(self, fields: dict[str, Any], edit: bool) -> None:
        self.model = _str_field(fields.get("model"), "model") or "dall-e-2"
        bodies.require_model({"model": self.model})
        prompt = _str_field(fields.get("prompt"), "prompt")
        if not prompt or not prompt.strip():
            raise InvalidRequest("Missing required parameter: 'prompt'.", param="prompt")
        self.n = _int_field(fields.get("n"), "n", 1)
        if not 1 <= self.n <= 10:
            raise InvalidRequest("Invalid 'n': must be between 1 and 10.", param="n")
        if self.model == "dall-e-3" and self.n != 1:
            raise InvalidRequest("Invalid 'n': dall-e-3 only supports n=1.", param="n")
        self.prompt = prompt
        self.size = _str_field(fields.get("size"), "size") or "1024x1024"
        self.quality = _str_field(fields.get("quality"), "quality")
        fmt = _str_field(fields.get("response_format"), "response_format")
        if fmt is not None and fmt not in ("url", "b64_json"):
            raise InvalidRequest("Invalid 'response_format': expected 'url' or 'b64_json'.", param="response_format")
        self.response_format = fmt or "url"
        self.edit = edit


class Images:
    def __init__(self, routes: OpenAIRoutes) -> None:
        self.r = routes
        self.providers = ProviderImages(routes)

    async def generate(self, request: Request) -> Response:
        key = await self.r.key(request)
        raw = await bodies.read_body(request, self.r.ctx.settings.max_body_bytes)
        body = bodies.parse_object(raw)
        model = body.get("model")
        if isinstance(model, str) and not self.r.relay.serves(model) and self.providers.serves(model):
            call = ImageCall(body, False)  # another provider's image model (image_table.py)
            return await self.providers.generate(key, call, call.response_format, request.is_disconnected)

        def body_for(channel: Channel, call: ImageCall) -> tuple[bytes, str]:
            upstream = channel.upstream_model(call.model)
            if upstream != call.model or "model" not in body:
                return orjson.dumps({**body, "model": upstream}), upstream
            return raw, upstream

        return await self._call(key, body, False, "/images/generations", JSON_TYPE, body_for)

    async def edit(self, request: Request) -> Response:
        key = await self.r.key(request)
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            raise InvalidRequest("The body of an image edit must be multipart/form-data.")
        settings = self.r.ctx.settings
        raw = await bodies.read_body(request, settings.max_media_body_bytes)
        try:
            form = await request.form()
        except Exception:
            raise InvalidRequest("We could not parse the multipart body of your request.") from None
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        image = form.get("image") or form.get("image[]")
        if image is None or isinstance(image, str):
            raise InvalidRequest("Missing required parameter: 'image'.", param="image")

        boundary = multipart.boundary_of(ctype)

        def body_for(channel: Channel, call: ImageCall) -> tuple[bytes, str]:
            upstream = channel.upstream_model(call.model)
            if upstream == call.model or boundary is None:
                return raw, upstream  # forwarded as sent
            return multipart.with_field(raw, boundary, "model", upstream), upstream

        return await self._call(key, fields, True, "/images/edits", ctype, body_for)

    async def _call(self, key: Any, fields: dict[str, Any], edit: bool, path: str, content_type: str,
                    body_for: Any) -> Response:
        model = fields.get("model") if isinstance(fields.get("model"), str) else "dall-e-2"
        rec = UsageRecord(key.id, "images.edit" if edit else "images", model, price_model(model),
                          limited=key.credits is not None)
        try:
            call = ImageCall(fields, edit)
            self.r.check_model(key, call.model)
            each = image_price(self.r.pricing.table, call.model, call.size, call.quality)
            await self.r.reserve(rec, each * call.n)
            opened = await self.r.relay.open(call.model, path, lambda ch: body_for(ch, call), content_type)
            rec.channel_id = opened.channel.id
            reply, items = await read_images_reply(opened.response)
            await self._rehost(items)
            rec.output_tokens = len(items)
            rec.credits = each * len(items)
        except GengateError as exc:
            self.r.finish(rec, openai_error(exc).status_code, exc.message)
            raise
        except BaseException:
            self.r.finish(rec, 499, "client closed the request")
            raise
        self.r.finish(rec, 200)
        return Response(orjson.dumps(reply), media_type=JSON_TYPE)

    async def _rehost(self, items: list[Any]) -> None:
        ctx = self.r.ctx
        for item in items:
            url = item.get("url") if isinstance(item, dict) else None
            if not isinstance(url, str):
                continue
            try:
                stored = await rehost(self.r.relay.session, url, ctx.storage, "openai/images",
                                      timeout=DOWNLOAD_TIMEOUT)
            except RehostError as exc:
                raise UpstreamUnavailable(f"The upstream's image could not be downloaded ({exc}).",
                                          status=502) from None
            item["url"] = ctx.signer.url_for(stored.key, ctx.settings.media_url_ttl)


async def read_images_reply(response: aiohttp.ClientResponse) -> tuple[dict[str, Any], list[Any]]:
    """An upstream images reply (OpenAI's shape, also GLM's cogview) and its `data` list, the response
    released; a broken or unreadable reply is a 502."""
    try:
        data = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        raise UpstreamUnavailable("The upstream connection broke before its reply.", status=502) from None
    finally:
        response.release()
    try:
        reply = orjson.loads(data)
        items = reply["data"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        items = None
    if not isinstance(items, list):
        raise UpstreamUnavailable("The upstream sent an images reply gengate cannot read.", status=502)
    return reply, items
