"""A real webhook receiver for the tests and the benchmark: an HTTP server on a loopback address, in a
thread, that records every request and answers what the test tells it to.

    with Receiver() as rx:                      # 127.0.0.1, a free port
        url = rx.url("/hook")
        rx.fail_next(3, status=500)             # the next 3 requests get 500, then 200 again
        hits = await rx.wait(lambda hits: len(hits) >= 4)   # or rx.wait_for(...) from a thread

`Receiver("127.0.0.2", redirect_to="http://127.0.0.1:P/x")` answers every request with a 307 to that
URL. `stop()` closes the socket (connection refused) and `start()` opens it again on the same port.

Also here: `verify_signature`, the Standard Webhooks HMAC written out (no library).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Hit:
    at: float  # time.time() when the request was read
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class Receiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, redirect_to: str | None = None) -> None:
        self.host, self.port = host, port
        self.redirect_to = redirect_to
        self.hits: list[Hit] = []
        self._fail: list[int] = []  # statuses for the next requests, in order
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # One request per connection: after stop() no kept-alive connection can still deliver.
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, extra = receiver._answer()
                hit = Hit(time.time(), self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          body, status)
                # Recorded before the reply goes out: once the sender has its answer it may send the
                # task's next message, whose handler thread must not be able to record it first.
                with receiver._cond:
                    receiver.hits.append(hit)
                    receiver._cond.notify_all()
                reply = b'{"ok":true}' if 200 <= status < 300 else b'{"ok":false}'
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                self.wfile.flush()

            do_POST = do_GET = do_PUT = _handle

        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"receiver-{self.host}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: the next deliveries get "connection refused"."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Receiver:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ behaviour
    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._cond:
            self._fail.extend([status] * n)

    def _answer(self) -> tuple[int, dict[str, str]]:
        with self._cond:
            if self._fail:
                return self._fail.pop(0), {}
        if self.redirect_to is not None:
            return 307, {"Location": self.redirect_to}
        return 200, {}

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> list[Hit]:
        with self._cond:
            return list(self.hits)

    async def wait(self, predicate: Callable[[list[Hit]], bool], within: float = 30,
                   what: str = "the expected deliveries") -> list[Hit]:
        """`wait_for` without blocking the caller's event loop."""
        return await asyncio.to_thread(self.wait_for, predicate, within, what)

    def wait_for(self, predicate: Callable[[list[Hit]], bool], within: float = 30,
                 what: str = "the expected deliveries") -> list[Hit]:
        """Block until `predicate(hits)` holds; an AssertionError after `within` s."""
        deadline = time.monotonic() + within
        with self._cond:
            while not predicate(list(self.hits)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what} did not arrive within {within} s; got "
                                         f"{[(h.status, h.webhook_id, h.body[:120]) for h in self.hits]}")
                self._cond.wait(min(left, 0.2))
            return list(self.hits)


def verify_signature(whsec: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> None:
    """Standard Webhooks, written out: `v1,` + base64(HMAC-SHA256(base64-decoded secret,
    "<webhook-id>.<webhook-timestamp>.<body>")), one of the space-separated signatures."""
    assert whsec.startswith("whsec_"), whsec
    key = base64.b64decode(whsec[len("whsec_"):], validate=True)
    msg_id, ts, sigs = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
    assert msg_id and ts.isdigit(), headers
    assert abs(time.time() - int(ts)) <= tolerance, ("webhook-timestamp is not now", ts)
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1) for s in sigs.split(" ")]
    assert any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in offered), (sigs, expected)


class RecordingProxy:
    """A plain HTTP forwarder in a thread, put between gengate and an upstream (as a channel base URL)
    to see the exact bytes the upstream receives: `hits` holds every request it forwarded."""

    def __init__(self, target: str, host: str = "127.0.0.1") -> None:
        self.target = target.rstrip("/")
        self.host = host
        self.port = 0
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def url(self, path: str = "") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def start(self) -> RecordingProxy:
        import urllib.error
        import urllib.request

        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
                req = urllib.request.Request(proxy.target + self.path, data=body or None, method=self.command,
                                             headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, ctype, reply = resp.status, resp.headers.get("Content-Type", ""), resp.read()
                except urllib.error.HTTPError as exc:
                    status, ctype, reply = exc.code, exc.headers.get("Content-Type", ""), exc.read()
                with proxy._lock:
                    proxy.hits.append(Hit(time.time(), self.command, self.path,
                                          {k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self._server = _Server((self.host, 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"proxy-{self.port}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)
