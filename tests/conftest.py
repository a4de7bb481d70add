"""The end-to-end harness: real `gengate serve` / `gengate emulate` processes, real HTTP, nothing mocked.

Fixtures (see each docstring):

- `backend` (module, params `sqlite` / `pg`): the database a server runs on. `backend.url` is
  `None` for SQLite (the data dir's own file) or a fresh `postgresql://.../gengate_<hex>` database;
  `backend.new_database()` makes another fresh one (dropped at module end).
- `redis_url` (session), `redis_prefix` (function): a random key prefix, its keys deleted after.
- `emulator` (session): a standalone `gengate emulate` process, never killed; hands out a distinct
  upstream secret per channel (`emulator.new_secret()`), so that stats and faults can be scoped.
- `make_server` (module): `make_server(backend_url, sandbox=True, vidu_channel=False, env=...)` starts a
  `GengateServer`; every server is stopped at module end.
- `sandbox_server` (module, per backend): one `gengate serve --sandbox` shared by a module's tests.
- `ext_server` (module, per backend): a server without the sandbox whose only Vidu channel points at
  the standalone emulator (`channels add`), with its own upstream secret.
- `home` (function): an unstarted `GengateServer` on a fresh data dir / database, for CLI tests.
- `cli`: `cli(data_dir, *args, env=None, check=True)` → stdout of `python -m gengate ...`.
- `http` (function): an aiohttp session with no default headers.
- `vidu` (function): `vidu(server, key, scheme="Token")` → a `ViduClient` for `/vidu/v1`.

Every test creates its own client key (`server.make_key(...)`), so no state leaks between tests.

`GENGATE_TEST_REQUIRE_SERVICES=1` turns "PostgreSQL / Redis not reachable" skips into failures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_HOST_URL = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379"
READY_TIMEOUT = 60.0

# Small timings so that tasks finish in seconds (all GENGATE_* settings, config.py).
FAST_ENV = {
    "GENGATE_POLL_INTERVAL": "0.3",
    "GENGATE_POLL_JITTER": "0.1",
    "GENGATE_POLLER_TICK": "0.1",
    "GENGATE_SANDBOX_TASK_SECONDS": "2",
    "GENGATE_LEASE_SECONDS": "5",
    "GENGATE_BACKOFF_BASE": "0.2",
    "GENGATE_BACKOFF_MAX": "2",
    "GENGATE_AMBIGUITY_GRACE": "3",
    "GENGATE_IDEMPOTENCY_RELEASE": "5",
    "GENGATE_SUBMIT_TIMEOUT": "10",
    "GENGATE_REQUEST_TIMEOUT": "10",
}
EMULATOR_TASK_SECONDS = 2.0
TERMINAL = frozenset({"success", "failed", "canceled"})
# Subprocesses run outside the repository, so `python -m gengate` is the installed (editable) package
# found through sys.path, not whatever the current directory happens to hold.
NEUTRAL_CWD = tempfile.gettempdir()


def services_required() -> bool:
    return os.environ.get("GENGATE_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def service_unavailable(message: str) -> None:
    if services_required():
        pytest.fail(message + " (GENGATE_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The outer environment without any GENGATE_* setting (they would leak into the servers), plus
    the fast timings and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env.update(FAST_ENV)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------------------- CLI
def cli_run(data_dir: Path | str, *args: str, env: dict[str, str] | None = None, check: bool = True,
            data_dir_last: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m gengate --data-dir D *args` (or with `--data-dir D` after the subcommand's
    arguments when `data_dir_last`). Returns the completed process (text stdout/stderr)."""
    if data_dir_last:
        argv = [sys.executable, "-m", "gengate", *args, "--data-dir", str(data_dir)]
    else:
        argv = [sys.executable, "-m", "gengate", "--data-dir", str(data_dir), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=base_env(env), timeout=timeout, cwd=NEUTRAL_CWD)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv[2:])} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    return proc


def cli(data_dir: Path | str, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """stdout of `python -m gengate --data-dir D *args`; raises when it exits non-zero (check)."""
    return cli_run(data_dir, *args, env=env, check=check).stdout


def db_env(database_url: str | None) -> dict[str, str]:
    return {"GENGATE_DATABASE_URL": database_url} if database_url else {}


# ------------------------------------------------------------------------------------------- PostgreSQL
def _run_async(coro_fn: Callable[[], Any]) -> Any:
    """Run a coroutine on a private loop in a worker thread (the tests' own loop may be running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn())).result()


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run_async(go)


def pg_fetch(url: str, sql: str) -> list[dict[str, Any]]:
    import asyncpg

    async def go() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return [dict(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return _run_async(go)


def pg_dump_text(url: str) -> str:
    """Every row of every table of the database's public schema, as text (for "never in clear")."""
    import asyncpg

    async def go() -> str:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            tables = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            parts = []
            for t in tables:
                for r in await conn.fetch(f'SELECT t::text AS row FROM "{t}" t'):
                    parts.append(f"{t}: {r['row']}")
            return "\n".join(parts)
        finally:
            await conn.close()

    return _run_async(go)


@dataclass
class Backend:
    """`name` is `sqlite` or `pg`; `url` is the module's database (None: the data dir's SQLite file)."""

    name: str
    url: str | None = None
    _created: list[str] = field(default_factory=list)

    def new_database(self) -> str | None:
        """A fresh, empty database on this backend (SQLite: None, i.e. a fresh data dir's own file)."""
        if self.name != "pg":
            return None
        db = f"gengate_{secrets.token_hex(6)}"
        _pg_admin(f'CREATE DATABASE "{db}"')
        self._created.append(db)
        return f"{PG_HOST_URL}/{db}"

    def fetch(self, url: str, sql: str) -> list[dict[str, Any]]:
        """Rows of a query on one of this backend's PostgreSQL databases."""
        return pg_fetch(url, sql)

    def drop_all(self) -> None:
        for db in self._created:
            with contextlib.suppress(Exception):
                _pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self._created.clear()


def _check_postgres() -> None:
    try:
        _pg_admin("SELECT 1")
    except Exception as exc:
        service_unavailable(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc!r}")


@pytest.fixture(scope="module", params=["sqlite", "pg"], ids=["sqlite", "pg"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The database backend for database-touching tests. For `pg` a fresh database
    `gengate_<hex>` is created and dropped (WITH (FORCE)) after the module."""
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    _check_postgres()
    b = Backend("pg")
    b.url = b.new_database()
    try:
        yield b
    finally:
        b.drop_all()


# ------------------------------------------------------------------------------------------- Redis
@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        service_unavailable(f"Redis not reachable at 127.0.0.1:6379: {exc!r}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A random key prefix (`gengate-test-<hex>:`) on `redis_url`; its keys are deleted after the test."""
    import redis

    prefix = f"gengate-test-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# ------------------------------------------------------------------------------------------- HTTP helpers (sync)
def http_json(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def _wait_http_ok(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered\n{log()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
                last = resp.status
        except urllib.error.HTTPError as exc:
            last = exc.code
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout} s (last: {last!r})\n{log()}")


# ------------------------------------------------------------------------------------------- emulator
class EmulatorControl:
    """The `/_emulator/*` controls of an emulator app reachable at `base` (a standalone `gengate
    emulate`, or a sandbox at `http://HOST:PORT/_sandbox`)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def provider_url(self, provider: str) -> str:
        """The channel base URL for `provider`."""
        return f"{self.base}/{provider}"

    def stats(self) -> dict[str, Any]:
        status, body = http_json("GET", f"{self.base}/_emulator/stats")
        assert status == 200, body
        return body

    def counters(self, secret: str, provider: str = "vidu") -> dict[str, int]:
        """`creates`, `polls`, `cancels`, `running`, `max_running` of one upstream secret."""
        zero = {"creates": 0, "polls": 0, "cancels": 0, "running": 0, "max_running": 0}
        return {**zero, **self.stats()[provider]["by_secret"].get(secret, {})}

    def creates(self, secret: str, provider: str = "vidu") -> int:
        return self.counters(secret, provider)["creates"]

    def fault(self, **rule: Any) -> str:
        """Add a fault rule (emulator/faults.py), e.g. `fault(kind="fail_task", count=1, secret=S)`."""
        status, body = http_json("POST", f"{self.base}/_emulator/faults", rule)
        assert status == 200, body
        return body["id"]

    def clear_faults(self) -> None:
        status, body = http_json("DELETE", f"{self.base}/_emulator/faults")
        assert status == 200, body

    def hold(self, on: bool = True, provider: str | None = "vidu", task_id: str | None = None) -> int:
        """Freeze (or release) every task of `provider`, present and future, or one task."""
        rule: dict[str, Any] = {"on": on}
        if provider is not None:
            rule["provider"] = provider
        if task_id is not None:
            rule["task_id"] = task_id
        status, body = http_json("POST", f"{self.base}/_emulator/hold", rule)
        assert status == 200, body
        return body["changed"]

    def cap(self, secret: str | None, n: int | None, provider: str | None = "vidu") -> None:
        """Cap running jobs per secret (`n` None removes the cap)."""
        rule: dict[str, Any] = {"max_running": n}
        if secret is not None:
            rule["secret"] = secret
        if provider is not None:
            rule["provider"] = provider
        status, body = http_json("POST", f"{self.base}/_emulator/caps", rule)
        assert status == 200, body

    def reset(self, counters_only: bool = False) -> None:
        """Zero the counters; unless `counters_only`, also clear faults and caps and release holds."""
        status, body = http_json("POST", f"{self.base}/_emulator/reset", {"counters_only": counters_only})
        assert status == 200, body


class Emulator(EmulatorControl):
    """A standalone `gengate emulate` process on a free port. It accepts every secret of its pool
    (`new_secret()` hands each out once, so tests can scope stats and faults by secret)."""

    def __init__(self, workdir: Path, task_seconds: float = EMULATOR_TASK_SECONDS, pool: int = 256) -> None:
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.workdir = workdir
        self.task_seconds = task_seconds
        self._pool = [f"emu-{secrets.token_hex(8)}" for _ in range(pool)]
        self._next = 0
        self.log_path = workdir / f"emulator-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def new_secret(self) -> str:
        if self._next >= len(self._pool):
            raise RuntimeError(f"the emulator's pool of {len(self._pool)} upstream secrets is used up")
        secret = self._pool[self._next]
        self._next += 1
        return secret

    def start(self) -> Emulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gengate", "emulate", "--port", str(self.port), "--secret",
             ",".join(self._pool), "--task-seconds", str(self.task_seconds)],
            stdout=log, stderr=subprocess.STDOUT, env=base_env(), start_new_session=True, cwd=NEUTRAL_CWD)
        log.close()
        _wait_http_ok(f"{self.base}/_emulator/stats", self.proc, READY_TIMEOUT, self.log_text)
        return self

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ------------------------------------------------------------------------------------------- gengate serve
class GengateServer:
    """`python -m gengate serve` as a subprocess on a free port (kept across `restart()`).

    stdout+stderr go to `<data_dir>.log` next to the data dir (so the data dir holds only what
    gengate writes). `upstream` is the emulator control of its Vidu channel and `secret` the upstream
    secret that channel uses (sandbox: the in-process emulator and `sandbox-secret`)."""

    def __init__(self, data_dir: Path, database_url: str | None = None, sandbox: bool = True,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.sandbox = sandbox
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.upstream: EmulatorControl | None = EmulatorControl(self.url + "/_sandbox") if sandbox else None
        self.secret: str | None = "sandbox-secret" if sandbox else None
        self._names = 0

    # -------------------------------------------------------------- environment and CLI
    @property
    def env(self) -> dict[str, str]:
        return {**db_env(self.database_url), **self.extra_env}

    def cli(self, *args: str, check: bool = True) -> str:
        return cli(self.data_dir, *args, env=self.env, check=check)

    def cli_run(self, *args: str, check: bool = True, data_dir_last: bool = False
                ) -> subprocess.CompletedProcess[str]:
        return cli_run(self.data_dir, *args, env=self.env, check=check, data_dir_last=data_dir_last)

    def make_key(self, name: str | None = None, credits: int | None = None, models: str | None = None,
                 expires: str | None = None) -> str:
        """`keys create`; returns the key (the last stdout line). `name` defaults to a unique one."""
        return self.make_named_key(name, credits, models, expires)[1]

    def make_named_key(self, name: str | None = None, credits: int | None = None, models: str | None = None,
                       expires: str | None = None) -> tuple[str, str]:
        if name is None:
            self._names += 1
            name = f"k{self._names}-{secrets.token_hex(4)}"
        args = ["keys", "create", "--name", name]
        if credits is not None:
            args += ["--credits", str(credits)]
        if models is not None:
            args += ["--models", models]
        if expires is not None:
            args += ["--expires", expires]
        out = self.cli(*args).strip().splitlines()
        assert out and out[-1].startswith("sk-"), out
        return name, out[-1]

    def keys(self) -> dict[str, dict[str, Any]]:
        """`keys list --json`, by name."""
        return {k["name"]: k for k in json.loads(self.cli("keys", "list", "--json").strip().splitlines()[-1])}

    def credits(self, name: str) -> int | None:
        return self.keys()[name]["credits"]

    def add_channel(self, provider: str, base_url: str, *keys: str, name: str | None = None,
                    extra: tuple[str, ...] = ()) -> int:
        args = ["channels", "add", "--provider", provider, "--base-url", base_url]
        for k in keys:
            args += ["--key", k]
        if name:
            args += ["--name", name]
        return int(self.cli(*args, *extra).strip().splitlines()[-1])

    def use_emulator(self, emulator: Emulator, name: str = "emu-vidu", max_concurrency: int | None = None) -> str:
        """Point a Vidu channel at the standalone emulator with a secret of its own; returns it."""
        secret = emulator.new_secret()
        extra = ("--max-concurrency", str(max_concurrency)) if max_concurrency else ()
        self.add_channel("vidu", emulator.provider_url("vidu"), secret, name=name, extra=extra)
        self.upstream, self.secret = emulator, secret
        return secret

    # -------------------------------------------------------------- process
    def start(self) -> GengateServer:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "gengate", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port)]
        if self.sandbox:
            argv.append("--sandbox")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=base_env(self.env),
                                     start_new_session=True, cwd=NEUTRAL_CWD)
        log.close()
        _wait_http_ok(f"{self.url}/healthz", self.proc, READY_TIMEOUT, self.log_text)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Send `sig` and wait up to `timeout` s for the exit; returns the exit code. A process that
        does not exit in time is killed and the test fails."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"gengate serve did not exit within {timeout} s of signal {sig}") from None

    def kill(self) -> None:
        """SIGKILL the server (and anything in its process group)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def restart(self, sig: int = signal.SIGTERM) -> GengateServer:
        """Stop with `sig` (SIGKILL: kill) and start again on the same data dir, database and port."""
        if sig == signal.SIGKILL:
            self.kill()
        else:
            self.stop(sig)
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def close(self) -> None:
        try:
            self.stop(timeout=15)
        except AssertionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                self.kill()

    # -------------------------------------------------------------- database
    def db_query(self, sql: str) -> list[dict[str, Any]]:
        """Run a read-only query on the server's database (SQLite file or PostgreSQL)."""
        if self.database_url:
            return pg_fetch(self.database_url, sql)
        import sqlite3

        conn = sqlite3.connect(f"file:{self.data_dir / 'gengate.db'}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    def stored_bytes(self) -> dict[str, bytes]:
        """Every file under the data dir (incl. SQLite's -wal/-shm), and for PostgreSQL a text dump of
        every table, by name."""
        found: dict[str, bytes] = {}
        for path in sorted(self.data_dir.rglob("*")):
            if path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    found[str(path)] = path.read_bytes()
        if self.database_url:
            found["postgresql-dump"] = pg_dump_text(self.database_url).encode()
        return found


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One standalone `gengate emulate` for the whole session (never killed by a test)."""
    emu = Emulator(tmp_path_factory.mktemp("emulator")).start()
    try:
        yield emu
    finally:
        emu.stop()


ServerFactory = Callable[..., GengateServer]


@pytest.fixture(scope="module")
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """`make_server(database_url=None, sandbox=True, env=None, emulator=None, start=True)`: a server on
    a fresh data dir (and the given database); with `emulator`, its Vidu channel points there (added
    before the start). Every server is stopped at module end."""
    servers: list[GengateServer] = []

    def make(database_url: str | None = None, sandbox: bool = True, env: dict[str, str] | None = None,
             emulator: Emulator | None = None, start: bool = True, max_concurrency: int | None = None
             ) -> GengateServer:
        root = tmp_path_factory.mktemp("gg")
        server = GengateServer(root / "data", database_url=database_url, sandbox=sandbox, env=env)
        servers.append(server)
        if emulator is not None:
            server.use_emulator(emulator, max_concurrency=max_concurrency)
        return server.start() if start else server

    try:
        yield make
    finally:
        for s in servers:
            s.close()


@pytest.fixture(scope="module")
def sandbox_server(backend: Backend, make_server: ServerFactory) -> GengateServer:
    """`gengate serve --sandbox` on the module's backend, shared by the module's tests."""
    return make_server(database_url=backend.url)


@pytest.fixture(scope="module")
def ext_server(backend: Backend, make_server: ServerFactory, emulator: Emulator) -> Iterator[GengateServer]:
    """`gengate serve` (no sandbox) whose only Vidu channel is the standalone emulator, with a secret
    of its own (`ext_server.secret`); emulator faults added by tests are cleared after the module."""
    server = make_server(database_url=backend.new_database(), sandbox=False, emulator=emulator)
    yield server
    emulator.clear_faults()


@pytest.fixture
def home(backend: Backend, tmp_path: Path) -> GengateServer:
    """An unstarted GengateServer (fresh data dir; for pg a fresh database), for CLI-only tests:
    `home.cli(...)`, `home.cli_run(...)`, `home.db_query(sql)`, `home.stored_bytes()`."""
    return GengateServer(tmp_path / "data", database_url=backend.new_database(), sandbox=False)


@pytest.fixture(name="cli")
def cli_fixture() -> Callable[..., str]:
    """`cli(data_dir, *args, env=None, check=True)` → stdout of `python -m gengate --data-dir D ...`."""
    return cli


@pytest.fixture(name="cli_run")
def cli_run_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Like `cli` but returns the CompletedProcess (stdout, stderr, returncode); `data_dir_last=True`
    puts `--data-dir` after the subcommand."""
    return cli_run


@pytest.fixture
async def http() -> Any:
    """A fresh aiohttp session (no default headers, no cookie jar sharing between tests)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


# ------------------------------------------------------------------------------------------- Vidu client
@dataclass
class Reply:
    status: int
    body: Any
    text: str
    headers: Any


class ViduClient:
    """Raw-HTTP client of gengate's `/vidu/v1` (the web/app format), authenticated with one key."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str | None, scheme: str = "Token") -> None:
        self.http, self.base, self.key, self.scheme = http, base.rstrip("/"), key, scheme

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"{self.scheme} {self.key}"} if self.key is not None else {}
        h.update(extra or {})
        return h

    async def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                      headers: dict[str, str] | None = None) -> Reply:
        kwargs: dict[str, Any] = {"headers": self.headers(headers)}
        if json_body is not None:
            kwargs["json"] = json_body
        elif data is not None:
            kwargs["data"] = data
        async with self.http.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text(errors="replace")
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            return Reply(resp.status, body, text, resp.headers)

    async def create(self, body: Any = None, *, data: Any = None, headers: dict[str, str] | None = None) -> Reply:
        if data is not None:
            headers = {"Content-Type": "application/json", **(headers or {})}
        return await self.request("POST", "/vidu/v1/tasks", json_body=body, data=data, headers=headers)

    async def create_ok(self, body: Any, **kw: Any) -> dict[str, Any]:
        reply = await self.create(body, **kw)
        assert reply.status == 200, (reply.status, reply.text)
        return reply.body

    async def get(self, task_id: str) -> Reply:
        return await self.request("GET", f"/vidu/v1/tasks/{task_id}")

    async def wait(self, task_id: str, states: frozenset[str] = TERMINAL,
                   timeout: float = 40) -> dict[str, Any]:  # noqa: ASYNC109
        """Poll GET until the task's state is in `states` (at most `timeout` s); returns the task object."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            reply = await self.get(task_id)
            assert reply.status == 200, (reply.status, reply.text)
            last = reply.body
            if last["state"] in states:
                return last
            await asyncio.sleep(0.15)
        raise AssertionError(f"task {task_id} not in {sorted(states)} within {timeout} s: {last}")

    async def events(self, task_id: str,
                     timeout: float = 30) -> tuple[Reply, list[tuple[float, Any]], list[str]]:  # noqa: ASYNC109
        """Read the SSE stream `GET /vidu/v1/tasks/state?id=` to its end (at most `timeout` s, else
        aiohttp's timeout error). Returns the reply (headers,
        status; body only for a non-stream reply), the events as (seconds since the request, parsed
        JSON), and every raw non-empty line."""
        started = time.monotonic()
        events: list[tuple[float, Any]] = []
        lines: list[str] = []
        async with self.http.get(f"{self.base}/vidu/v1/tasks/state", params={"id": task_id},
                                 headers=self.headers({"Accept": "text/event-stream"}),
                                 timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200 or not resp.content_type.startswith("text/event-stream"):
                text = await resp.text()
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                return Reply(resp.status, body, text, resp.headers), [], []
            while True:
                raw = await resp.content.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                if not line:
                    continue
                lines.append(line)
                if line.startswith("data:"):
                    events.append((time.monotonic() - started, json.loads(line[5:].strip())))
            return Reply(resp.status, None, "", resp.headers), events, lines


@pytest.fixture
def vidu(http: aiohttp.ClientSession) -> Callable[..., ViduClient]:
    """`vidu(server, key, scheme="Token")` → a ViduClient on `server.url` (server may be a URL)."""

    def make(server: GengateServer | str, key: str | None, scheme: str = "Token") -> ViduClient:
        base = server if isinstance(server, str) else server.url
        return ViduClient(http, base, key, scheme)

    return make


def assert_vidu_error(reply: Reply, status: int | None = None, reason: str | None = None) -> None:
    """Vidu's envelope `{code, reason, message, metadata.trace_id}` with `code` = the HTTP status."""
    assert "Traceback" not in reply.text, reply.text
    if status is not None:
        assert reply.status == status, (reply.status, reply.text)
    body = reply.body
    assert isinstance(body, dict), (reply.status, reply.text)
    assert body.get("code") == reply.status, body
    assert isinstance(body.get("reason"), str) and body["reason"], body
    assert isinstance(body.get("message"), str), body
    assert isinstance(body.get("metadata"), dict) and isinstance(body["metadata"].get("trace_id"), str), body
    assert body["metadata"]["trace_id"], body
    if reason is not None:
        assert body["reason"] == reason, body


@pytest.fixture(name="assert_vidu_error")
def assert_vidu_error_fixture() -> Callable[..., None]:
    """`assert_vidu_error(reply, status=None, reason=None)`: checks Vidu's error envelope."""
    return assert_vidu_error
