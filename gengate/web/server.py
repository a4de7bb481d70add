"""uvicorn's httptools protocol with the limits a public server needs (interface.md "Bad requests").

- a request header block (request line + headers) over `max_header_bytes`, or more than
  `max_headers` header lines, is answered 431 and the connection closed;
- a connection that has not sent complete request headers within `header_timeout` seconds is
  closed (slowloris), and one whose request body stalls for `body_timeout` seconds likewise;
- these closes are logged at INFO, without a traceback.

The limits come from Settings (GENGATE_MAX_HEADER_BYTES, GENGATE_MAX_HEADERS, GENGATE_HEADER_TIMEOUT,
GENGATE_BODY_TIMEOUT), read once per process, so that worker processes see the same values.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gengate.config import load_settings

log = logging.getLogger("gengate.server")


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float


@functools.cache
def server_limits() -> ServerLimits:
    s = load_settings()
    return ServerLimits(s.max_header_bytes, s.max_headers, s.header_timeout, s.body_timeout)


class HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing; answered 431."""


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = server_limits()
        self._reading_headers = True
        self._header_bytes = 0  # raw bytes of a header block still incomplete
        self._header_size = 0  # bytes of the complete header lines seen so far
        self._header_count = 0
        self._refusal: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_reason = ""

    # ------------------------------------------------------------------ timers
    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._timer_reason = reason
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:  # the app is not reading: not the client's fault
            self._arm(self.limits.body_timeout, self._timer_reason)
            return
        log.info("closing connection from %s: %s", _peer(self.client), self._timer_reason)
        self.transport.close()

    # ------------------------------------------------------------------ connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout,
                  f"request headers not complete within {self.limits.header_timeout:g} s")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._reading_headers and self._timer is not None:  # a body chunk: the client is alive
            self._arm(self.limits.body_timeout, self._timer_reason)
        super().data_received(data)
        if self._reading_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(f"request header block larger than {self.limits.max_header_bytes} bytes")

    # ------------------------------------------------------------------ parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._header_bytes = self._header_size = self._header_count = 0
        if self._timer is None:  # a keep-alive connection's next request
            self._arm(self.limits.header_timeout,
                      f"request headers not complete within {self.limits.header_timeout:g} s")

    def on_url(self, url: bytes) -> None:
        self._header_size += len(url)
        self._check_headers()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_size += len(name) + len(value) + 4
        self._check_headers()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._disarm()
        super().on_headers_complete()
        if _has_body(self.headers):
            self._arm(self.limits.body_timeout,
                      f"no request body data for {self.limits.body_timeout:g} s")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # ------------------------------------------------------------------ refusals
    def _check_headers(self) -> None:
        if self._header_count > self.limits.max_headers:
            self._refusal = f"more than {self.limits.max_headers} request headers"
        elif self._header_size > self.limits.max_header_bytes:
            self._refusal = f"request header block larger than {self.limits.max_header_bytes} bytes"
        if self._refusal:
            raise HeadersTooLarge(self._refusal)  # httptools stops; data_received answers below

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(self._refusal)

    def _refuse(self, reason: str) -> None:
        log.info("refusing request from %s with 431: %s", _peer(self.client), reason)
        self._disarm()
        body = reason.encode()
        head = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: text/plain; charset=utf-8\r\n",
                 b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"
