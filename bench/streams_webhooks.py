"""Open task streams and webhook deliveries: what they cost and how fast deliveries go out.

1. Streams. `gengate serve` (SQLite, pinned to CPU 0) in front of `gengate emulate` (CPU 1) with every
   Vidu job held upstream, so that N tasks stay in progress. Polling is pushed out
   (GENGATE_POLL_INTERVAL=3600) so that what is measured is the streams, not the poller. CPU time
   (utime+stime from /proc, the server and its children) and RSS are taken over `--idle` seconds with
   the N tasks running and no stream, then again with one `GET /v1/tasks/{id}/events` open per task
   (each stream checked to have delivered its first event).
2. Webhooks. A fresh server (polling every `--poll` s, GENGATE_URL_ALLOW_PRIVATE=1) and tasks created
   at `--rate`/s with a `callback_url` to a receiver on 127.0.0.1 (tests/webhooks/webhook_receiver.py,
   a threaded HTTP server in this process) until at least `--deliveries` deliveries are queued.
   Latency = the receiver's clock when the request arrived - the delivery row's `created_at`, which is
   written in the transaction of the state change (so it is the change's own time). Every delivery must
   arrive exactly once with a 2xx.

   `--webhook-backend postgres|both` runs this phase on a fresh PostgreSQL database too. Also printed:
   the part of the latency from when a delivery was ready to go (the task's previous delivery marked
   delivered, deliveries of a task go out in order) to its arrival.

    python bench/streams_webhooks.py [--streams 1000] [--idle 20] [--deliveries 1000] [--rate 40]
        [--webhook-backend sqlite|postgres|both] [--cpus 0/1] [--no-streams]

Prints `RESULT ...` lines. The figures are only as quiet as the machine: other processes pinned to the
server's CPU show up as latency (compare `server_cpu_pct` with what the server got).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import cpu_seconds, free_port, rss_mb, stop, wait_http

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from harness.webhooks import Receiver  # noqa: E402

PY = sys.executable
SECRET = "bench-secret"
CPUS = ["0", "1"]  # gengate serve, gengate emulate (taskset); `--cpus` changes them


def body(i: int, callback_url: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": f"bench {i}"}]},
                         "settings": {"duration": 4, "model": "vidu-1"}}
    if callback_url:
        b["callback_url"] = callback_url
    return b


def post(url: str, payload: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def spawn(*args: str, env: dict[str, str], cpus: str | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [PY, "-m", "gengate", *args]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def cli(data: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run([PY, "-m", "gengate", "--data-dir", str(data), *args], env=env, check=True,
                          capture_output=True, text=True).stdout


PG = "postgresql://postgres@127.0.0.1:5432"


class Server:
    def __init__(self, root: Path, emulator_base: str, env: dict[str, str], backend: str = "sqlite") -> None:
        self.data = root / f"data-{free_port()}"
        self.pg_db: str | None = None
        if backend == "postgres":
            self.pg_db = f"gengate_bench_{uuid.uuid4().hex[:8]}"
            subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {self.pg_db}"], check=True)
            env = {**env, "GENGATE_DATABASE_URL": f"{PG}/{self.pg_db}"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        cli(self.data, env, "channels", "add", "--provider", "vidu", "--base-url", f"{emulator_base}/vidu",
            "--key", SECRET)
        self.key = cli(self.data, env, "keys", "create", "--name", "bench").strip().splitlines()[-1]

    def start(self) -> Server:
        self.proc = spawn("serve", "--data-dir", str(self.data), "--port", str(self.port), env=self.env, cpus=CPUS[0],
                          log=self.data.parent / f"{self.data.name}.log")
        wait_http(f"{self.url}/healthz")
        return self

    def close(self) -> None:
        stop(self.proc)
        if self.pg_db:
            subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)"],
                           capture_output=True)

    def query(self, sql: str) -> list[dict[str, Any]]:
        if self.pg_db:
            out = subprocess.run(["psql", f"{PG}/{self.pg_db}", "-AtF", "\t", "-c", f"COPY ({sql}) TO STDOUT "
                                  "WITH (FORMAT csv, HEADER true)"], check=True, capture_output=True, text=True)
            import csv
            import io

            return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(out.stdout))]
        conn = sqlite3.connect(f"file:{self.data / 'gengate.db'}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()


def _num(v: str) -> Any:
    try:
        return float(v) if "." in v else int(v)
    except ValueError:
        return v


async def create_many(server: Server, n: int, rate: float | None, concurrency: int = 32,
                      callback_url: str | None = None) -> list[str]:
    ids: list[str] = []
    headers = {"Authorization": f"Token {server.key}"}
    sem = asyncio.Semaphore(concurrency)
    start = time.monotonic()
    async with aiohttp.ClientSession() as s:
        async def one(i: int) -> None:
            if rate:
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            async with sem, s.post(f"{server.url}/vidu/v1/tasks", json=body(i, callback_url), headers=headers) as r:
                reply = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"create failed: {r.status} {reply}")
                ids.append(reply["id"])

        await asyncio.gather(*(one(i) for i in range(n)))
    return ids


async def measure(pid: int, seconds: float) -> tuple[float, float]:
    c0 = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - c0, rss_mb(pid)


async def streams_phase(root: Path, emulator_base: str, env: dict[str, str], n: int, idle: float) -> None:
    post(f"{emulator_base}/_emulator/hold", {"provider": "vidu", "on": True})
    server = Server(root, emulator_base, {**env, "GENGATE_POLL_INTERVAL": "3600"}).start()
    try:
        assert server.proc is not None
        ids = await create_many(server, n, rate=None)
        await asyncio.sleep(3)
        states = {r["state"]: r["n"] for r in server.query("SELECT state, count(*) AS n FROM tasks GROUP BY state")}
        base_cpu, base_rss = await measure(server.proc.pid, idle)
        print(f"RESULT phase=no_streams running_tasks={states.get('running', 0)} idle_s={idle:.0f} "
              f"cpu_s={base_cpu:.2f} cpu_pct={100 * base_cpu / idle:.1f} rss_mb={base_rss:.0f}", flush=True)

        first_events = 0
        events = 0
        ready = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as s:
            async def stream(task_id: str) -> None:
                nonlocal first_events, events
                async with s.get(f"{server.url}/v1/tasks/{task_id}/events",
                                 headers={"Authorization": f"Bearer {server.key}"}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"stream {task_id}: HTTP {r.status}")
                    first = True
                    async for line in r.content:
                        if not line.startswith(b"data:"):
                            continue
                        if first:
                            first_events += 1
                            first = False
                            if first_events == len(ids):
                                ready.set()
                        else:
                            events += 1

            t0 = time.monotonic()
            readers = [asyncio.create_task(stream(t)) for t in ids]
            await asyncio.wait_for(ready.wait(), 120)
            opened = time.monotonic() - t0
            await asyncio.sleep(2)
            before = events
            cpu, rss = await measure(server.proc.pid, idle)
            print(f"RESULT phase=streams open_streams={first_events} open_all_s={opened:.1f} idle_s={idle:.0f} "
                  f"cpu_s={cpu:.2f} cpu_pct={100 * cpu / idle:.1f} rss_mb={rss:.0f} "
                  f"rss_per_stream_kb={1024 * (rss - base_rss) / max(first_events, 1):.1f} "
                  f"events_while_idle={events - before}", flush=True)
            for r in readers:
                r.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    finally:
        server.close()
        post(f"{emulator_base}/_emulator/hold", {"provider": "vidu", "on": False})


async def webhooks_phase(root: Path, emulator_base: str, env: dict[str, str], want: int, rate: float,
                         poll: float, backend: str) -> None:
    server = Server(root, emulator_base, {**env, "GENGATE_POLL_INTERVAL": str(poll),
                                          "GENGATE_URL_ALLOW_PRIVATE": "1"}, backend).start()
    rx = Receiver("127.0.0.1").start()
    assert server.proc is not None
    try:
        t0 = time.monotonic()
        c0 = cpu_seconds(server.proc.pid)
        created = 0
        while True:  # about 3-4 state changes per task: add tasks until enough deliveries are queued
            batch = max(10, int((want - queued(server)) / 3.5) + 1)
            await create_many(server, batch, rate=rate, callback_url=rx.url("/hook"))
            created += batch
            await asyncio.sleep(6)  # let the batch finish upstream, so that its changes are queued
            if queued(server) >= want and pending_tasks(server) == 0:
                break
        total = queued(server)
        hits = await rx.wait(lambda hs: len(hs) >= total, within=120, what="every delivery")
        elapsed = time.monotonic() - t0
        server_cpu = cpu_seconds(server.proc.pid) - c0
        await asyncio.sleep(1)
        hits = rx.snapshot()
        rows = {r["webhook_id"]: r for r in server.query(
            "SELECT id, task_id, webhook_id, created_at, attempts, delivered_at FROM webhook_deliveries")}
        ok = [h for h in hits if 200 <= h.status < 300]
        ids = [h.webhook_id for h in ok]
        assert len(ids) == len(set(ids)) == len(rows), (len(ids), len(set(ids)), len(rows))
        lat = sorted((h.at - rows[h.webhook_id]["created_at"]) * 1000 for h in ok)
        ts_lat = sorted(h.at - int(h.headers["webhook-timestamp"]) for h in ok)
        # Split the latency: until the task's previous delivery was marked delivered (state order), and
        # from then (or from the change, for a task's first delivery) to arrival.
        previous: dict[str, float] = {}
        last_of_task: dict[Any, dict[str, Any]] = {}
        for r in sorted(rows.values(), key=lambda r: r["id"]):
            before = last_of_task.get(r["task_id"])
            previous[r["webhook_id"]] = before["delivered_at"] if before else r["created_at"]
            last_of_task[r["task_id"]] = r
        ready = sorted((h.at - max(rows[h.webhook_id]["created_at"], previous[h.webhook_id])) * 1000 for h in ok)

        def p(values: list[float], q: float) -> float:
            return values[min(len(values) - 1, int(q * len(values)))]

        retried = sum(1 for r in rows.values() if r["attempts"] != 1)
        print(f"RESULT phase=webhooks backend={backend} deliveries={len(ok)} tasks={created} "
              f"wall_s={elapsed:.0f} poll_s={poll} create_rate={rate:.0f}/s "
              f"latency_ms_p50={p(lat, 0.5):.1f} p90={p(lat, 0.9):.1f} p99={p(lat, 0.99):.1f} max={lat[-1]:.1f} "
              f"retried={retried} ts_header_vs_arrival_s_max={ts_lat[-1]:.2f} "
              f"from_ready_ms_p50={p(ready, 0.5):.1f} p99={p(ready, 0.99):.1f} "
              f"server_cpu_pct={100 * server_cpu / elapsed:.0f}", flush=True)
    finally:
        rx.stop()
        server.close()


def queued(server: Server) -> int:
    return int(server.query("SELECT count(*) AS n FROM webhook_deliveries")[0]["n"])


def pending_tasks(server: Server) -> int:
    return int(server.query("SELECT count(*) AS n FROM tasks WHERE state NOT IN "
                            "('succeeded', 'failed', 'cancelled')")[0]["n"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=40.0, help="task creates per second in the webhook phase")
    ap.add_argument("--poll", type=float, default=1.0, help="GENGATE_POLL_INTERVAL in the webhook phase")
    ap.add_argument("--webhook-backend", default="sqlite", choices=["sqlite", "postgres", "both"])
    ap.add_argument("--no-streams", action="store_true")
    ap.add_argument("--cpus", default="0/1", help="taskset CPU lists: SERVER/EMULATOR ('-' = not pinned)")
    args = ap.parse_args()
    CPUS[:] = [c if c != "-" else "" for c in args.cpus.split("/")]

    root = Path(tempfile.mkdtemp(prefix="gengate-bench-sw-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env.update(GENGATE_LOG_LEVEL="warning", GENGATE_EMULATOR_POLL_LATENCY="0", GENGATE_POLL_JITTER="0.1")
    eport = free_port()
    emulator_base = f"http://127.0.0.1:{eport}"
    emu = spawn("emulate", "--port", str(eport), "--secret", SECRET, "--task-seconds", "4", env=env, cpus=CPUS[1],
                log=root / "emulator.log")
    try:
        wait_http(f"{emulator_base}/_emulator/stats")
        print(f"RESULT host cpus={os.cpu_count()} python={sys.version.split()[0]} streams_database=sqlite "
              f"pinned={args.cpus} loadavg_1m_at_start={os.getloadavg()[0]:.1f}", flush=True)
        if not args.no_streams:
            asyncio.run(streams_phase(root, emulator_base, env, args.streams, args.idle))
        backends = ["sqlite", "postgres"] if args.webhook_backend == "both" else [args.webhook_backend]
        for backend in backends:
            asyncio.run(webhooks_phase(root, emulator_base, env, args.deliveries, args.rate, args.poll, backend))
    finally:
        stop(emu)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
