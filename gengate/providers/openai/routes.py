"""The OpenAI-compatible relay under `/v1` (openai.md; interface.md "Synchronous calls"): models,
chat completions (stream and not; GPTs), Responses, embeddings, images generations and edits.

Per call: the key from the in-process cache, the body read once (only `model`, `stream`,
`stream_options` and the token caps looked at), a reservation for a limited key, the upstream call
through `Relay` (failover before the first byte), the reply relayed as the upstream's bytes, and a
usage record (with the settlement) queued for the batched writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from gengate.core.channels import Channel
from gengate.core.errors import GengateError, InvalidRequest, ModelNotAllowed, UpstreamUnavailable
from gengate.core.keys import ClientKey
from gengate.providers.openai import bodies
from gengate.providers.openai.billing import UsageRecord, UsageWriter
from gengate.providers.openai.errors import openai_error
from gengate.providers.openai.image_table import MODELS as IMAGE_MODELS
from gengate.providers.openai.images import Images
from gengate.providers.openai.prices import Pricing, TokenPrice, price_model, reservation
from gengate.providers.openai.relay import MAX_TRIES, Opened, Relay
from gengate.providers.openai.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    EmbeddingsReply,
    EmbeddingsRequest,
    ImageEditRequest,
    ImagesReply,
    ImagesRequest,
    Model,
    ModelList,
    OpenAIError,
    ResponseObject,
    ResponsesRequest,
)
from gengate.providers.openai.streaming import SSE_HEADERS, RelayedStream, StreamRelay
from gengate.providers.videos.table import MODELS as VIDEO_MODELS
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer

FAMILY = Family(name="openai", prefix="/v1", render_error=openai_error, error_model=OpenAIError)
JSON_TYPE = "application/json"
MODEL_CREATED = {"gpt-4o-mini": 1721172741, "gpt-4o": 1715367049, "text-embedding-3-small": 1705948997,
                 "dall-e-3": 1698785189, "dall-e-2": 1698798177}


def speaks_responses(channel: Channel) -> bool:
    return channel.options.get("responses", "true").lower() not in ("false", "0", "no")


def not_found(model: str) -> ModelNotAllowed:
    return ModelNotAllowed(f"The model `{model}` does not exist or you do not have access to it.")


def _tokens(usage: dict[str, Any] | None) -> tuple[int, int] | None:
    if not usage:
        return None
    inp = usage.get("prompt_tokens", usage.get("input_tokens"))
    out = usage.get("completion_tokens", usage.get("output_tokens", 0))
    if not isinstance(inp, int) or not isinstance(out, int):
        return None
    return inp, out


class OpenAIRoutes:
    stream_relay: type[StreamRelay] = StreamRelay  # how an upstream stream becomes the client's

    def __init__(self, ctx: AppContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.relay = Relay(ctx.db, ctx.router, connect_timeout=s.connect_timeout, read_timeout=s.request_timeout,
                           backoff_base=s.backoff_base, backoff_max=s.backoff_max, on_disabled=ctx.config_changed_soon)
        self.writer = UsageWriter(ctx.db, ctx.credits)
        self.pricing = Pricing(ctx.engine.prices)
        self.images = Images(self)
        from gengate.providers.openai.glm import GLMChat  # here: glm.py subclasses this class

        self.glm = GLMChat(self)  # GLM models no openai channel serves, on zhipu channels
        # Closed newest first: streams and the session, then the writer flushes what they queued.
        ctx.closers.append(self.writer.close)
        ctx.closers.append(self.relay.close)

    # ------------------------------------------------------------------ shared steps
    async def key(self, request: Request) -> ClientKey:
        return await self.ctx.authenticate(bearer(request))

    def task_model_served(self, name: str) -> bool:
        """An image or video model of a task provider (/v1/images/generations, /v1/videos) that a
        channel serves."""
        router = self.ctx.router
        if (image := IMAGE_MODELS.get(name)) is not None and router.has_channel(image.provider, name):
            return True
        video = VIDEO_MODELS.get(name)
        return video is not None and any(router.has_channel(r.provider, name) for r in video.routes)

    def check_model(self, key: ClientKey, model: str) -> None:
        if not key.allows(model) or not self.relay.serves(model):
            raise not_found(model)

    def any_channel(self, model: str, want: Callable[[Channel], bool]) -> bool:
        return any(c.provider == "openai" and c.enabled and not c.deleted and c.serves(model) and want(c)
                   for c in self.ctx.router.channels.values())

    async def reserve(self, rec: UsageRecord, amount: int) -> None:
        if rec.limited:
            amount = reservation(amount)
            rec.lease = await self.writer.leases.reserve(rec.key_id, amount)
            rec.reserved = amount  # only once taken: a refused reservation has nothing to give back

    def finish(self, rec: UsageRecord, status: int, error: str | None = None) -> None:
        rec.status, rec.error = status, error
        if status >= 400:
            rec.credits = 0
        self.writer.add(rec)

    # ------------------------------------------------------------------ models
    async def models(self, request: Request) -> Response:
        """Every model this key may use on a `/v1` route and a live channel serves: the relay's (and
        GLM's chat models, answered on /v1 too), then the image and video models of the task providers."""
        key = await self.key(request)
        router = self.ctx.router
        names: dict[str, None] = {}
        for channel in router.channels.values():
            if channel.provider not in ("openai", "zhipu") or not channel.enabled or channel.deleted:
                continue
            if not any(s.enabled for s in channel.secrets):
                continue
            for name in (*(channel.models or ()), *channel.model_map):
                if not any(c in name for c in "*?[") and channel.serves(name) and key.allows(name):
                    names[name] = None
        for name in (*IMAGE_MODELS, *VIDEO_MODELS):
            if key.allows(name) and self.task_model_served(name):
                names[name] = None
        return Response(orjson.dumps({"object": "list", "data": [_model(n) for n in names]}), media_type=JSON_TYPE)

    async def model(self, request: Request) -> Response:
        key = await self.key(request)
        name = request.path_params["model"]
        served = self.ctx.router.has_channel("zhipu", name) or self.task_model_served(name)
        if not (served and key.allows(name)):
            self.check_model(key, name)
        return Response(orjson.dumps(_model(name)), media_type=JSON_TYPE)

    # ------------------------------------------------------------------ JSON calls
    async def chat(self, request: Request) -> Response:
        return await self.json_call(request, "chat", "/chat/completions", bodies.chat_spec)

    async def responses(self, request: Request) -> Response:
        return await self.json_call(request, "responses", "/responses", bodies.responses_spec, speaks_responses)

    async def embeddings(self, request: Request) -> Response:
        return await self.json_call(request, "embeddings", "/embeddings", bodies.embeddings_spec)

    async def json_call(self, request: Request, route: str, path: str,
                        spec_of: Callable[[dict[str, Any], bytes], bodies.CallSpec],
                        want: Callable[[Channel], bool] | None = None) -> Response:
        key = await self.key(request)
        settings = self.ctx.settings
        raw = await bodies.read_body(request, settings.max_body_bytes,
                                     settings.max_media_body_bytes if route != "embeddings" else None)
        body = bodies.parse_object(raw)
        model = body.get("model") if isinstance(body.get("model"), str) else "?"
        rec = UsageRecord(key.id, route, model, price_model(model), limited=key.credits is not None)
        api = self.glm if route == "chat" and self.glm.takes(model) else self
        try:
            spec = spec_of(body, raw)
            rec.stream = spec.stream
            api.check_model(key, spec.model)
            if want is not None and not self.any_channel(spec.model, want):
                raise InvalidRequest(f"The model `{spec.model}` is not served on {FAMILY.prefix}{path} here; "
                                     "use /v1/chat/completions.", param="model")
            price = self.pricing.tokens(rec.price_model)
            out_cap = spec.max_output if spec.max_output is not None else self.pricing.reserve_output_tokens
            await self.reserve(rec, price.cost(spec.input_estimate, out_cap))
        except GengateError as exc:
            self.finish(rec, openai_error(exc).status_code, exc.message)
            raise
        ask_usage = route == "chat" and spec.stream and not spec.include_usage

        def body_for(channel: Channel) -> tuple[bytes, str]:
            if api is not self:
                return bodies.glm_body(body, channel, spec.model)
            upstream = channel.upstream_model(spec.model)
            if upstream != spec.model or ask_usage:
                return bodies.with_changes(body, upstream if upstream != spec.model else None, ask_usage), upstream
            return raw, upstream

        done = False
        try:
            if spec.stream:
                reply = await api.stream(rec, spec, price, path, body_for, want)
            else:
                reply = await api.answer(rec, spec, price, path, body_for, want)
            done = True
            return reply
        except GengateError as exc:
            done = True
            self.finish(rec, openai_error(exc).status_code, exc.message)
            raise
        finally:
            if not done:  # cancelled (the client went away) before a reply: nothing charged
                self.finish(rec, 499, "client closed the request")

    async def answer(self, rec: UsageRecord, spec: bodies.CallSpec, price: TokenPrice, path: str,
                     body_for: Callable[[Channel], tuple[bytes, str]],
                     want: Callable[[Channel], bool] | None) -> Response:
        opened = await self.relay.open(spec.model, path, body_for, JSON_TYPE, want)
        rec.channel_id = opened.channel.id
        try:
            data = await opened.response.read()
        except (aiohttp.ClientError, TimeoutError):
            self.relay.fail_after_headers(opened)
            raise UpstreamUnavailable("The upstream connection broke before its reply.", status=502) from None
        finally:
            opened.response.release()
        try:
            reply = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.relay.fail_after_headers(opened)
            raise UpstreamUnavailable("The upstream sent a reply that is not JSON.", status=502) from None
        tokens = _tokens(reply.get("usage") if isinstance(reply, dict) else None)
        rec.input_tokens, rec.output_tokens = tokens or (spec.input_estimate, 0)
        rec.credits = price.cost(rec.input_tokens, rec.output_tokens)
        if opened.upstream_model != spec.model and isinstance(reply, dict) and "model" in reply:
            reply["model"] = spec.model  # replies show the client's model name
            data = orjson.dumps(reply)
        self.finish(rec, 200)
        return Response(data, media_type=JSON_TYPE)

    async def stream(self, rec: UsageRecord, spec: bodies.CallSpec, price: TokenPrice, path: str,
                     body_for: Callable[[Channel], tuple[bytes, str]],
                     want: Callable[[Channel], bool] | None) -> Response:
        exclude: set[int] = set()
        last_channel: int | None = None
        opened: Opened | None = None
        first = b""
        while opened is None:
            opened = await self.relay.open(spec.model, path, body_for, JSON_TYPE, want, exclude=frozenset(exclude),
                                           last_channel=last_channel, tried=len(exclude))
            try:  # the first bytes, before the client sees anything: a stream cut here fails over
                first = await opened.response.content.readany()
            except (aiohttp.ClientError, TimeoutError):
                first = b""
            if not first:
                opened.response.close()
                self.relay.fail_after_headers(opened)
                exclude.add(opened.secret.id)
                last_channel = opened.channel.id
                opened = None
                if len(exclude) >= MAX_TRIES:
                    raise UpstreamUnavailable("Every channel failed for this request.", status=502)
        rec.channel_id = opened.channel.id
        rename = None
        if opened.upstream_model != spec.model:
            rename = (b'"model":' + orjson.dumps(opened.upstream_model), b'"model":' + orjson.dumps(spec.model))
        relayed = self.stream_relay(opened.response, first, keep_usage=spec.include_usage, rename=rename)
        response = opened.response

        async def on_end() -> None:
            response.close()  # ends the upstream call if it is still running (the client went away)
            tokens = _tokens(relayed.usage)
            if tokens is None:  # no usage chunk: bill what was relayed
                tokens = (spec.input_estimate, relayed.events)
            rec.input_tokens, rec.output_tokens = tokens
            rec.credits = price.cost(*tokens)
            self.finish(rec, 200, None if relayed.completed else "stream ended early")

        return RelayedStream(relayed, on_end, SSE_HEADERS)

    # ------------------------------------------------------------------ images
    async def image_generations(self, request: Request) -> Response:
        return await self.images.generate(request)

    async def image_edits(self, request: Request) -> Response:
        return await self.images.edit(request)


OWNERS = {"dall": "system", "text": "system", "glm": "zhipu", "cogview": "zhipu", "cogvideox": "zhipu",
          "kling": "kling", "gen4": "runway", "gen4.5": "runway", "veo3.1": "runway", "ray": "luma",
          "photon": "luma", "viduq1": "vidu"}


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": MODEL_CREATED.get(name, 1700000000),
            "owned_by": OWNERS.get(name.split("-")[0].split("_")[0], "openai")}


def _lean(route: BaseRoute) -> BaseRoute:
    """Serve a hot route with the family's handler alone: it renders every error itself (Family.wrap),
    so Starlette's per-request exception-handler lookup adds nothing but time."""
    endpoint = route.endpoint  # type: ignore[attr-defined]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    route.app = app  # type: ignore[attr-defined]
    return route


def routes(ctx: AppContext) -> list[BaseRoute]:
    api = OpenAIRoutes(ctx)
    family_routes: list[BaseRoute] = [
        FAMILY.route("/models", api.models, ["GET"], name="list_models", summary="List models", reply=ModelList),
        FAMILY.route("/models/{model:path}", api.model, ["GET"], name="retrieve_model", summary="Retrieve a model",
                     reply=Model),
        _lean(FAMILY.route("/chat/completions", api.chat, ["POST"], name="create_chat_completion",
                           summary="Chat completion (stream: text/event-stream)", body=ChatCompletionRequest,
                           reply=ChatCompletion)),
        _lean(FAMILY.route("/responses", api.responses, ["POST"], name="create_response",
                           summary="Create a response", body=ResponsesRequest, reply=ResponseObject)),
        _lean(FAMILY.route("/embeddings", api.embeddings, ["POST"], name="create_embeddings",
                           summary="Embeddings", body=EmbeddingsRequest, reply=EmbeddingsReply)),
        FAMILY.route("/images/generations", api.image_generations, ["POST"], name="create_image",
                     summary="Generate images", body=ImagesRequest, reply=ImagesReply),
        FAMILY.route("/images/edits", api.image_edits, ["POST"], name="edit_image", summary="Edit an image",
                     body=ImageEditRequest, body_media_type="multipart/form-data", reply=ImagesReply),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
