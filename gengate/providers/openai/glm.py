"""GLM chat models on `/v1/chat/completions` in OpenAI's shape (interface.md: `glm-4-flash` on `/v1`).

A chat whose model no `openai` channel serves goes to a `zhipu` channel (GLM's auth per channel) when
one serves it. GLM's replies are made OpenAI's: `object` set (`chat.completion`, and
`chat.completion.chunk` on each streamed chunk); GLM puts `usage` on its last content chunk, OpenAI on
a chunk of its own (`choices: []`) after it, sent only when the client asked `include_usage`. GLM is
never sent `stream_options` (GLM reports usage on every stream)."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.responses import Response

from gengate.core.channels import Channel
from gengate.providers.openai import bodies
from gengate.providers.openai.billing import UsageRecord
from gengate.providers.openai.prices import TokenPrice
from gengate.providers.openai.relay import Relay
from gengate.providers.openai.routes import OpenAIRoutes
from gengate.providers.openai.streaming import StreamRelay
from gengate.providers.zhipu.auth import GLMAuth

PROVIDER = "zhipu"
JSON_TYPE = "application/json"
_END = b"\n\n"


class GLMStreamRelay(StreamRelay):
    """GLM's SSE chunks as OpenAI's: `object` on each, the usage moved to a chunk of its own."""

    def _pass(self, data: bytes) -> bytes:
        out = super()._pass(data)
        if not out:
            return out
        events = []
        for event in out.split(_END):
            if not event.strip():
                continue
            events.extend(self._convert(event))
        return b"".join(e + _END for e in events)

    def _convert(self, event: bytes) -> list[bytes]:
        payload = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [event]  # [DONE], comments
        if not isinstance(chunk, dict):
            return [event]
        chunk["object"] = "chat.completion.chunk"
        usage = chunk.pop("usage", None)
        out = [b"data: " + orjson.dumps(chunk)]
        if isinstance(usage, dict) and self.keep_usage:
            tail = {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}
            out.append(b"data: " + orjson.dumps({**tail, "choices": [], "usage": usage}))
        return out


class GLMChat(OpenAIRoutes):
    """The relay's chat steps on `zhipu` channels, answering in OpenAI's shape; shares the OpenAI
    family's usage writer and pricing."""

    stream_relay = GLMStreamRelay

    def __init__(self, parent: OpenAIRoutes) -> None:
        s = parent.ctx.settings
        self.ctx, self.writer, self.pricing = parent.ctx, parent.writer, parent.pricing
        self.parent_relay = parent.relay
        self.relay = Relay(self.ctx.db, self.ctx.router, connect_timeout=s.connect_timeout,
                           read_timeout=s.request_timeout, backoff_base=s.backoff_base, backoff_max=s.backoff_max,
                           provider=PROVIDER, auth=GLMAuth(), on_disabled=self.ctx.config_changed_soon)
        self.ctx.closers.append(self.relay.close)

    def takes(self, model: str) -> bool:
        return not self.parent_relay.serves(model) and self.relay.serves(model)

    async def answer(self, rec: UsageRecord, spec: bodies.CallSpec, price: TokenPrice, path: str,
                     body_for: Callable[[Channel], tuple[bytes, str]],
                     want: Callable[[Channel], bool] | None) -> Response:
        response = await super().answer(rec, spec, price, path, body_for, want)
        try:
            reply = orjson.loads(bytes(response.body))
        except orjson.JSONDecodeError:
            return response
        if isinstance(reply, dict):
            reply["object"] = "chat.completion"
            reply.pop("request_id", None)
        return Response(orjson.dumps(reply), media_type=JSON_TYPE)
