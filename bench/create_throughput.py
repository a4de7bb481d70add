"""Task-create throughput through `POST /vidu/v1/tasks`, and the RSS of an idle `serve --sandbox`.

gengate is pinned to CPU 0; `gengate emulate` (zero task latency), PostgreSQL and the load generator
to CPU 1. Polling is pushed out (GENGATE_POLL_INTERVAL) so the figure is the create path alone:
auth, validation, task row + reservation, slot, upstream create, stored id, reply.

    python bench/create_throughput.py [--backend sqlite|postgres|both] [--seconds 10] [--concurrency 32]

Prints one line per figure: `RESULT backend=sqlite creates_per_s=... p50_ms=... p99_ms=... errors=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
from benchlib import free_port, rss_mb, wait_http

PY = sys.executable
BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat on a rainy street"}]},
        "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}


def gengate(*args: str, env: dict[str, str], cpus: str | None = None, **kw: object) -> subprocess.Popen[bytes]:
    cmd = [PY, "-m", "gengate", *args]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    return subprocess.Popen(cmd, env=env, **kw)  # type: ignore[call-overload]


def pin_postgres(cpus: str) -> None:
    if not shutil.which("taskset"):
        return
    pids = subprocess.run(["pgrep", "-f", "postgres"], capture_output=True, text=True).stdout.split()
    for p in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, p], capture_output=True)


async def load(url: str, key: str, seconds: float, concurrency: int) -> tuple[int, int, list[float]]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                async with s.post(url, json=BODY, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        continue
                lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(lat), errors, lat


def create_db() -> str:
    name = "gengate_bench_" + uuid.uuid4().hex[:8]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    return name


def drop_db(name: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


def run_backend(backend: str, seconds: float, concurrency: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="gengate-bench-"))
    env = dict(os.environ, GENGATE_POLL_INTERVAL="3600", GENGATE_LOG_LEVEL="warning",
               GENGATE_EMULATOR_POLL_LATENCY="0")
    db_name = None
    if backend == "postgres":
        db_name = create_db()
        env["GENGATE_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{db_name}"
        pin_postgres("1")
    eport, gport = free_port(), free_port()
    upstream_secret = secrets.token_urlsafe(16)  # never a fixed, guessable string
    emu = gengate("emulate", "--port", str(eport), "--secret", upstream_secret, "--task-seconds", "0", env=env,
                  cpus="1")
    srv = None
    try:
        wait_http(f"http://127.0.0.1:{eport}/_emulator/stats")
        subprocess.run([PY, "-m", "gengate", "--data-dir", str(data), "channels", "add", "--provider", "vidu",
                        "--base-url", f"http://127.0.0.1:{eport}/vidu", "--key", upstream_secret],
                       env=env, check=True, capture_output=True)
        key = subprocess.run([PY, "-m", "gengate", "--data-dir", str(data), "keys", "create", "--name", "bench"],
                             env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        srv = gengate("serve", "--data-dir", str(data), "--port", str(gport), env=env, cpus="0")
        wait_http(f"http://127.0.0.1:{gport}/healthz")
        url = f"http://127.0.0.1:{gport}/vidu/v1/tasks"
        asyncio.run(load(url, key, 2, concurrency))  # warm-up
        n, errors, lat = asyncio.run(load(url, key, seconds, concurrency))
        lat.sort()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{eport}/_emulator/stats"))
        print(f"RESULT backend={backend} creates_per_s={n / seconds:.0f} p50_ms={p(0.5):.1f} "
              f"p99_ms={p(0.99):.1f} errors={errors} upstream_creates={stats['vidu']['creates']} "
              f"concurrency={concurrency} rss_mb={rss_mb(srv.pid):.0f}", flush=True)
    finally:
        for proc in (srv, emu):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if db_name:
            drop_db(db_name)
        shutil.rmtree(data, ignore_errors=True)


def idle_rss() -> None:
    data = Path(tempfile.mkdtemp(prefix="gengate-bench-"))
    port = free_port()
    srv = gengate("serve", "--sandbox", "--data-dir", str(data), "--port", str(port),
                  env=dict(os.environ, GENGATE_LOG_LEVEL="warning"))
    try:
        t0 = time.time()
        wait_http(f"http://127.0.0.1:{port}/healthz")
        ready = time.time() - t0
        time.sleep(5)
        print(f"RESULT idle_serve_sandbox_rss_mb={rss_mb(srv.pid):.0f} ready_s={ready:.1f}", flush=True)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(15)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="both", choices=["sqlite", "postgres", "both"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=32)
    a = ap.parse_args()
    for backend in (["sqlite", "postgres"] if a.backend == "both" else [a.backend]):
        run_backend(backend, a.seconds, a.concurrency)
    idle_rss()


if __name__ == "__main__":
    main()
