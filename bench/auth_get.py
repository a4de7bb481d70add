"""Authenticated `GET /v1/tasks/{id}` on one pinned core, and the database work each one costs.

gengate is pinned to CPU 0; `gengate emulate` (tasks that never finish, so the read is of a running
task), the load generator (`wrk` when installed, else aiohttp) and this script to CPU 1. PostgreSQL is
shared with other work on this machine and is left unpinned.

Two figures per backend:
- throughput: ~10 s of GETs at concurrency 32 after a 2 s warm-up → requests/s, p50, p99;
- cost per request: 500 sequential GETs against a second server started with
  GENGATE_DEBUG_SQL_COUNT=1, which counts every statement SQLAlchemy sends (read from /metrics). On
  PostgreSQL that server reaches the database through a counting proxy in this script that reads the
  wire protocol: every `ReadyForQuery` the server sends ends one round trip (a simple query, or an
  extended-protocol batch closed by Sync), and every `Query`/`Execute` the client sends is a statement
  on the wire (BEGIN, ROLLBACK and pre-ping included, which SQLAlchemy's counter does not see).
  Background loops (poller, notifier, config check) run meanwhile: their rate, measured over an idle
  window first, is taken out pro rata.

    python bench/auth_get.py [--backend sqlite|postgres|both] [--seconds 10] [--concurrency 32]

The machine may be shared: `cpu_us_per_req` (gengate's own CPU time during the load, over the requests
served) and its inverse `req_per_cpu_s` (what one whole core would serve) are the figures that survive
contention; rps/p50/p99 are what the pinned core delivered during the run.

Prints `RESULT backend=... rps=... p50_ms=... p99_ms=... errors=... cpu_us_per_req=... statements_per_req=...
[wire_statements_per_req=... round_trips_per_req=...]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
from benchlib import cpu_seconds, free_port, stop, wait_http

PY = sys.executable
BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat on a rainy street"}]},
        "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}
SEQUENTIAL = 500
IDLE_SECONDS = 3.0


def gengate(*args: str, env: dict[str, str], cpus: str | None = None) -> subprocess.Popen[bytes]:
    cmd = [PY, "-m", "gengate", *args]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    return subprocess.Popen(cmd, env=env, start_new_session=True)


def cli(data: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run([PY, "-m", "gengate", "--data-dir", str(data), *args], env=env, check=True,
                          capture_output=True, text=True).stdout


class PgWireCounter:
    """A TCP proxy in front of PostgreSQL that counts round trips and statements (see the docstring)."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.round_trips = 0
        self.statements = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    def snapshot(self) -> tuple[int, int]:
        return self.round_trips, self.statements

    async def _serve(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)
        ssl_replies = asyncio.Queue[int]()
        sides = [asyncio.ensure_future(self._client_side(creader, swriter, ssl_replies)),
                 asyncio.ensure_future(self._server_side(sreader, cwriter, ssl_replies))]
        await asyncio.wait(sides, return_when=asyncio.FIRST_COMPLETED)  # one side closed: close both
        for side in sides:
            side.cancel()
        for w in (cwriter, swriter):
            w.close()

    async def _client_side(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, ssl: asyncio.Queue[int]) -> None:
        started = False
        while True:
            if not started:  # untyped messages: SSLRequest / GSSENCRequest (1-byte answer), then startup
                head = await r.readexactly(8)
                size, code = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
                body = await r.readexactly(size - 8)
                if code in (80877103, 80877104):
                    ssl.put_nowait(1)
                else:
                    started = True
                w.write(head + body)
            else:
                head = await r.readexactly(5)
                body = await r.readexactly(int.from_bytes(head[1:], "big") - 4)
                if head[:1] in (b"Q", b"E"):
                    self.statements += 1
                w.write(head + body)
            await w.drain()

    async def _server_side(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, ssl: asyncio.Queue[int]) -> None:
        while True:
            head = await r.readexactly(1)
            if not ssl.empty():  # the single-byte answer to an SSLRequest ('N': go on in clear)
                ssl.get_nowait()
                w.write(head)
                await w.drain()
                continue
            rest = await r.readexactly(4)
            body = await r.readexactly(int.from_bytes(rest, "big") - 4)
            if head == b"Z":
                self.round_trips += 1
            w.write(head + rest + body)
            await w.drain()


async def aiohttp_load(url: str, key: str, seconds: float, concurrency: int) -> tuple[float, float, float, int]:
    lat: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                async with s.get(url, headers=headers) as r:
                    await r.read()
                if r.status != 200:
                    errors += 1
                    continue
                lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    return len(lat) / seconds, p(0.5), p(0.99), errors


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_load(url: str, key: str, seconds: float, concurrency: int) -> tuple[float, float, float, int]:
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency",
                          "-H", f"Authorization: Bearer {key}", url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {m[0]: _ms(m[1], m[2]) for m in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(x) for x in errs.groups()) if errs else 0)
    return rps, pct.get("50", float("nan")), pct.get("99", float("nan")), errors


def load(url: str, key: str, seconds: float, concurrency: int) -> tuple[float, float, float, int]:
    if shutil.which("wrk") and shutil.which("taskset"):
        return wrk_load(url, key, seconds, concurrency)
    return asyncio.run(aiohttp_load(url, key, seconds, concurrency))


def scrape_statements(port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    return int(float(re.search(r"^gengate_debug_sql_statements ([\d.e+]+)$", text, re.M).group(1)))  # type: ignore[union-attr]


async def sequential(url: str, key: str, n: int) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            async with s.get(url, headers={"Authorization": f"Bearer {key}"}) as r:
                await r.read()
                assert r.status == 200, r.status


def count_per_request(data: Path, env: dict[str, str], url_of: str, key: str, task_id: str,
                      proxy: PgWireCounter | None) -> str:
    env = dict(env, GENGATE_DEBUG_SQL_COUNT="1")
    if proxy is not None:
        env["GENGATE_DATABASE_URL"] = env["GENGATE_DATABASE_URL"].replace(":5432/", f":{proxy.port}/")
    port = free_port()
    srv = gengate("serve", "--data-dir", str(data), "--port", str(port), env=env, cpus="0")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/v1/tasks/{task_id}"
        asyncio.run(sequential(url, key, 50))  # warm: pool connections, prepared statements, caches

        def window(work: float | None) -> tuple[float, int, int, int]:
            """(seconds, statements, wire statements, round trips) over SEQUENTIAL GETs, or idle for `work` s."""
            s0, w0, t0 = scrape_statements(port), proxy.snapshot() if proxy else (0, 0), time.perf_counter()
            if work is None:
                asyncio.run(sequential(url, key, SEQUENTIAL))
            else:
                time.sleep(work)
            s1, w1, t1 = scrape_statements(port), proxy.snapshot() if proxy else (0, 0), time.perf_counter()
            return t1 - t0, s1 - s0, w1[1] - w0[1], w1[0] - w0[0]

        # The background loops' own statements, measured idle and taken out pro rata (the scrapes'
        # own query is in both windows).
        idle = window(IDLE_SECONDS)
        busy = window(None)
        per = [(busy[i] - idle[i] * busy[0] / idle[0]) / SEQUENTIAL for i in (1, 2, 3)]
        out = f"statements_per_req={per[0]:.2f}"
        if proxy:
            out += f" wire_statements_per_req={per[1]:.2f} round_trips_per_req={per[2]:.2f}"
        return out
    finally:
        stop(srv)


def run_backend(backend: str, seconds: float, concurrency: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="gengate-bench-"))
    env = dict(os.environ, GENGATE_POLL_INTERVAL="3600", GENGATE_LOG_LEVEL="warning")
    db_name = None
    proxy = None
    if backend == "postgres":
        db_name = "gengate_" + uuid.uuid4().hex[:12]
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {db_name}"], check=True)
        env["GENGATE_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{db_name}"
        proxy = PgWireCounter()
    eport, gport = free_port(), free_port()
    emu = gengate("emulate", "--port", str(eport), "--task-seconds", "100000", env=env, cpus="1")
    srv = None
    try:
        wait_http(f"http://127.0.0.1:{eport}/_emulator/stats")
        cli(data, "channels", "add", "--provider", "vidu", "--base-url", f"http://127.0.0.1:{eport}/vidu",
            "--key", "sandbox-secret", env=env)
        key = cli(data, "keys", "create", "--name", "bench", env=env).strip().splitlines()[-1]
        srv = gengate("serve", "--data-dir", str(data), "--port", str(gport), env=env, cpus="0")
        wait_http(f"http://127.0.0.1:{gport}/healthz")
        req = urllib.request.Request(f"http://127.0.0.1:{gport}/vidu/v1/tasks", data=json.dumps(BODY).encode(),
                                     headers={"Authorization": f"Token {key}", "Content-Type": "application/json"})
        task_id = json.load(urllib.request.urlopen(req))["id"]
        url = f"http://127.0.0.1:{gport}/v1/tasks/{task_id}"
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})) as r:
            status = json.load(r)["status"]
        load(url, key, 2, concurrency)  # warm-up
        cpu0 = cpu_seconds(srv.pid)
        rps, p50, p99, errors = load(url, key, seconds, concurrency)
        cpu_per_req = (cpu_seconds(srv.pid) - cpu0) / max(1.0, rps * seconds)
        stop(srv)
        srv = None
        costs = count_per_request(data, env, url, key, task_id, proxy)
        print(f"RESULT backend={backend} task_status={status} rps={rps:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} "
              f"errors={errors} concurrency={concurrency} cpu_us_per_req={cpu_per_req * 1e6:.0f} "
              f"req_per_cpu_s={1 / cpu_per_req if cpu_per_req else float('nan'):.0f} {costs}", flush=True)
    finally:
        stop(srv)
        stop(emu)
        if db_name:
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                            f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"])
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="both", choices=["sqlite", "postgres", "both"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=32)
    a = ap.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the load generator and the proxy stay off gengate's core
    for backend in (["sqlite", "postgres"] if a.backend == "both" else [a.backend]):
        run_backend(backend, a.seconds, a.concurrency)


if __name__ == "__main__":
    main()
