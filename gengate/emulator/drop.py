"""Close a request's TCP connection without sending any HTTP reply.

ASGI has no message for "hang up": a server answers 500 to an app that raises or returns without a
response. The only way to look like a provider that crashed mid-request is to close the socket
itself. uvicorn's `send` is a bound method of its request cycle, which holds the transport;
middleware wraps `send` in closures, so we walk bound methods and closure cells to reach it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

_MAX_DEPTH = 8


def find_transport(send: Any) -> Any | None:
    seen: set[int] = set()
    frontier: list[Any] = [send]
    for _ in range(_MAX_DEPTH):
        following: list[Any] = []
        for obj in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            transport = getattr(obj, "transport", None)
            if _is_transport(transport):
                return transport  # type: ignore[no-any-return]
            owner = getattr(obj, "__self__", None)
            if owner is not None:
                following.append(owner)
            wrapped = getattr(obj, "__wrapped__", None) or getattr(obj, "func", None)
            if wrapped is not None:
                following.append(wrapped)
            for cell in getattr(obj, "__closure__", None) or ():
                try:
                    following.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    continue
        frontier = [obj for obj in following if callable(obj) or hasattr(obj, "transport")]
    return None


def _is_transport(obj: Any) -> bool:
    # Duck-typed: uvloop's transports do not derive from asyncio.BaseTransport.
    return all(callable(getattr(obj, name, None)) for name in ("close", "is_closing", "get_extra_info"))


class ConnectionDropped(Exception):
    """Raised inside a started reply, which makes the server abort the connection."""


async def drop_connection(request: Request) -> Response:
    """Close the connection and return a reply that nobody will receive (the server sees the client
    gone and discards it). When no transport can be found (an unusual server or middleware in
    front), fall back to starting a reply and failing it mid-body: the client still gets no usable
    answer, though it does see a status line."""
    transport = find_transport(request._send)
    if transport is None:
        return StreamingResponse(_broken_body(), media_type="application/json")
    transport.close()
    # Let the server notice the closed connection (connection_lost runs on a later loop turn), so
    # that it does not write a 500 in place of the reply we withhold.
    for _ in range(3):
        await asyncio.sleep(0)
    return Response(status_code=204)


async def _broken_body() -> AsyncIterator[bytes]:
    raise ConnectionDropped("emulated fault: connection dropped after accept")
    yield b""  # pragma: no cover - makes this an async generator


async def cut_after(request: Request, chunks: AsyncIterable[bytes], after_chunks: int | None) -> AsyncIterator[bytes]:
    """Relay `chunks`; with `after_chunks` set, stop after that many and close the connection, so
    the client sees a stream that ends without its terminator (no final empty chunk)."""
    if after_chunks is None:
        async for chunk in chunks:
            yield chunk
        return
    sent = 0
    if after_chunks > 0:
        async for chunk in chunks:
            yield chunk
            sent += 1
            if sent >= after_chunks:
                break
    # Let the server write what was yielded before the socket goes (close() flushes its buffer).
    await asyncio.sleep(0)
    transport = find_transport(request._send)
    if transport is None:
        raise ConnectionDropped(f"emulated fault: stream cut after {sent} chunks")
    transport.close()
    for _ in range(3):
        await asyncio.sleep(0)
