"""The poller under load, and recovery after SIGKILL. A script that prints figures, not a test.

1. In flight: `gengate emulate` with very long task seconds (no job ends during the run), tasks
   created through `POST /vidu/v1/tasks` until 1,000 and then 10,000 are in flight. For each size,
   after a settling pause, over `--sample-seconds` (20): the CPU seconds per wall second of
   `gengate serve` (utime+stime from /proc/<pid>/stat; no client traffic meanwhile, so this is the
   poller and its database work), its RSS, the polls per second the emulator answered against the
   polls per second the poll interval asks for (in flight / interval), and how many tasks are overdue
   by more than one interval at the end.
   `cpu_ms_per_poll` is gengate's CPU per answered poll; `emulator_cpu_s_per_wall_s` shows whether
   the emulator (one Python process) is what limits the polls per second.
2. Recovery: 1,000 tasks in flight (jobs held upstream while they are created), SIGKILL; the jobs
   end upstream while gengate is down; restart on the same data dir. Seconds (from the restart) until
   the server answers, until every task has been polled again (no task left `running`: any poll now
   sees the job's success; the dead process's leases must lapse first), until every task is terminal
   (results re-hosted); and the upstream job count (must equal the task count). Run twice: jobs that
   fail upstream (a poll ends the task: the poller alone), and jobs that succeed (plus re-hosting,
   which the emulator's media rendering bounds); each with the shipped lease (30 s) and a short one.

gengate is pinned to CPU 0, the emulator and the load generator to CPU 1 (when `taskset` exists).
Timings are gengate's shipped defaults (poll interval 3 s, lease 30 s) unless given.

    python bench/durability.py [--backend sqlite|postgres] [--sizes 1000,10000] [--sample-seconds 20]
                               [--poll-interval 3] [--recovery-tasks 1000] [--recovery-lease 30,5]

Prints `RESULT ...` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
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

PY = sys.executable
SECRET = "bench-secret"
BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a lighthouse at dusk"}]},
        "settings": {"duration": 4}}
TERMINAL = ("succeeded", "failed", "cancelled")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def spawn(args: list[str], env: dict[str, str], cpus: str | None, log: Path) -> subprocess.Popen[bytes]:
    cmd = [PY, "-m", "gengate", *args]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def cli(data: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run([PY, "-m", "gengate", "--data-dir", str(data), *args], env=env, check=True,
                          capture_output=True, text=True).stdout


class Db:
    """Read-only queries on the server's database (the SQLite file, or PostgreSQL through psql)."""

    def __init__(self, data: Path, pg_name: str | None) -> None:
        self.data, self.pg_name = data, pg_name

    def scalar(self, sql: str) -> float:
        if self.pg_name:
            out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", self.pg_name, "-tAc", sql],
                                 check=True, capture_output=True, text=True).stdout.strip()
            return float(out or 0)
        conn = sqlite3.connect(f"file:{self.data / 'gengate.db'}?mode=ro", uri=True, timeout=30)
        try:
            return float(conn.execute(sql).fetchone()[0] or 0)
        finally:
            conn.close()


class Rig:
    """One emulator, one data dir (and PostgreSQL database), one server."""

    def __init__(self, backend: str, task_seconds: float, env_extra: dict[str, str], label: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"gengate-bench-{label}-"))
        self.data = self.root / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
        self.env.update(GENGATE_LOG_LEVEL="warning", **env_extra)
        self.pg_name = None
        if backend == "postgres":
            self.pg_name = "gengate_bench_" + uuid.uuid4().hex[:8]
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {self.pg_name}"],
                           check=True)
            self.env["GENGATE_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{self.pg_name}"
        self.db = Db(self.data, self.pg_name)
        self.eport, self.port = free_port(), free_port()
        self.emu = spawn(["emulate", "--port", str(self.eport), "--secret", SECRET, "--task-seconds",
                          str(task_seconds)], self.env, "1", self.root / "emulate.log")
        wait_http(f"http://127.0.0.1:{self.eport}/_emulator/stats")
        cli(self.data, self.env, "channels", "add", "--provider", "vidu", "--base-url",
            f"http://127.0.0.1:{self.eport}/vidu", "--key", SECRET, "--name", "bench")
        self.key = cli(self.data, self.env, "keys", "create", "--name", "bench").strip().splitlines()[-1]
        self.srv: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        t0 = time.monotonic()
        self.srv = spawn(["serve", "--data-dir", str(self.data), "--port", str(self.port)], self.env, "0",
                         self.root / "serve.log")
        wait_http(f"http://127.0.0.1:{self.port}/healthz")
        return time.monotonic() - t0

    def kill(self) -> None:
        assert self.srv is not None
        os.killpg(self.srv.pid, signal.SIGKILL)
        self.srv.wait(10)

    def emu_stats(self) -> dict[str, Any]:
        return get_json(f"http://127.0.0.1:{self.eport}/_emulator/stats")["vidu"]

    def close(self) -> None:
        stop(self.srv)
        stop(self.emu)
        if self.pg_name:
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                            f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


async def create_tasks(port: int, key: str, n: int, concurrency: int = 32) -> tuple[int, float]:
    """Create `n` tasks; returns (errors, seconds)."""
    url = f"http://127.0.0.1:{port}/vidu/v1/tasks"
    headers = {"Authorization": f"Bearer {key}"}
    left = n
    errors = 0
    t0 = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def worker() -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                async with s.post(url, json=BODY, headers=headers, timeout=aiohttp.ClientTimeout(total=120)) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors, time.monotonic() - t0


def in_flight(backend: str, sizes: list[int], sample: float, poll_interval: float) -> None:
    rig = Rig(backend, 1e6, {"GENGATE_POLL_INTERVAL": str(poll_interval)}, "inflight")
    try:
        rig.start()
        assert rig.srv is not None
        made = 0
        for size in sizes:
            errors, took = asyncio.run(create_tasks(rig.port, rig.key, size - made))
            made = size
            time.sleep(max(5.0, 2 * poll_interval))  # settle: every task polled at least once
            s0, c0, w0 = rig.emu_stats()["polls"], cpu_seconds(rig.srv.pid), time.monotonic()
            e0 = cpu_seconds(rig.emu.pid)
            time.sleep(sample)
            s1, c1, w1 = rig.emu_stats()["polls"], cpu_seconds(rig.srv.pid), time.monotonic()
            e1 = cpu_seconds(rig.emu.pid)
            now = time.time()
            overdue = rig.db.scalar(f"SELECT COUNT(*) FROM tasks WHERE next_poll_at < {now - poll_interval}")
            running = rig.db.scalar("SELECT COUNT(*) FROM tasks WHERE state = 'running'")
            wall = w1 - w0
            polls = max(1, s1 - s0)
            print(f"RESULT bench=in_flight backend={backend} in_flight={size} running={running:.0f} "
                  f"poll_interval_s={poll_interval:g} cpu_s_per_wall_s={(c1 - c0) / wall:.3f} "
                  f"cpu_ms_per_poll={(c1 - c0) * 1000 / polls:.2f} emulator_cpu_s_per_wall_s={(e1 - e0) / wall:.3f} "
                  f"rss_mb={rss_mb(rig.srv.pid):.0f} polls_per_s={(s1 - s0) / wall:.0f} "
                  f"wanted_polls_per_s={size / poll_interval:.0f} overdue_tasks={overdue:.0f} "
                  f"sample_s={wall:.0f} create_s={took:.1f} create_errors={errors}", flush=True)
    finally:
        rig.close()


def post_json(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def recovery(backend: str, n: int, lease: float, results: bool) -> None:
    """The jobs are held upstream (emulator `/hold`) while the tasks are created; the server is killed;
    then the jobs are let go and end upstream (under 1 s) while it is down. After the restart, any
    poll of a task moves it out of `running`, so "no task left running" is "every task polled again".
    With `results` the jobs succeed and "terminal" adds the re-hosting of every result (4 media files
    each, rendered by the emulator); without, they fail upstream (`fail_task`) and a poll ends them."""
    rig = Rig(backend, 1, {"GENGATE_LEASE_SECONDS": str(lease)}, "recovery")
    hold = f"http://127.0.0.1:{rig.eport}/_emulator/hold"
    unfinished = "SELECT COUNT(*) FROM tasks WHERE state NOT IN ('succeeded','failed','cancelled')"
    try:
        rig.start()
        if not results:
            post_json(f"http://127.0.0.1:{rig.eport}/_emulator/faults",
                      {"provider": "vidu", "op": "create", "kind": "fail_task", "count": n})
        post_json(hold, {"provider": "vidu", "on": True})
        errors, took = asyncio.run(create_tasks(rig.port, rig.key, n))
        time.sleep(2.0)  # every task running and polled at least once
        rig.kill()
        running_at_kill = rig.db.scalar("SELECT COUNT(*) FROM tasks WHERE state = 'running'")
        post_json(hold, {"provider": "vidu", "on": False})
        end = time.monotonic() + 60
        while rig.emu_stats()["running"] and time.monotonic() < end:  # every job ends while gengate is down
            time.sleep(0.1)
        polls0, emu_cpu0 = rig.emu_stats()["polls"], cpu_seconds(rig.emu.pid)
        t0 = time.monotonic()
        ready = rig.start()
        polled = terminal = None
        end = time.monotonic() + 900
        while time.monotonic() < end and terminal is None:
            if polled is None and rig.db.scalar("SELECT COUNT(*) FROM tasks WHERE state = 'running'") == 0:
                polled = time.monotonic() - t0
            if rig.db.scalar(unfinished) == 0:
                terminal = time.monotonic() - t0
            time.sleep(0.2)
        wall = time.monotonic() - t0
        stats = rig.emu_stats()
        emu_cpu = (cpu_seconds(rig.emu.pid) - emu_cpu0) / wall
        ok = rig.db.scalar("SELECT COUNT(*) FROM tasks WHERE state = 'succeeded'")
        failed = rig.db.scalar("SELECT COUNT(*) FROM tasks WHERE state = 'failed'")
        files = sum(1 for p in (rig.data).rglob("*") if p.is_file() and p.suffix in (".mp4", ".jpeg", ".jpg", ".png"))
        stored = rig.db.scalar("SELECT COUNT(*) FROM stored_objects")
        fmt = lambda v: f"{v:.1f}" if v is not None else "timeout"  # noqa: E731
        mode = "succeeded_jobs" if results else "failed_jobs"
        print(f"RESULT bench=recovery mode={mode} backend={backend} tasks={n} lease_s={lease:g} "
              f"running_at_kill={running_at_kill:.0f} ready_s={ready:.1f} all_polled_again_s={fmt(polled)} "
              f"all_terminal_s={fmt(terminal)} succeeded={ok:.0f} failed={failed:.0f} "
              f"upstream_creates={stats['creates']} "
              f"polls_after_restart={stats['polls'] - polls0} overlapping_polls={stats['overlapping_polls']} "
              f"media_files={files} stored_objects={stored:.0f} emulator_cpu_s_per_wall_s={emu_cpu:.2f} "
              f"create_s={took:.1f} create_errors={errors}", flush=True)
    finally:
        rig.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--sample-seconds", type=float, default=20)
    ap.add_argument("--poll-interval", type=float, default=3.0)
    ap.add_argument("--recovery-tasks", type=int, default=1000)
    ap.add_argument("--recovery-lease", default="30,5", help="lease seconds to run the recovery with")
    ap.add_argument("--skip", default="", help="in_flight and/or recovery")
    a = ap.parse_args()
    print(f"# {os.cpu_count()} CPUs; gengate on CPU 0, emulator and load on CPU 1", flush=True)
    if "in_flight" not in a.skip:
        in_flight(a.backend, [int(s) for s in a.sizes.split(",")], a.sample_seconds, a.poll_interval)
    if "recovery" not in a.skip:
        for results in (False, True):
            for lease in a.recovery_lease.split(","):
                recovery(a.backend, a.recovery_tasks, float(lease), results)


if __name__ == "__main__":
    main()
