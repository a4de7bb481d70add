"""The processes the end-to-end tests drive: `GengateServer` (`python -m gengate serve` on a free
port) and `Emulator` (a standalone `gengate emulate`), plus `EmulatorControl` for the `/_emulator/*`
controls of either one (a sandbox's are under `/_sandbox`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cli import NEUTRAL_CWD, base_env, cli, cli_run, db_env
from harness.services import pg_dump_text, pg_fetch

READY_TIMEOUT = 60.0
EMULATOR_TASK_SECONDS = 2.0


PORT_TRIES = 3  # a port free_port() found may be taken by another process before the server binds it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body: Any = None, timeout: float = 10,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers={**sent, **(headers or {})})
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


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Callable[[], str]) -> None:
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

    def __init__(self, base: str, token: Callable[[], str] | None = None) -> None:
        """`token` gives the bearer token the controls need (a sandbox's: the admin token)."""
        self.base = base.rstrip("/")
        self.token = token

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """`method` on `/_emulator/<path>`, with the token when there is one."""
        headers = {"Authorization": f"Bearer {self.token()}"} if self.token else None
        return http_json(method, f"{self.base}/_emulator/{path}", body, headers=headers)

    def provider_url(self, provider: str) -> str:
        """The channel base URL for `provider`."""
        return f"{self.base}/{provider}"

    def stats(self) -> dict[str, Any]:
        status, body = self.control("GET", "stats")
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
        status, body = self.control("POST", "faults", rule)
        assert status == 200, body
        return body["id"]

    def clear_faults(self) -> None:
        status, body = self.control("DELETE", "faults")
        assert status == 200, body

    def hold(self, on: bool = True, provider: str | None = "vidu", task_id: str | None = None) -> int:
        """Freeze (or release) every task of `provider`, present and future, or one task."""
        rule: dict[str, Any] = {"on": on}
        if provider is not None:
            rule["provider"] = provider
        if task_id is not None:
            rule["task_id"] = task_id
        status, body = self.control("POST", "hold", rule)
        assert status == 200, body
        return body["changed"]

    def cap(self, secret: str | None, n: int | None, provider: str | None = "vidu") -> None:
        """Cap running jobs per secret (`n` None removes the cap)."""
        rule: dict[str, Any] = {"max_running": n}
        if secret is not None:
            rule["secret"] = secret
        if provider is not None:
            rule["provider"] = provider
        status, body = self.control("POST", "caps", rule)
        assert status == 200, body

    def reset(self, counters_only: bool = False) -> None:
        """Zero the counters; unless `counters_only`, also clear faults and caps and release holds."""
        status, body = self.control("POST", "reset", {"counters_only": counters_only})
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
        wait_http_ok(f"{self.base}/_emulator/stats", self.proc, READY_TIMEOUT, self.log_text)
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
    secret that channel uses (sandbox: the in-process emulator, whose controls take the admin token,
    and the sandbox's random upstream secret, read from the database)."""

    def __init__(self, data_dir: Path, database_url: str | None = None, sandbox: bool = True,
                 env: dict[str, str] | None = None, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.args = args  # added to the `serve` command line, e.g. ("--workers", "2")
        self.database_url = database_url
        self.sandbox = sandbox
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.upstream: EmulatorControl | None = (EmulatorControl(self.url + "/_sandbox", lambda: self.admin_token)
                                                 if sandbox else None)
        self._secret: str | None = None
        self._names = 0

    # -------------------------------------------------------------- admin token and sandbox secret
    @property
    def admin_token(self) -> str:
        """GENGATE_ADMIN_TOKEN when the server is given one, else `<data-dir>/admin.token` (written by
        the server at start, or by `gengate admin token`)."""
        if self.env.get("GENGATE_ADMIN_TOKEN"):
            return self.env["GENGATE_ADMIN_TOKEN"]
        path = self.data_dir / "admin.token"
        if not path.exists():
            return self.cli("admin", "token").strip()
        return path.read_text("utf-8").strip()

    @property
    def secret(self) -> str | None:
        """The upstream secret of the Vidu channel: the one given (`use_emulator`), else the sandbox's."""
        if self._secret is None and self.sandbox:
            self._secret = self.sandbox_secret()
        return self._secret

    @secret.setter
    def secret(self, value: str | None) -> None:
        self._secret = value

    def sandbox_secret(self) -> str:
        """The sandbox's upstream secret, read from the database (sealed with the master key)."""
        from gengate.core.crypto import SecretBox, load_master_key

        rows = self.db_query("SELECT value FROM settings_kv WHERE name = 'sandbox_upstream_secret'")
        assert rows, "no sandbox secret in the database (has the server started with --sandbox?)"
        box = SecretBox(load_master_key(self.env.get("GENGATE_SECRET_KEY"), self.data_dir))
        return box.open(rows[0]["value"])

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
        for _ in range(PORT_TRIES):
            argv = [sys.executable, "-m", "gengate", "serve", "--data-dir", str(self.data_dir),
                    "--port", str(self.port), *self.args, *(["--sandbox"] if self.sandbox else [])]
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            log = self.log_path.open("ab")
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=base_env(self.env),
                                         start_new_session=True, cwd=NEUTRAL_CWD)
            log.close()
            wait_http_ok(f"{self.url}/healthz", self.proc, READY_TIMEOUT, self.log_text)
            if self._bound(offset):
                return self
            # Another process took the port between free_port() and the bind (the /healthz that
            # answered was that process's): take another port and start again.
            self.proc.wait(20)
            self._use_port(free_port())
        raise AssertionError(f"could not bind a port in {PORT_TRIES} tries:\n{self.log_text()[-3000:]}")

    def _bound(self, offset: int) -> bool:
        """Whether this start's server bound its port (uvicorn logs the bind, or the failure)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                text = f.read()
            if b"address already in use" in text:
                return False
            if b"Uvicorn running on" in text:
                return True
            if self.proc is None or self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        raise AssertionError(f"the server never said whether it bound its port:\n{self.log_text()[-3000:]}")

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        if self.sandbox:
            self.upstream = EmulatorControl(self.url + "/_sandbox", lambda: self.admin_token)

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


ServerFactory = Callable[..., GengateServer]  # the `make_server` fixture: makes and starts a server
