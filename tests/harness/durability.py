"""Helpers of the durability tests (tests/durability): crash and fault timings, a server without the
sandbox, and the database checks that must hold once every task is terminal.

- `DURABILITY_ENV`: small timings for crash and fault tests (every GENGATE_* timing of config.py).
- `Server` / `new_server`: a `GengateServer` without the sandbox, with those timings.
- `Client`: `DurableViduClient` (harness.vidu), which never raises on a dropped connection.
- database checks: `key_id`, `task_rows`, `wait_all_terminal`, `check_books` (ledger, balance,
  slots, one upstream job per task).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from harness.processes import Emulator, GengateServer
from harness.vidu import DurableViduClient as Client
from harness.vidu import Reply

__all__ = ["Client", "Reply"]  # re-exported for the durability tests

# Every timing small (interface.md: all configurable so tests run in seconds). The lease of a task
# being submitted is max(LEASE_SECONDS, SUBMIT_TIMEOUT + 5) (engine._lease_fields).
DURABILITY_ENV = {
    "GENGATE_POLL_INTERVAL": "0.25",
    "GENGATE_POLL_JITTER": "0.1",
    "GENGATE_POLLER_TICK": "0.1",
    "GENGATE_LEASE_SECONDS": "2",
    "GENGATE_SUBMIT_TIMEOUT": "1.5",
    "GENGATE_REQUEST_TIMEOUT": "3",
    "GENGATE_CONNECT_TIMEOUT": "2",
    "GENGATE_BACKOFF_BASE": "0.2",
    "GENGATE_BACKOFF_MAX": "1",
    "GENGATE_AMBIGUITY_GRACE": "2",
    "GENGATE_IDEMPOTENCY_RELEASE": "2",
    "GENGATE_TASK_DEADLINE": "90",
}
CONFIG_CHECK = 1.1  # seconds: a server checks config_version once a second
EMULATOR_TASK_SECONDS = 1.5  # each emulated job takes 0.45-1.5 s
DB_TERMINAL = ("succeeded", "failed", "cancelled")
# What every task below costs: text2video, 4 s, the default model (vidu-1: 540p). The formula is
# the price table's note for Vidu video (seconds x the per-second rate of the resolution), written out
# here; the rate is read from gengate's table (a changed default price does not break these tests),
# never from the adaptor under test.
TASK_SECONDS = 4
TASK_RESOLUTION = "540p"


def price_4s() -> int:
    from gengate.core.pricing import PriceTable
    from gengate.providers.registry import default_prices

    return TASK_SECONDS * PriceTable(default_prices())[f"vidu:video_second:{TASK_RESOLUTION}"]


def body(tag: str, model: str | None = None) -> dict[str, Any]:
    """A Vidu text2video create of 4 s. Each prompt is unique, so that reconciliation (by the
    request's fingerprint) can never bind a task to another task's job."""
    settings: dict[str, Any] = {"duration": TASK_SECONDS}
    if model:  # a test's own model name: gengate cannot place it, so say the resolution (no upper bound)
        settings["model"] = model
        settings["resolution"] = TASK_RESOLUTION
    return {"type": "text2video", "input": {"prompts": [{"type": "text", "content": f"{tag} {secrets.token_hex(4)}"}]},
            "settings": settings}


def start_emulator(workdir: Path, pool: int = 64, task_seconds: float = EMULATOR_TASK_SECONDS) -> Any:
    """A standalone `gengate emulate` for one test module (never killed by a test)."""
    return Emulator(workdir, task_seconds=task_seconds, pool=pool).start()


def durable_env(**extra: str) -> dict[str, str]:
    return {**DURABILITY_ENV, **extra}


class Server(GengateServer):
    """`gengate serve` without the sandbox, with `DURABILITY_ENV` and `args` added to its command line
    (e.g. `("--workers", "2")`)."""

    def __init__(self, data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, database_url=database_url, sandbox=False, env=durable_env(**(env or {})),
                         args=args)

    def start(self) -> Server:
        super().start()
        return self

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code once the process ended on its own, or None if it still runs after `timeout`."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def channel_add(self, base_url: str, *secrets_: str, name: str, models: str | None = None,
                    priority: int | None = None, max_concurrency: int | None = None) -> int:
        extra: list[str] = []
        if models:
            extra += ["--models", models]
        if priority is not None:
            extra += ["--priority", str(priority)]
        if max_concurrency is not None:
            extra += ["--max-concurrency", str(max_concurrency)]
        channel = self.add_channel("vidu", base_url, *secrets_, name=name, extra=tuple(extra))
        time.sleep(CONFIG_CHECK)  # a running server sees the new channel within one config check
        return channel

    def channels(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("channels", "list", "--json").strip().splitlines()[-1])


def new_server(tmp: Path, database_url: str | None = None, env: dict[str, str] | None = None,
               args: tuple[str, ...] = ()) -> Server:
    return Server(tmp / "data", database_url=database_url, env=env, args=args)


def http_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=2),
                                 cookie_jar=aiohttp.DummyCookieJar())


# ------------------------------------------------------------------------------------------- database checks
def key_id(server: Any, name: str) -> int:
    rows = server.db_query(f"SELECT id FROM keys WHERE name = '{name}'")
    assert len(rows) == 1, rows
    return int(rows[0]["id"])


def balance(server: Any, name: str) -> int:
    """The key's credits (`keys list` shows the same column; read here without a CLI process)."""
    rows = server.db_query(f"SELECT credits FROM keys WHERE name = '{name}'")
    assert len(rows) == 1 and rows[0]["credits"] is not None, rows
    return int(rows[0]["credits"])


def task_rows(server: Any, kid: int) -> list[dict[str, Any]]:
    return server.db_query("SELECT id, public_id, state, reserved, settled, upstream_id, secret_id, error_code "
                           f"FROM tasks WHERE key_id = {kid} ORDER BY id")


async def wait_all_terminal(server: Any, kid: int, within: float, expect: int | None = None
                            ) -> list[dict[str, Any]]:
    """Poll the database until every task of the key is terminal (and, with `expect`, there are
    that many); returns the rows. Fails with the states seen when the time runs out."""
    end = time.monotonic() + within
    rows: list[dict[str, Any]] = []
    while time.monotonic() < end:
        rows = await asyncio.to_thread(task_rows, server, kid)
        if rows and all(r["state"] in DB_TERMINAL for r in rows) and (expect is None or len(rows) == expect):
            return rows
        await asyncio.sleep(0.2)
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    raise AssertionError(f"not every task terminal within {within} s ({len(rows)} tasks: {states})\n"
                         f"server log tail:\n{server.log_text()[-3000:]}")


def check_books(server: Any, name: str, kid: int, start: int, rows: list[dict[str, Any]], *,
                emulator: Any, upstream_secrets: tuple[str, ...], all_succeed: bool = True) -> None:
    """What must hold once every task of a key is terminal:

    - each task has exactly one `reserve` entry, a success exactly one `settle` and no `refund`,
      any other end exactly one `refund` and no `settle`; nothing else in the key's ledger;
    - the ledger's sum is the sum of the settled prices, and so is the key's balance drop;
    - every success is charged the task's price; no upstream slot is left held;
    - exactly one upstream job per task (emulator `creates` over the channel's secrets), and no two
      tasks bound to one job.
    """
    entries = server.db_query(f"SELECT task_id, kind, amount FROM ledger_entries WHERE key_id = {kid}")
    grants = [e for e in entries if e["kind"] == "grant"]
    assert [int(g["amount"]) for g in grants] == [-start], grants  # the key's credits, given once
    entries = [e for e in entries if e["kind"] != "grant"]
    by_task: dict[int, dict[str, list[int]]] = {}
    for e in entries:
        assert e["kind"] in ("reserve", "settle", "refund"), e
        by_task.setdefault(e["task_id"], {}).setdefault(e["kind"], []).append(int(e["amount"]))
    assert set(by_task) == {r["id"] for r in rows}, "ledger entries for tasks that are not the key's"
    price = price_4s()
    for r in rows:
        kinds = by_task[r["id"]]
        assert kinds.get("reserve") == [r["reserved"]], (r, kinds)
        if r["state"] == "succeeded":
            assert kinds.get("settle") == [r["settled"] - r["reserved"]] and "refund" not in kinds, (r, kinds)
            assert r["settled"] == price, r
        else:
            assert kinds.get("refund") == [-r["reserved"]] and "settle" not in kinds, (r, kinds)
            assert r["settled"] == 0, r
    settled = sum(int(r["settled"]) for r in rows)
    assert sum(int(e["amount"]) for e in entries) == settled
    assert balance(server, name) == start - settled, "the key's balance is not start - sum(settled)"
    if all_succeed:
        bad = [r for r in rows if r["state"] != "succeeded"]
        assert not bad, f"tasks did not succeed: {bad}"
    prints = ",".join(f"'{hashlib.sha256(s.encode()).hexdigest()[:12]}'" for s in upstream_secrets)
    held = server.db_query(f"SELECT id, running FROM channel_secrets WHERE fingerprint IN ({prints}) AND running <> 0")
    assert not held, f"upstream slots still held after every task ended: {held}"
    bound = [r["upstream_id"] for r in rows if r["upstream_id"]]
    assert len(bound) == len(set(bound)), "two tasks bound to one upstream job"
    creates = sum(emulator.creates(s) for s in upstream_secrets)
    submitted = sum(1 for r in rows if r["upstream_id"])
    assert creates == submitted, f"{creates} upstream jobs for {submitted} submitted tasks"
    if all_succeed:
        assert creates == len(rows), f"{creates} upstream jobs for {len(rows)} tasks"


def events_of(server: Any, task_ids: list[int]) -> list[str]:
    """The reasons of the task_events of these tasks (engine moves), oldest first."""
    if not task_ids:
        return []
    ids = ",".join(str(i) for i in task_ids)
    rows = server.db_query(f"SELECT reason FROM task_events WHERE task_id IN ({ids}) ORDER BY id")
    return [r["reason"] for r in rows]


async def until(predicate: Any, within: float, what: str, every: float = 0.05) -> None:
    """Call `predicate` (blocking: in a thread) until it is true; fail after `within` seconds."""
    end = time.monotonic() + within
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(every)


@contextlib.contextmanager
def servers(*items: Any) -> Any:
    """Stop every server on exit, whatever happened."""
    try:
        yield items
    finally:
        for s in items:
            with contextlib.suppress(Exception):
                s.close()


def seed_from_env(name: str = "GENGATE_DURABILITY_SEED") -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else secrets.randbits(32)
