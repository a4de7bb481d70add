"""Server limits against a real `gengate serve`, over raw sockets: oversized or too many headers get
431, partial headers and stalled bodies are closed after their timeouts, and a client that goes away
is an INFO line, never an ERROR or a traceback."""

from __future__ import annotations

import json
import socket
import time

import pytest
from harness.processes import GengateServer, ServerFactory

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 1.5  # GENGATE_HEADER_TIMEOUT and GENGATE_BODY_TIMEOUT for this module's server


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> GengateServer:
    return make_server(env={"GENGATE_HEADER_TIMEOUT": str(TIMEOUT), "GENGATE_BODY_TIMEOUT": str(TIMEOUT)})


def connect(server: GengateServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_all(sock: socket.socket, limit: float = 10) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and the seconds that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out, time.monotonic() - started


def exchange(server: GengateServer, data: bytes) -> bytes:
    with connect(server) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):  # refused before everything was sent
            pass
        return read_all(sock)[0]


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split(b" ", 2)[1])


def test_200_kb_of_headers_is_431(server: GengateServer) -> None:
    one_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    assert status_of(exchange(server, one_header)) == 431
    many_lines = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"b" * 4000) for i in range(50)) + b"\r\n"
    assert status_of(exchange(server, many_lines)) == 431


def test_too_many_headers_is_431(server: GengateServer) -> None:
    headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(101))
    assert status_of(exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")) == 431


def test_headers_within_the_limits_are_served(server: GengateServer) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 500) for i in range(90))  # 90 headers, ~46 KB
    reply = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
    assert status_of(reply) == 200, reply[:300]


def test_partial_headers_are_closed_within_the_timeout(server: GengateServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: abc")
        reply, took = read_all(sock)
    assert reply == b"" and TIMEOUT - 0.2 <= took <= TIMEOUT + 2, (reply, took)


def test_a_slow_drip_of_header_bytes_does_not_keep_it_open(server: GengateServer) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        for i in range(40):  # one header line every 0.2 s would go on for 8 s
            time.sleep(0.2)
            try:
                sock.sendall(b"X-D%d: 1\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        took = time.monotonic() - started
        if not closed:
            closed = read_all(sock, 2)[0] == b""
    assert closed and took <= TIMEOUT + 2.5, took


def test_a_silent_connection_is_closed(server: GengateServer) -> None:
    with connect(server) as sock:
        reply, took = read_all(sock)
    assert reply == b"" and took <= TIMEOUT + 2, took


def test_a_stalled_body_is_closed_and_a_dropped_client_is_info(server: GengateServer) -> None:
    key = server.make_key(credits=0)
    head = (b"POST /vidu/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Token " + key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
    with connect(server) as sock:  # sends 5 of 200 body bytes, then nothing
        sock.sendall(head + b'{"a":')
        reply, took = read_all(sock)
    assert reply == b"" and TIMEOUT - 0.2 <= took <= TIMEOUT + 2, (reply, took)
    with connect(server) as sock:  # sends part of the body, then goes away
        sock.sendall(head + b'{"type":')
        time.sleep(0.3)
    time.sleep(0.5)
    # the server is fine afterwards
    assert status_of(exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200
    log = server.log_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert log.count("client went away while sending the body of POST /vidu/v1/tasks") >= 2, log[-3000:]
    assert f"no request body data for {TIMEOUT:g} s" in log


def test_a_dropped_event_stream_is_not_an_error(server: GengateServer) -> None:
    key = server.make_key()
    body = json.dumps({"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a boat"}]},
                       "settings": {"duration": 4, "model": "vidu-1"}}).encode()
    created = exchange(server, b"POST /vidu/v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       b"Authorization: Token " + key.encode() + b"\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert status_of(created) == 200, created[:500]
    task_id = json.loads(created.split(b"\r\n\r\n", 1)[1])["id"]
    with connect(server) as sock:
        sock.sendall(b"GET /vidu/v1/tasks/state?id=" + task_id.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Token " + key.encode() + b"\r\nAccept: text/event-stream\r\n\r\n")
        seen = b""
        while b"data:" not in seen:
            chunk = sock.recv(65536)
            assert chunk, seen
            seen += chunk
    time.sleep(1)
    log = server.log_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
