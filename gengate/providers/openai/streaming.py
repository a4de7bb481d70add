"""Relaying an upstream SSE stream to the client as it arrives.

Events are forwarded whole, as the upstream's bytes (an event split across two reads waits for its
end; nothing else is held back). Only an event that carries a non-null `usage` object is parsed: the
chat usage chunk (`choices: []`, before `[DONE]`) or the Responses `response.completed` event. A
usage chunk the client did not ask for is dropped from its stream. When the stream ends early (the
upstream breaks, or the client goes away) the call is billed for what was relayed: the input
estimate and one output token per relayed event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger("gengate.openai.stream")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_USAGE_MARK = b'"usage":{'
_EVENT_END = b"\n\n"


def usage_of(event: bytes) -> dict[str, Any] | None:
    """The `usage` object of one SSE event (`data:` lines joined), or None."""
    data = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    usage = value.get("usage")
    if usage is None and isinstance(value.get("response"), dict):  # Responses: response.completed
        usage = value["response"].get("usage")
    return usage if isinstance(usage, dict) else None


class StreamRelay:
    """The client's stream body: upstream events in, the same bytes out, usage picked on the way."""

    def __init__(self, response: aiohttp.ClientResponse, first: bytes, *, keep_usage: bool,
                 rename: tuple[bytes, bytes] | None) -> None:
        self.response = response
        self.first = first
        self.keep_usage = keep_usage  # the client asked for the usage chunk
        self.rename = rename  # (upstream model bytes, client model bytes) for a mapped model
        self.usage: dict[str, Any] | None = None
        self.events = 0  # events relayed to the client
        self.completed = False  # the upstream's stream ended normally
        self.cut = False  # the client went away (the upstream response was closed under the relay)
        self._tail = b""

    def _pass(self, data: bytes) -> bytes:
        """The complete events of `data` (after what was held back) to send now."""
        data = self._tail + data if self._tail else data
        end = data.rfind(_EVENT_END)
        crlf = data.rfind(b"\r\n\r\n")  # a server that ends its lines with CRLF
        if crlf >= 0 and crlf + 2 > end:
            end = crlf + 2
        if end < 0:
            self._tail = data
            return b""
        out, self._tail = data[:end + 2], data[end + 2:]
        if _USAGE_MARK in out:
            out = self._take_usage(out)
        if self.rename is not None:
            out = out.replace(self.rename[0], self.rename[1])
        self.events += out.count(_EVENT_END) or out.count(b"\r\n\r\n")
        return out

    def _take_usage(self, block: bytes) -> bytes:
        kept = []
        for event in block.split(_EVENT_END):
            if _USAGE_MARK in event:
                usage = usage_of(event)
                if usage is not None:
                    self.usage = usage
                    if not self.keep_usage and b'"choices":[]' in event:
                        continue
            kept.append(event)
        return _EVENT_END.join(kept)

    async def body(self) -> AsyncIterator[bytes]:
        out = self._pass(self.first)
        if out:
            yield out
        async for data in self.response.content.iter_any():
            out = self._pass(data)
            if out:
                yield out
        if self._tail.strip():  # a last event without its blank line
            tail, self._tail = self._tail + _EVENT_END, b""
            out = self._pass(tail)
            if out:
                yield out
        self.completed = not self.cut


class RelayedStream(Response):
    """The client's SSE response: each relayed block sent as it comes, over plain ASGI (one small
    watcher task per stream instead of a task group). The watcher notices the client going away
    and closes the upstream response, which ends the relay; `on_end` then always runs once (the
    upstream connection released, the call billed and recorded), however the stream ended."""

    media_type = "text/event-stream"

    def __init__(self, relay: StreamRelay, on_end: Callable[[], Awaitable[None]], headers: dict[str, str]) -> None:
        self.relay, self._on_end = relay, on_end
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = self.relay

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            relay.cut = True
            relay.response.close()  # the upstream read ends: the relay loop stops

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for block in relay.body():
                await send({"type": "http.response.body", "body": block, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # the upstream broke, or the client left
            log.info("stream ended early: %s", type(exc).__name__)
        finally:
            watcher.cancel()
            await self._on_end()
