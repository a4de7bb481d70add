"""Zhipu GLM in its own v4 shape under `/api/paas/v4` (zhipu.md): chat completions (stream and not),
relayed to `zhipu` channels through the OpenAI family's relay (failover, cooldown, token billing)
with GLM's auth per channel (auth.py) and GLM's error envelope (errors.py); videos and asynchronous
chats through the task engine (tasks.py), both read at `/async-result/{id}`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.channels import Channel
from gengate.core.errors import GengateError, ModelNotAllowed
from gengate.core.keys import ClientKey
from gengate.providers.openai import bodies as oa_bodies
from gengate.providers.openai.billing import UsageRecord, UsageWriter
from gengate.providers.openai.prices import Pricing, price_model
from gengate.providers.openai.relay import Relay
from gengate.providers.openai.routes import OpenAIRoutes
from gengate.providers.zhipu import bodies, images
from gengate.providers.zhipu.auth import GLMAuth
from gengate.providers.zhipu.errors import GLMError, glm_error
from gengate.providers.zhipu.schemas import AsyncTask, ChatReply, ChatRequest, ImagesReply, ImagesRequest, VideoRequest
from gengate.providers.zhipu.tasks import ZhipuTaskAdaptor
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.tasks import create_task, read_task

PROVIDER = "zhipu"
FAMILY = Family(name="zhipu", prefix="/api/paas/v4", render_error=glm_error, error_model=GLMError)


class ZhipuRoutes(OpenAIRoutes):
    """The relay's steps (reserve, answer, stream, finish) on `zhipu` channels, in GLM's shape."""

    def __init__(self, ctx: AppContext) -> None:  # no super(): its own relay, writer and pricing
        s = ctx.settings
        self.ctx = ctx
        self.auth = GLMAuth()
        self.relay = Relay(ctx.db, ctx.router, connect_timeout=s.connect_timeout, read_timeout=s.request_timeout,
                           backoff_base=s.backoff_base, backoff_max=s.backoff_max, provider=PROVIDER,
                           auth=self.auth, on_disabled=ctx.config_changed_soon)
        self.writer = UsageWriter(ctx.db, ctx.credits)
        self.pricing = Pricing(ctx.engine.prices)
        ctx.closers.append(self.writer.close)
        ctx.closers.append(self.relay.close)

    def check_model(self, key: ClientKey, model: str) -> None:
        if not key.allows(model) or not self.relay.serves(model):
            raise ModelNotAllowed(f"Model not found: {model}", code="1211")

    async def glm_chat(self, request: Request) -> Response:
        key = await self.key(request)
        settings = self.ctx.settings
        raw = await oa_bodies.read_body(request, settings.max_body_bytes, settings.max_media_body_bytes)
        try:
            body = oa_bodies.parse_object(raw)
        except GengateError as exc:
            raise bodies.bad(exc.message, "1210") from None
        model = body.get("model") if isinstance(body.get("model"), str) else "?"
        rec = UsageRecord(key.id, "chat", model, price_model(model), limited=key.credits is not None)
        try:
            spec = bodies.chat_spec(body, raw)
            rec.stream = spec.stream
            self.check_model(key, spec.model)
            price = self.pricing.tokens(rec.price_model)
            out_cap = spec.max_output if spec.max_output is not None else self.pricing.reserve_output_tokens
            await self.reserve(rec, price.cost(spec.input_estimate, out_cap))
        except GengateError as exc:
            self.finish(rec, glm_error(exc).status_code, exc.message)
            raise

        def body_for(channel: Channel) -> tuple[bytes, str]:
            upstream = channel.upstream_model(spec.model)
            if upstream != spec.model:
                return oa_bodies.with_changes(body, upstream, False), upstream
            return raw, upstream

        done = False
        try:
            if spec.stream:
                reply = await self.stream(rec, spec, price, "/chat/completions", body_for, None)
            else:
                reply = await self.answer(rec, spec, price, "/chat/completions", body_for, None)
            done = True
            return reply
        except GengateError as exc:
            done = True
            self.finish(rec, glm_error(exc).status_code, exc.message)
            raise
        finally:
            if not done:  # cancelled (the client went away) before a reply: nothing charged
                self.finish(rec, 499, "client closed the request")



def routes(ctx: AppContext) -> list[BaseRoute]:
    api = ZhipuRoutes(ctx)
    adaptor = ctx.adaptors[PROVIDER]
    assert isinstance(adaptor, ZhipuTaskAdaptor)
    chat_adaptor = adaptor.for_chat()

    async def create_video(request: Request) -> Response:
        key = await api.key(request)
        view = await create_task(ctx, request, key, adaptor, route="zhipu:/videos/generations",
                                 body_limit=ctx.settings.max_media_body_bytes)
        return JSONResponse(adaptor.render(view))

    async def create_async_chat(request: Request) -> Response:
        key = await api.key(request)
        view = await create_task(ctx, request, key, chat_adaptor, route="zhipu:/async/chat/completions")
        return JSONResponse(adaptor.render(view))

    async def async_result(request: Request) -> Response:
        key = await api.key(request)
        view = await read_task(ctx, key, request.path_params["task_id"], PROVIDER)
        return JSONResponse(adaptor.render(view))

    async def image_generations(request: Request) -> Response:
        return await images.generate(api, request)

    family_routes: list[BaseRoute] = [
        FAMILY.route("/images/generations", image_generations, ["POST"], name="create_image",
                     summary="CogView image (synchronous)", body=ImagesRequest, reply=ImagesReply),
        FAMILY.route("/chat/completions", api.glm_chat, ["POST"], name="create_chat_completion",
                     summary="GLM chat completion (stream: text/event-stream)", body=ChatRequest, reply=ChatReply),
        FAMILY.route("/videos/generations", create_video, ["POST"], name="create_video",
                     summary="CogVideoX video (asynchronous: poll /async-result/{id})", body=VideoRequest,
                     reply=AsyncTask),
        FAMILY.route("/async/chat/completions", create_async_chat, ["POST"], name="create_async_chat_completion",
                     summary="GLM chat completion, asynchronous: poll /async-result/{id}", body=ChatRequest,
                     reply=AsyncTask),
        FAMILY.route("/async-result/{task_id}", async_result, ["GET"], name="async_result",
                     summary="An asynchronous task's result (a video or a chat)", reply=AsyncTask),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
