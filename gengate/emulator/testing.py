"""Run the emulator as a real HTTP server (uvicorn in a thread) for tests.

with running_emulator(task_seconds=(0.5, 1)) as emu:
    ... aiohttp calls to f"{emu.base_url}/vidu/vidu/v1/tasks" ...
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from gengate.emulator.app import DEFAULT_SECRET, build_emulator_app
from gengate.emulator.base import ProviderEmulator


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    base_url: str  # also the app's public_base
    app: Starlette
    server: uvicorn.Server

    def url(self, path: str) -> str:
        return self.base_url + path


def bound_socket() -> tuple[socket.socket, str]:
    """A listening-ready socket on a free loopback port, and its base URL. Binding first lets an
    app be told its own public URL before it serves anything."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serving(app: ASGIApp, sock: socket.socket, startup_timeout: float = 10.0) -> Iterator[uvicorn.Server]:
    """Serve `app` with uvicorn on `sock` in a background thread until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
        sock.close()


@contextmanager
def running_emulator(
    *,
    secret: str = DEFAULT_SECRET,
    task_seconds: tuple[float, float] = (0.0, 0.0),
    state_dir: Path | None = None,
    poll_latency: float | None = None,
    emulators: Sequence[ProviderEmulator] | None = None,
) -> Iterator[RunningEmulator]:
    """Every discovered emulator, or only `emulators` (e.g. a test's own), over real HTTP."""
    sock, base_url = bound_socket()
    app = build_emulator_app(
        secret=secret,
        task_seconds=task_seconds,
        state_dir=state_dir,
        public_base=base_url,
        poll_latency=poll_latency,
        emulators=emulators,
    )
    with serving(app, sock) as server:
        yield RunningEmulator(base_url, app, server)
