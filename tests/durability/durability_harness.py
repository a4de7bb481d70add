"""Shared helpers of the durability tests (a plain module, imported by the test modules here).

The process harness (`GengateServer`, `Emulator`, `Backend`, ...) is `tests/conftest.py`'s, loaded by
path under a private module name, so that this folder never depends on which `conftest` module
pytest imported last. What is added here:

- `DURABILITY_ENV`: small timings for crash and fault tests (every GENGATE_* timing of config.py).
- `Server`: a `GengateServer` that can take extra `serve` arguments (`--workers 2`).
- `Client`: raw HTTP of gengate's `/vidu/v1/tasks` and `/v1/tasks/{id}` that never raises on a
  dropped connection (a server that dies mid-request gives `None`).
- database checks: `key_id`, `task_rows`, `wait_all_terminal`, `check_books` (ledger, balance,
  slots, one upstream job per task).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp


def _load_conftest() -> ModuleType:
    name = "_gengate_durability_base_harness"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


base = _load_conftest()
Backend = base.Backend
Emulator = base.Emulator
GengateServer = base.GengateServer
assert_vidu_error = base.assert_vidu_error
base_env = base.base_env
free_port = base.free_port
http_json = base.http_json

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
EMULATOR_TASK_SECONDS = 1.5  # each emulated job takes 0.45-1.5 s
DB_TERMINAL = ("succeeded", "failed", "cancelled")
VIDU_TERMINAL = frozenset({"success", "failed", "canceled"})
# What every task below costs: text2video, 4 s, the default model (vidu-1: 540p). From gengate's own
# price table, so that a changed default price does not break these tests.
_UNITS_4S = {"seconds": 4.0, "count": 1, "image": 0.0, "upscale": 0.0, "res:540p": 1.0}


def price_4s() -> int:
    from gengate.core.pricing import PriceTable
    from gengate.providers.vidu.adaptor import ViduWebAdaptor

    return ViduWebAdaptor().price(_UNITS_4S, PriceTable([ViduWebAdaptor.prices]))


def body(tag: str, model: str | None = None) -> dict[str, Any]:
    """A Vidu text2video create of 4 s. Each prompt is unique, so that reconciliation (by the
    request's fingerprint) can never bind a task to another task's job."""
    settings: dict[str, Any] = {"duration": 4}
    if model:
        settings["model"] = model
    return {"type": "text2video", "input": {"prompts": [{"type": "text", "content": f"{tag} {secrets.token_hex(4)}"}]},
            "settings": settings}


def start_emulator(workdir: Path, pool: int = 64, task_seconds: float = EMULATOR_TASK_SECONDS) -> Any:
    """A standalone `gengate emulate` for one test module (never killed by a test)."""
    return Emulator(workdir, task_seconds=task_seconds, pool=pool).start()


def durable_env(**extra: str) -> dict[str, str]:
    return {**DURABILITY_ENV, **extra}


class Server(GengateServer):
    """`gengate serve` with `args` added to its command line (e.g. `("--workers", "2")`)."""

    def __init__(self, data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, database_url=database_url, sandbox=False, env=durable_env(**(env or {})))
        self.args = args

    def start(self) -> Server:
        if not self.args:
            super().start()
            return self
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "gengate", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port), *self.args]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=base_env(self.env),
                                     start_new_session=True, cwd=base.NEUTRAL_CWD)
        log.close()
        base._wait_http_ok(f"{self.url}/healthz", self.proc, base.READY_TIMEOUT, self.log_text)
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
        return self.add_channel("vidu", base_url, *secrets_, name=name, extra=tuple(extra))

    def channels(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("channels", "list", "--json").strip().splitlines()[-1])


def new_server(tmp: Path, database_url: str | None = None, env: dict[str, str] | None = None,
               args: tuple[str, ...] = ()) -> Server:
    return Server(tmp / "data", database_url=database_url, env=env, args=args)


# ------------------------------------------------------------------------------------------- HTTP client
@dataclass
class Reply:
    status: int
    body: Any
    text: str
    headers: Any


class Client:
    """gengate's Vidu routes and unified task API for one client key."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, key: str) -> None:
        self.http, self.base, self.key = http, base_url.rstrip("/"), key

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                      within: float = 30) -> Reply | None:
        """The reply, or None when the connection failed or was dropped (the server died)."""
        h = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        try:
            async with self.http.request(method, self.base + path, json=body, headers=h,
                                         timeout=aiohttp.ClientTimeout(total=within)) as resp:
                text = await resp.text(errors="replace")
                try:
                    parsed = json.loads(text) if text else None
                except ValueError:
                    parsed = None
                return Reply(resp.status, parsed, text, resp.headers)
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            return None

    async def create(self, payload: dict[str, Any], idempotency_key: str | None = None) -> Reply | None:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.request("POST", "/vidu/v1/tasks", payload, headers)

    async def create_ok(self, payload: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        reply = await self.create(payload, idempotency_key)
        assert reply is not None and reply.status == 200, (reply.status, reply.text) if reply else "no reply"
        return reply.body

    async def get(self, task_id: str) -> dict[str, Any]:
        reply = await self.request("GET", f"/vidu/v1/tasks/{task_id}")
        assert reply is not None and reply.status == 200, (reply.status, reply.text) if reply else "no reply"
        return reply.body

    async def unified(self, task_id: str) -> dict[str, Any]:
        reply = await self.request("GET", f"/v1/tasks/{task_id}")
        assert reply is not None and reply.status == 200, (reply.status, reply.text) if reply else "no reply"
        return reply.body

    async def wait(self, task_id: str, within: float = 30, states: frozenset[str] = VIDU_TERMINAL
                   ) -> dict[str, Any]:
        end = time.monotonic() + within
        last: Any = None
        while time.monotonic() < end:
            last = await self.get(task_id)
            if last["state"] in states:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"task {task_id} not in {sorted(states)} within {within} s: {last}")


def http_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, force_close=False),
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
