"""`/v1/images/generations` for the image models no `openai` channel serves (image_table.py): CogView
relayed synchronously to a `zhipu` channel, and the task providers' image models (Kling, Runway, Luma)
created as tasks through the task engine and awaited up to `GENGATE_IMAGE_WAIT` seconds.

Replies are OpenAI's images shape: `url` is gengate's signed media URL, `b64_json` the stored bytes.
A task is priced by its adaptor (per image by model and size), reserved when created and settled by
the engine; a failed task is refunded by the engine, a task still running at the deadline is
cancelled (refunded) and the client gets an OpenAI-style error.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from sqlalchemy.engine import Row
from starlette.responses import Response

from gengate.core import tasks as store
from gengate.core.errors import Conflict, GengateError, InvalidRequest, ModelNotAllowed, UpstreamUnavailable
from gengate.core.keys import ClientKey
from gengate.core.states import TERMINAL, TaskState
from gengate.providers.openai.billing import UsageRecord
from gengate.providers.openai.errors import openai_error
from gengate.providers.openai.image_table import MODELS, ImageRoute, aspect_of, fill
from gengate.providers.openai.relay import Relay
from gengate.storage.rehost import RehostError, rehost
from gengate.web.tasks import KeyResolver

if TYPE_CHECKING:
    from gengate.providers.openai.images import ImageCall
    from gengate.providers.openai.routes import OpenAIRoutes

JSON_TYPE = "application/json"
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10, sock_read=60)
WAKE_EVERY = 0.5  # seconds between two reads of the task when no change is notified


class ImageTimeout(UpstreamUnavailable):
    status = 504


class ClientGone(UpstreamUnavailable):
    status = 499  # nginx's "client closed request": nobody reads the reply, the log and metrics do


class ProviderImages:
    def __init__(self, routes: OpenAIRoutes) -> None:
        self.r = routes

    @property
    def zhipu(self) -> Relay:
        return self.r.glm.relay  # the `zhipu` channels' relay, shared with GLM chat

    @staticmethod
    def serves(model: str) -> bool:
        return model in MODELS

    async def generate(self, key: ClientKey, call: ImageCall, fmt: str,
                       disconnected: Callable[[], Awaitable[bool]] | None = None) -> Response:
        """`disconnected` tells whether the client went away: a task-backed image it no longer waits
        for is cancelled (and refunded) instead of being made and charged for nobody."""
        route = MODELS[call.model]
        ctx = self.r.ctx
        if not key.allows(call.model) or not ctx.router.has_channel(route.provider, call.model):
            raise ModelNotAllowed(f"The model `{call.model}` does not exist or you do not have access to it.")
        if call.n > route.max_n:
            raise InvalidRequest(f"Invalid 'n': {call.model} supports at most n={route.max_n}.", param="n")
        aspect = aspect_of(call.size)
        values = {"model": call.model, "prompt": call.prompt, "n": call.n, "size": call.size, "aspect": aspect,
                  "ratio": route.ratios.get(aspect, "")}
        native = fill(route.body, values)
        if route.sync:
            keys = await self._sync(key, call, native)
        else:
            keys = await self._task(key, route, native, disconnected)
        data = [await self._item(k, fmt) for k in keys]
        return Response(orjson.dumps({"created": int(time.time()), "data": data}), media_type=JSON_TYPE)

    async def _item(self, storage_key: str, fmt: str) -> dict[str, Any]:
        ctx = self.r.ctx
        if fmt == "b64_json":
            data = b"".join([chunk async for chunk in ctx.storage.open_range(storage_key)])
            return {"b64_json": base64.b64encode(data).decode()}
        return {"url": ctx.signer.url_for(storage_key, ctx.settings.media_url_ttl)}

    # ------------------------------------------------------------------ synchronous (CogView)
    async def _sync(self, key: ClientKey, call: ImageCall, native: dict[str, Any]) -> list[str]:
        r, relay = self.r, self.zhipu
        rec = UsageRecord(key.id, "images", call.model, call.model, limited=key.credits is not None)
        table = r.pricing.table
        try:
            each = max(1, table.get(f"zhipu:image:{call.model}", table.get("zhipu:image:*", 1)))
            await r.reserve(rec, each)

            def body_for(channel: Any) -> tuple[bytes, str]:
                upstream = channel.upstream_model(call.model)
                return orjson.dumps({**native, "model": upstream}), upstream

            opened = await relay.open(call.model, "/images/generations", body_for, JSON_TYPE)
            rec.channel_id = opened.channel.id
            try:
                raw = await opened.response.read()
            except (aiohttp.ClientError, TimeoutError):
                raise UpstreamUnavailable("The upstream connection broke before its reply.", status=502) from None
            finally:
                opened.response.release()
            try:
                items = orjson.loads(raw)["data"]
                urls = [i["url"] for i in items if isinstance(i, dict) and isinstance(i.get("url"), str)]
                assert urls
            except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError):
                raise UpstreamUnavailable("The upstream sent an images reply gengate cannot read.",
                                          status=502) from None
            keys = []
            for url in urls:
                try:
                    stored = await rehost(relay.session, url, r.ctx.storage, "zhipu/images", timeout=DOWNLOAD_TIMEOUT)
                except RehostError as exc:
                    raise UpstreamUnavailable(f"The upstream's image could not be downloaded ({exc}).",
                                              status=502) from None
                keys.append(stored.key)
            rec.output_tokens = len(keys)
            rec.credits = each * len(keys)
        except GengateError as exc:
            r.finish(rec, openai_error(exc).status_code, exc.message)
            raise
        except BaseException:
            r.finish(rec, 499, "client closed the request")
            raise
        r.finish(rec, 200)
        return keys

    # ------------------------------------------------------------------ task-backed
    async def _task(self, key: ClientKey, route: ImageRoute, native: dict[str, Any],
                    disconnected: Callable[[], Awaitable[bool]] | None = None) -> list[str]:
        ctx = self.r.ctx
        adaptor = ctx.adaptors[route.provider]
        resolver = KeyResolver(ctx, key)
        prepare_action = getattr(adaptor, "prepare_action", None)
        if route.action is not None and prepare_action is not None:
            prepared = await prepare_action(route.action, native, resolver)
        else:
            prepared = await adaptor.prepare(native, resolver)
        row = await ctx.engine.create(key, adaptor, prepared)
        row = await self._await(key, row, disconnected)
        state = TaskState(row.state)
        if state is not TaskState.SUCCEEDED:
            reason = row.error_message or f"the task ended {state.value}"
            raise UpstreamUnavailable(f"The image generation failed: {reason}", status=502)
        async with ctx.db.read() as conn:
            outputs = await store.outputs_of(conn, row.id)
        keys = [json.loads(o.files).get(route.url_field) for o in outputs]
        found = [k for k in keys if isinstance(k, str)]
        if not found:
            raise UpstreamUnavailable("The image generation produced no image.", status=502)
        return found

    async def _await(self, key: ClientKey, row: Row[Any],
                     disconnected: Callable[[], Awaitable[bool]] | None = None) -> Row[Any]:
        """The task once terminal; at the deadline, or when the client has gone, it is cancelled
        (refunded) and a 504 (or, for nobody, a 499) raised."""
        ctx = self.r.ctx
        deadline = time.monotonic() + ctx.settings.image_wait
        wake = ctx.notifier.subscribe(row.id, row.updated_at)
        try:
            while TaskState(row.state) not in TERMINAL:
                left = deadline - time.monotonic()
                gone = disconnected is not None and await disconnected()
                if left <= 0 or gone:
                    try:
                        await ctx.engine.cancel(key, row.public_id)
                    except Conflict:  # it ended meanwhile: answer what it became
                        async with ctx.db.read() as conn:
                            fresh = await store.get_row(conn, row.id)
                        if fresh is not None and TaskState(fresh.state) in TERMINAL:
                            return fresh
                    if gone:
                        raise ClientGone("The client closed the request; its image task was cancelled and refunded.")
                    raise ImageTimeout(f"The image was not ready within {ctx.settings.image_wait:g} seconds; "
                                       "its task was cancelled and refunded.", status=504)
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=min(left, WAKE_EVERY))
                except TimeoutError:
                    pass
                async with ctx.db.read() as conn:
                    fresh = await store.get_row(conn, row.id)
                if fresh is None:
                    raise UpstreamUnavailable("The image task disappeared.", status=502)
                row = fresh
                ctx.notifier.seen(row.id, row.updated_at)
        finally:
            ctx.notifier.unsubscribe(row.id, wake)
        return row
