"""Real HTTP targets for the guarded client: uvicorn in background threads, recording every request.

`running_targets` starts three servers: ``public`` on 127.0.0.2:P (tests allow-list 127.0.0.2/32 so it plays
a public host), ``private`` on 127.0.0.1:P (the same port, so a rebinding answer would reach it), and
``other`` on 127.0.0.2:Q (another origin that is still allowed).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import uvicorn
from starlette.types import Receive, Scope, Send


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Target:
    """One running server: its base URL and the requests it has received."""

    host: str
    port: int
    hits: list[Hit] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.hits.append(Hit(scope["method"], scope["path"], headers, body))
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        await _ROUTES.get(scope["path"], _ok)(query, send)


async def _respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def _ok(query: dict[str, str], send: Send) -> None:
    await _respond(send, 200, b"ok", [(b"content-type", b"text/plain"), (b"x-target", b"yes")])


async def _redirect(query: dict[str, str], send: Send) -> None:
    # /redirect?to=<Location>&status=302
    await _respond(send, int(query.get("status", "302")), b"", [(b"location", query["to"].encode())])


async def _chain(query: dict[str, str], send: Send) -> None:
    # /chain?n=3 redirects (relatively) three times, then answers 200
    n = int(query["n"])
    if n == 0:
        await _respond(send, 200, b"end of chain")
    else:
        await _respond(send, 302, b"", [(b"location", f"chain?n={n - 1}".encode())])


async def _big(query: dict[str, str], send: Send) -> None:
    # /big?size=N[&chunked=1]: N bytes, with Content-Length unless chunked
    size = int(query["size"])
    headers = [] if query.get("chunked") else [(b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for start in range(0, size, 1000):
        await send({"type": "http.response.body", "body": b"x" * min(1000, size - start), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _slow(query: dict[str, str], send: Send) -> None:
    await asyncio.sleep(float(query["s"]))
    await _respond(send, 200, b"late")


async def _trickle(query: dict[str, str], send: Send) -> None:
    # headers at once, then one byte every 0.1 s for s seconds
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(int(float(query["s"]) * 10)):
        await send({"type": "http.response.body", "body": b".", "more_body": True})
        await asyncio.sleep(0.1)
    await send({"type": "http.response.body", "body": b""})


_ROUTES = {"/redirect": _redirect, "/chain": _chain, "/big": _big, "/slow": _slow, "/trickle": _trickle}


@dataclass
class Targets:
    public: Target
    private: Target
    other: Target

    def reset(self) -> None:
        for target in (self.public, self.private, self.other):
            target.hits.clear()


@contextmanager
def _serve(target: Target, sock: socket.socket) -> Iterator[Target]:
    config = uvicorn.Config(target, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"test server on {target.base} did not start")
        time.sleep(0.01)
    try:
        yield target
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _bind(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _same_port_pair() -> tuple[socket.socket, socket.socket]:
    for _ in range(50):
        public = _bind("127.0.0.2")
        try:
            return public, _bind("127.0.0.1", public.getsockname()[1])
        except OSError as exc:
            public.close()
            if exc.errno != errno.EADDRINUSE:
                raise
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@contextmanager
def running_targets() -> Iterator[Targets]:
    public_sock, private_sock = _same_port_pair()
    other_sock = _bind("127.0.0.2")
    port = public_sock.getsockname()[1]
    with ExitStack() as stack:
        found = Targets(
            public=stack.enter_context(_serve(Target("127.0.0.2", port), public_sock)),
            private=stack.enter_context(_serve(Target("127.0.0.1", port), private_sock)),
            other=stack.enter_context(_serve(Target("127.0.0.2", other_sock.getsockname()[1]), other_sock)),
        )
        yield found
