"""The `gengate` command: serve, emulate, keys, channels (interface.md "Install and run").

The CLI writes the database directly and never needs a running server; a running server sees the
change within its next config check (1 s), or at once when GENGATE_REDIS_URL is set (the CLI announces
the change there).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gengate.cli_tasks import tasks_app, usage_command
from gengate.config import Settings, load_settings


def _flags_without_metavar() -> None:
    """Typer 0.29 lists a flag as `--json <bool>` although it takes no value: list flags bare."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_metavar()
app = typer.Typer(add_completion=False, no_args_is_help=True, help="gengate: one gateway for many AI providers.")
keys_app = typer.Typer(no_args_is_help=True, help="Client keys.")
channels_app = typer.Typer(no_args_is_help=True, help="Upstream channels.")
app.add_typer(keys_app, name="keys")
app.add_typer(channels_app, name="channels")
admin_app = typer.Typer(no_args_is_help=True, help="The operator's admin token.")
app.add_typer(admin_app, name="admin")
app.add_typer(tasks_app, name="tasks")
app.command("usage")(usage_command)
console = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where SQLite, files and keys live.")]
KeyRef = Annotated[str, typer.Argument(metavar="KEY", help="The key's name or id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ChannelRef = Annotated[str, typer.Argument(metavar="CHANNEL", help="The channel's name or id.")]
_root: dict[str, Any] = {}


@app.callback()
def _main(data_dir: DataDir = None, config: Annotated[Path | None, typer.Option(help="Config file (TOML).")] = None
          ) -> None:
    _root["data_dir"] = data_dir
    _root["config"] = config


def _settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    return load_settings({"data_dir": data_dir or _root.get("data_dir"), "config": _root.get("config"),
                          **overrides})


def _run(coro_fn: Any, settings: Settings, create: bool = True) -> Any:
    """Run `coro_fn(db, box)` on the data dir's database. With `create` False a command that only
    reads or changes what exists refuses a data dir with no database (a mistyped `--data-dir` would
    otherwise get a new, empty one); with `create` True a new database is announced on stderr."""
    from gengate.core.crypto import SecretBox, load_master_key
    from gengate.core.errors import GengateError
    from gengate.db.engine import Database

    if settings.database_url is None and not (settings.data_dir / "gengate.db").exists():
        if not create:
            console.print(f"[red]error:[/red] no gengate database in {str(settings.data_dir)!r} (the data dir "
                          f"{'has no gengate.db' if settings.data_dir.exists() else 'does not exist'}); "
                          "pass the --data-dir the server uses, or set GENGATE_DATABASE_URL")
            raise typer.Exit(2)
        console.print(f"note: creating a new database in {str(settings.data_dir)!r}")

    async def go() -> Any:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            box = SecretBox(load_master_key(settings.secret_key, settings.data_dir))
            return await coro_fn(db, box)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except GengateError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None


def _read(query: Any, data_dir: Path | None) -> Any:
    """Run `query(conn, box)` in a read transaction of the data dir's database."""

    async def go(db: Any, box: Any) -> Any:
        async with db.read() as conn:
            return await query(conn, box)

    return _run(go, _settings(data_dir), create=False)


def _write(change: Any, data_dir: Path | None, create: bool = False) -> Any:
    """Run `change(conn, box)` in a write transaction of the data dir's database."""

    settings = _settings(data_dir)

    async def go(db: Any, box: Any) -> Any:
        async with db.write() as conn:
            result = await change(conn, box)
        if settings.redis_url:  # running servers drop their key and channel caches at once
            from gengate.core.bus import CONFIG, announce

            if not await announce(settings.redis_url, settings.redis_prefix, CONFIG):
                console.print("note: Redis unreachable; running servers see the change within 2 s")
        return result

    return _run(go, settings, create=create)


# ------------------------------------------------------------------------------------------ serve
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Built-in emulated upstreams.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the database and the port.")] = 1,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", help="Base of every URL gengate hands out (default http://HOST:PORT).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log one line per request.")] = False,
) -> None:
    """Run the gateway."""
    import uvicorn

    overrides = {"host": host, "port": port, "data_dir": data_dir, "sandbox": sandbox or None,
                 "workers": workers, "public_url": public_url}
    settings = _settings(**overrides)
    # Worker processes build their settings from the environment: hand the flags over through it.
    os.environ["GENGATE_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["GENGATE_HOST"] = settings.host
    os.environ["GENGATE_PORT"] = str(settings.port)
    os.environ["GENGATE_SANDBOX"] = "1" if settings.sandbox else "0"
    if settings.public_url:
        os.environ["GENGATE_PUBLIC_URL"] = settings.public_url
    if _root.get("config"):
        os.environ["GENGATE_CONFIG"] = str(_root["config"])
    _configure_logging(settings.log_level)
    from gengate.web.server import LimitedHttpProtocol

    uvicorn.run("gengate.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers if settings.workers > 1 else None, access_log=access_log,
                log_level=settings.log_level, timeout_graceful_shutdown=5, lifespan="on",
                proxy_headers=False, server_header=False, http=LimitedHttpProtocol)


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin, each start


@app.command()
def emulate(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
    secret: Annotated[str, typer.Option(help="Accepted upstream secret(s), comma-separated.")] = "sandbox-secret",
    task_seconds: Annotated[float, typer.Option("--task-seconds", help="Longest time a task takes.")] = float(
        os.environ.get("GENGATE_SANDBOX_TASK_SECONDS", "10")),
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Keep emulator state here.")] = None,
) -> None:
    """Serve only the emulated upstreams."""
    import uvicorn

    from gengate.emulator.app import build_emulator_app

    public = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    emu = build_emulator_app(secret=secret, task_seconds=(task_seconds * 0.3, task_seconds),
                             state_dir=state_dir, public_base=public)
    _configure_logging("warning")
    uvicorn.run(emu, host=host, port=port, access_log=False, log_level="warning", server_header=False)


# ------------------------------------------------------------------------------------------ keys
def _parse_expiry(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        console.print(f"[red]error:[/red] --expires must be ISO-8601, got {raw!r}")
        raise typer.Exit(2) from None
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A name for the key (unique).")],
    credits: Annotated[int | None, typer.Option(
        "--credits", min=0, help="Credits it may spend (1 credit = US$0.000001); unlimited without.")] = None,
    models: Annotated[str | None, typer.Option("--models", help="Comma-separated model patterns.")] = None,
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Expiry, ISO-8601 (e.g. 2027-01-31 or 2027-01-31T12:00:00+00:00).")] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="At most this many requests per minute "
                                            "(shared through Redis across processes).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a client key; it is printed once, as the last line of stdout."""
    from gengate.core.keys import create_key

    expires_at = _parse_expiry(expires)
    if expires_at is not None and expires_at <= time.time():
        console.print(f"[yellow]warning:[/yellow] --expires {expires} is in the past: the key is expired "
                          "from its creation")

    _id, plain, whsec = _write(lambda conn, box: create_key(conn, box, name=name, credits=credits, models=models,
                                                            expires_at=expires_at, rpm=rpm), data_dir,
                               create=True)
    console.print(f"key [bold]{name}[/bold] created (id {_id}); it is shown only once.")
    console.print(f"webhook secret: {whsec}")
    sys.stdout.write(plain + "\n")


@keys_app.command("list")
def keys_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Every key with its balance, models and expiry (never the key itself)."""
    from gengate.core.keys import list_keys

    rows = _read(lambda conn, box: list_keys(conn), data_dir)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("id", "name", "key", "credits", "models", "expires", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["hint"], "unlimited" if r["credits"] is None else str(r["credits"]),
                      r["models"] or "*", _when(r["expires_at"]), "yes" if r["revoked"] else "")
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name_or_id: KeyRef, data_dir: DataDir = None) -> None:
    """Revoke a key: its next request gets 401 (on every running server within 2 s)."""
    from gengate.core.keys import revoke_key

    if not _write(lambda conn, box: revoke_key(conn, name_or_id), data_dir):
        console.print(f"[red]error:[/red] no active key {name_or_id!r}")
        raise typer.Exit(1)
    console.print(f"key {name_or_id} revoked")


@keys_app.command("webhook-secret")
def keys_webhook_secret(name: KeyRef, data_dir: DataDir = None) -> None:
    """Print the key's webhook signing secret (whsec_...)."""
    from gengate.core.keys import webhook_secret

    value = _read(lambda conn, box: webhook_secret(conn, box, name), data_dir)
    if value is None:
        console.print(f"[red]error:[/red] no key {name!r}")
        raise typer.Exit(1)
    sys.stdout.write(value + "\n")


@admin_app.command("token")
def admin_token(data_dir: DataDir = None) -> None:
    """Print the admin token (GENGATE_ADMIN_TOKEN, else the database's, created on first use)."""
    from gengate.core.admin import admin_token as load_admin_token

    settings = _settings(data_dir)
    sys.stdout.write(_run(lambda db, box: load_admin_token(db, box, settings), settings) + "\n")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).isoformat(timespec="seconds") if ts else ""


# ------------------------------------------------------------------------------------------ channels
@channels_app.command("add")
def channels_add(
    provider: Annotated[str, typer.Option("--provider", help="Provider folder name (vidu, kling, openai, ...).")],
    base_url: Annotated[str, typer.Option("--base-url", help="The upstream's base URL.")],
    key: Annotated[list[str], typer.Option("--key", help="Upstream secret; repeat for several.")],
    name: Annotated[str | None, typer.Option("--name", help="A name (default: the provider's).")] = None,
    models: Annotated[str | None, typer.Option(
        "--models", help="Comma-separated model patterns it serves (default: all).")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Lower numbers are tried first.")] = 0,
    weight: Annotated[int, typer.Option("--weight", min=1, help="Share of picks within a priority.")] = 1,
    max_concurrency: Annotated[int | None, typer.Option(
        "--max-concurrency", min=1, help="Running tasks per secret (default: unlimited).")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="K=V provider option.")] = None,
    model_map: Annotated[list[str] | None, typer.Option("--model-map", help="CLIENT=UPSTREAM model rename.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add an upstream channel."""
    from gengate.core.channels import add_channel
    from gengate.providers.registry import provider_names

    opts: dict[str, str] = {}
    for item in option or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            console.print(f"[red]error:[/red] --option takes K=V, got {item!r}")
            raise typer.Exit(2)
        opts[k] = v
    renames: dict[str, str] = {}
    for item in model_map or []:
        client, sep, upstream = item.partition("=")
        if not sep or not client.strip() or not upstream.strip():
            console.print(f"[red]error:[/red] --model-map takes CLIENT=UPSTREAM, got {item!r}")
            raise typer.Exit(2)
        renames[client.strip()] = upstream.strip()

    channel_id = _write(lambda conn, box: add_channel(
        conn, box, providers=provider_names(), provider=provider, base_url=base_url, secrets=list(key), name=name,
        models=models, priority=priority, weight=weight, max_concurrency=max_concurrency, options=opts,
        model_map=renames), data_dir, create=True)
    console.print(f"channel {name or provider} added (id {channel_id}, {len(key)} secret(s))")
    sys.stdout.write(f"{channel_id}\n")


@channels_app.command("list")
def channels_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Every channel with the state of each secret (never the secret itself)."""
    from gengate.core.channels import list_channels

    rows = _read(lambda conn, box: list_channels(conn), data_dir)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("id", "name", "provider", "base url", "models", "prio", "weight", "status", "secrets")
    for r in rows:
        status = "enabled" if r["enabled"] else f"disabled: {r['status_reason'] or ''}"
        secrets = "; ".join(
            f"#{s['id']} {s['fingerprint']} {'on' if s['enabled'] else 'off: ' + (s['status_reason'] or '')}"
            f" run {s['running']}/{s['max_concurrency'] or '-'}" for s in r["secrets"])
        table.add_row(str(r["id"]), r["name"], r["provider"], r["base_url"], r["models"] or "*",
                      str(r["priority"]), str(r["weight"]), status, secrets)
    Console(width=200).print(table)


def _set_enabled(name_or_id: str, enabled: bool, data_dir: Path | None) -> None:
    from gengate.core.channels import set_channel_enabled

    if not _write(lambda conn, box: set_channel_enabled(conn, name_or_id, enabled), data_dir):
        console.print(f"[red]error:[/red] no channel {name_or_id!r}")
        raise typer.Exit(1)
    console.print(f"channel {name_or_id} {'enabled' if enabled else 'disabled'}")


@channels_app.command("enable")
def channels_enable(name_or_id: ChannelRef, data_dir: DataDir = None) -> None:
    """Route to the channel again (its secrets' failure state is cleared)."""
    _set_enabled(name_or_id, True, data_dir)


@channels_app.command("disable")
def channels_disable(name_or_id: ChannelRef, data_dir: DataDir = None) -> None:
    """Stop routing new work to the channel; tasks already on it finish."""
    _set_enabled(name_or_id, False, data_dir)


@channels_app.command("delete")
def channels_delete(name_or_id: ChannelRef, data_dir: DataDir = None) -> None:
    """Take a channel out of routing for good; tasks already bound to its secrets finish on them."""
    from gengate.core.channels import delete_channel

    if not _write(lambda conn, box: delete_channel(conn, name_or_id), data_dir):
        console.print(f"[red]error:[/red] no channel {name_or_id!r}")
        raise typer.Exit(1)
    console.print(f"channel {name_or_id} deleted")


def main() -> None:
    app()
