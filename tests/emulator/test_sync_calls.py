"""Synchronous calls (op `create`, no stored job) and streams on the shared fault engine, over real
HTTP, through a test-only "echo" provider built the way the OpenAI or GLM emulator will be."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gengate.emulator import (
    BEARER,
    DONE,
    EmulatorContext,
    ProviderError,
    build_emulator_app,
    epoch_s,
    json_response,
    prefixed_id,
    read_json,
    sse_event,
)
from gengate.emulator.registry import discover_emulators
from gengate.emulator.testing import RunningEmulator, bound_socket, running_emulator, serving

SECRET = "echo-secret"
OTHER = "other-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
ECHO = "/echo/v1/echo"


class EchoEmulator:
    """A whole provider emulator in a few lines: Bearer auth, an error envelope, one call that
    answers or streams."""

    provider: ClassVar[str] = "echo"

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        async def echo(request: Request) -> Response:
            secret = ctx.authenticate(request, BEARER)
            if (fault := await ctx.before(request, "create", secret)) is not None:
                return fault
            body = await read_json(request)
            text, pieces = body.get("text"), body.get("chunks", 4)
            if not isinstance(text, str) or not isinstance(pieces, int) or not 1 <= pieces <= 50:
                raise ProviderError(400, "text must be a string and chunks 1-50", "invalid_request")
            call_id = prefixed_id("echo-")
            if body.get("stream"):
                events = [sse_event({"id": call_id, "index": i, "text": text}) for i in range(pieces)]
                return await ctx.stream_call(request, secret, [*events, DONE])
            return await ctx.answer_call(request, secret, {"id": call_id, "text": text, "created": epoch_s(ctx.now())})

        return [Route("/v1/echo", echo, methods=["POST"])]

    def error_response(
        self, status: int, message: str, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        return json_response({"error": {"message": message, "code": reason or str(status)}}, status, headers)


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(secret=f"{SECRET},{OTHER}", emulators=[EchoEmulator(), *discover_emulators()]) as running:
        yield running


@pytest.fixture
async def http(emu: RunningEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.url("/_emulator/reset")) as reply:
            assert reply.status == 200
        yield session


async def fault(http: aiohttp.ClientSession, emu: RunningEmulator, **rule: Any) -> None:
    async with http.post(emu.url("/_emulator/faults"), json=rule) as reply:
        assert reply.status == 200, await reply.text()


async def creates(http: aiohttp.ClientSession, emu: RunningEmulator, secret: str = SECRET) -> tuple[int, int]:
    """`creates` of the provider, and of one secret."""
    async with http.get(emu.url("/_emulator/stats")) as reply:
        echo = (await reply.json())["echo"]
    return echo["creates"], echo["by_secret"].get(secret, {"creates": 0})["creates"]


async def call(
    http: aiohttp.ClientSession, emu: RunningEmulator, body: Any, headers: Mapping[str, str] = AUTH
) -> tuple[int, Any]:
    async with http.post(emu.url(ECHO), json=body, headers=headers) as reply:
        return reply.status, await reply.json(content_type=None)


async def stream(
    http: aiohttp.ClientSession, emu: RunningEmulator, chunks: int = 4
) -> tuple[aiohttp.ClientResponse, list[bytes], BaseException | None]:
    """The events of a stream as they arrived, and the error that ended it early, if any."""
    events: list[bytes] = []
    body = {"text": "hi", "stream": True, "chunks": chunks}
    async with http.post(emu.url(ECHO), json=body, headers=AUTH) as reply:
        try:
            async for line in reply.content:
                if line.startswith(b"data: "):
                    events.append(line.strip())
        except aiohttp.ClientPayloadError as exc:
            return reply, events, exc
    return reply, events, None


async def test_answer_is_counted_once_per_secret(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    status, body = await call(http, emu, {"text": "hello"})
    assert status == 200 and body["text"] == "hello" and body["id"].startswith("echo-")
    assert abs(body["created"] - time.time()) < 5
    await call(http, emu, {"text": "again"}, {"Authorization": f"bearer {OTHER}"})  # scheme is case-insensitive
    assert await creates(http, emu) == (2, 1)
    assert await creates(http, emu, OTHER) == (2, 1)


async def test_refused_calls_are_not_counted(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    for headers in ({}, {"Authorization": f"Token {SECRET}"}, {"Authorization": "Bearer nope"}):
        status, body = await call(http, emu, {"text": "x"}, headers)
        assert status == 401 and body["error"]["code"] == "401", body
        assert "Authorization: Bearer <key>" in body["error"]["message"]
    assert await call(http, emu, {"text": 3}) == (
        400,
        {"error": {"message": "text must be a string and chunks 1-50", "code": "invalid_request"}},
    )
    async with http.post(emu.url(ECHO), data=b'{"text": "\\ud800"}', headers=AUTH) as reply:
        assert reply.status == 400 and (await reply.json())["error"]["code"] == "400"
    await fault(http, emu, op="create", kind="status", status=429, retry_after=7, message="slow down", count=1)
    async with http.post(emu.url(ECHO), json={"text": "x"}, headers=AUTH) as reply:
        assert reply.status == 429 and reply.headers["Retry-After"] == "7"
        assert (await reply.json())["error"] == {"message": "slow down", "code": "429"}
    await fault(http, emu, op="create", kind="malformed", count=1)
    async with http.post(emu.url(ECHO), json={"text": "x"}, headers=AUTH) as reply:
        assert reply.status == 200
        with pytest.raises(ValueError):
            await reply.json(content_type=None)
    assert await creates(http, emu) == (0, 0)
    assert (await call(http, emu, {"text": "x"}))[0] == 200  # every rule was used up


async def test_rules_for_other_providers_ops_and_secrets_do_not_apply(
    http: aiohttp.ClientSession, emu: RunningEmulator
) -> None:
    await fault(http, emu, provider="vidu", kind="status")
    await fault(http, emu, op="poll", kind="status")
    await fault(http, emu, secret=OTHER, kind="status", status=503)
    assert (await call(http, emu, {"text": "x"}))[0] == 200
    assert (await call(http, emu, {"text": "x"}, {"Authorization": f"Bearer {OTHER}"}))[0] == 503


async def test_timeout_answers_late_and_counts(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, op="create", kind="timeout", seconds=0.6, count=2)
    with pytest.raises(asyncio.TimeoutError):
        await http.post(emu.url(ECHO), json={"text": "x"}, headers=AUTH, timeout=aiohttp.ClientTimeout(total=0.2))
    started = time.monotonic()
    assert (await call(http, emu, {"text": "late"}))[1]["text"] == "late"
    assert time.monotonic() - started >= 0.6
    await asyncio.sleep(0.5)  # the abandoned call finishes its sleep, then answers nobody
    assert await creates(http, emu) == (2, 2)


async def test_drop_after_accept_hangs_up_and_counts(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, kind="drop_after_accept", count=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, emu, {"text": "x"})
    assert await creates(http, emu) == (1, 1)
    assert (await call(http, emu, {"text": "x"}))[0] == 200


async def test_stream_sends_every_chunk(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    reply, events, error = await stream(http, emu, chunks=5)
    assert error is None and reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    assert len(events) == 6 and events[-1] == b"data: [DONE]"
    assert await creates(http, emu) == (1, 1)


@pytest.mark.parametrize(("rule", "sent"), [({}, 2), ({"after_chunks": 0}, 0), ({"after_chunks": 3}, 3)])
async def test_drop_after_accept_cuts_a_stream(
    http: aiohttp.ClientSession, emu: RunningEmulator, rule: dict[str, int], sent: int
) -> None:
    await fault(http, emu, op="create", kind="drop_after_accept", count=1, **rule)
    reply, events, error = await stream(http, emu, chunks=6)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
    assert len(events) == sent and b"[DONE]" not in b"".join(events)
    assert error is not None  # the body ended without its last chunk: the connection was cut
    assert await creates(http, emu) == (1, 1)  # a cut stream is a call
    _, events, error = await stream(http, emu, chunks=6)
    assert error is None and len(events) == 7


async def test_timeout_delays_a_streams_headers(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    await fault(http, emu, kind="timeout", seconds=0.5, count=1)
    started = time.monotonic()
    body = {"text": "hi", "stream": True}
    async with http.post(emu.url(ECHO), json=body, headers=AUTH) as reply:
        assert time.monotonic() - started >= 0.5
        assert (await reply.read()).endswith(b"data: [DONE]\n\n")


async def test_bad_after_chunks_is_refused(http: aiohttp.ClientSession, emu: RunningEmulator) -> None:
    for value in (-1, "2", True, 1.5):
        rule = {"kind": "drop_after_accept", "after_chunks": value}
        async with http.post(emu.url("/_emulator/faults"), json=rule) as reply:
            assert reply.status == 400, value


async def test_stream_cut_when_mounted_in_another_app() -> None:
    """As `gengate serve --sandbox` mounts the emulators: in a FastAPI app, below a prefix."""
    sock, base = bound_socket()
    outer = FastAPI()
    inner = build_emulator_app(secret=SECRET, public_base=base + "/_sandbox", emulators=[EchoEmulator()])
    outer.router.routes.insert(0, Mount("/_sandbox", app=inner))
    with serving(outer, sock):
        async with aiohttp.ClientSession() as http:
            rule = {"kind": "drop_after_accept", "after_chunks": 1}
            async with http.post(base + "/_sandbox/_emulator/faults", json=rule) as reply:
                assert reply.status == 200
            events: list[bytes] = []
            body = {"text": "hi", "stream": True}
            with pytest.raises(aiohttp.ClientPayloadError):
                async with http.post(base + "/_sandbox" + ECHO, json=body, headers=AUTH) as reply:
                    async for line in reply.content:
                        if line.startswith(b"data: "):
                            events.append(line)
            assert len(events) == 1
