"""The fixtures of the end-to-end harness (the harness itself, processes, services and clients, is
the `tests/harness/` package; its names are importable from here too).

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

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytest.register_assert_rewrite("harness")

from harness.cli import FAST_ENV, NEUTRAL_CWD, base_env, cli, cli_run, db_env  # noqa: E402
from harness.processes import (  # noqa: E402
    EMULATOR_TASK_SECONDS,
    READY_TIMEOUT,
    Emulator,
    EmulatorControl,
    GengateServer,
    ServerFactory,
    free_port,
    http_json,
    wait_http_ok,
)
from harness.services import (  # noqa: E402
    PG_ADMIN_URL,
    PG_HOST_URL,
    REDIS_URL,
    Backend,
    backend_for,
    check_postgres,
    check_redis,
    pg_dump_text,
    pg_fetch,
    redis_prefix_on,
    service_unavailable,
    services_required,
)
from harness.vidu import TERMINAL, Reply, ViduClient, assert_vidu_error  # noqa: E402

# Names tests import from here (`from conftest import Emulator, assert_vidu_error`) or used to.
__all__ = ["EMULATOR_TASK_SECONDS", "FAST_ENV", "NEUTRAL_CWD", "PG_ADMIN_URL", "PG_HOST_URL", "READY_TIMEOUT",
           "REDIS_URL", "TERMINAL", "Backend", "Emulator", "EmulatorControl", "GengateServer", "Reply", "ViduClient",
           "assert_vidu_error", "base_env", "check_postgres", "cli", "cli_run", "db_env", "free_port", "http_json",
           "pg_dump_text", "pg_fetch", "service_unavailable", "services_required", "wait_http_ok"]


@pytest.fixture(scope="module", params=["sqlite", "pg"], ids=["sqlite", "pg"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The database backend for database-touching tests. For `pg` a fresh database
    `gengate_<hex>` is created and dropped (WITH (FORCE)) after the module."""
    with backend_for(request.param) as b:
        yield b


@pytest.fixture(scope="session")
def redis_url() -> str:
    return check_redis()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A random key prefix (`gengate-test-<hex>:`) on `redis_url`; its keys are deleted after the test."""
    with redis_prefix_on(redis_url) as prefix:
        yield prefix


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One standalone `gengate emulate` for the whole session (never killed by a test)."""
    emu = Emulator(tmp_path_factory.mktemp("emulator")).start()
    try:
        yield emu
    finally:
        emu.stop()



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
    """A fresh aiohttp session (no default headers, no cookie jar sharing between tests). Idle
    connections are dropped after 2 s, well before the server's 5 s keep-alive ends, so a request is
    never sent on a connection the server is closing at that moment (a ServerDisconnectedError)."""
    connector = aiohttp.TCPConnector(keepalive_timeout=2)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session



@pytest.fixture
def vidu(http: aiohttp.ClientSession) -> Callable[..., ViduClient]:
    """`vidu(server, key, scheme="Token")` → a ViduClient on `server.url` (server may be a URL)."""

    def make(server: GengateServer | str, key: str | None, scheme: str = "Token") -> ViduClient:
        base = server if isinstance(server, str) else server.url
        return ViduClient(http, base, key, scheme)

    return make



@pytest.fixture(name="assert_vidu_error")
def assert_vidu_error_fixture() -> Callable[..., None]:
    """`assert_vidu_error(reply, status=None, reason=None)`: checks Vidu's error envelope."""
    return assert_vidu_error
