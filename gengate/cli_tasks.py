"""`gengate tasks list|show|watch` and `gengate usage` (interface.md "Operators and key holders", CLI).

Like the rest of the CLI they read the database of `--data-dir` directly (a running server is not
needed; tasks move because the servers sharing that database move them). Task states are the unified
statuses (queued, in_progress, succeeded, failed, cancelled); `--json` prints the listing as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gengate.core.states import UNIFIED_STATUS, TaskState

tasks_app = typer.Typer(no_args_is_help=True, help="Tasks of every provider and key (read from the database).")
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where SQLite, files and keys live.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = tuple(dict.fromkeys(UNIFIED_STATUS.values()))
USAGE_GROUPS = ("hour", "day", "model", "key", "channel", "provider")
err = Console(stderr=True)


def _unified(state: str) -> str:
    try:
        return UNIFIED_STATUS.get(TaskState(state), state)
    except ValueError:
        return state


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


def _usage_error(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _task(row: Any, keys_by_id: dict[int, str], chans: dict[int, str]) -> dict[str, Any]:
    channel_id = row.channel_id or row.last_channel_id
    status = _unified(row.state)
    return {"id": row.public_id, "provider": row.provider, "model": row.model, "status": status,
            "progress": 100 if status == "succeeded" else row.progress, "key_id": row.key_id,
            "key": keys_by_id.get(row.key_id), "channel": chans.get(channel_id) if channel_id else None,
            "created_at": row.created_at, "error": row.error_message if status == "failed" else None}


async def _names(conn: Any) -> tuple[dict[int, str], dict[int, str]]:
    from sqlalchemy import select

    from gengate.db.models import channels, keys

    key_names = {r.id: r.name for r in (await conn.execute(select(keys.c.id, keys.c.name))).all()}
    chans = {r.id: r.name.split("#deleted-")[0]
             for r in (await conn.execute(select(channels.c.id, channels.c.name))).all()}
    return key_names, chans


def _list_query(provider: str | None, state: str | None, key: str | None, limit: int) -> Any:
    from sqlalchemy import and_, or_, select

    from gengate.db.models import keys, tasks

    async def query(conn: Any, _box: Any) -> list[dict[str, Any]]:
        cond = and_(tasks.c.id > 0)
        if provider:
            cond = and_(cond, tasks.c.provider == provider)
        if state:
            cond = and_(cond, tasks.c.state.in_([s.value for s, u in UNIFIED_STATUS.items() if u == state]))
        if key:
            key_cond = keys.c.name == key
            if key.isdigit():
                key_cond = or_(key_cond, keys.c.id == int(key))
            key_id = await conn.scalar(select(keys.c.id).where(key_cond))
            if key_id is None:
                raise _usage_error(f"no key named {key!r}")
            cond = and_(cond, tasks.c.key_id == key_id)
        rows = (await conn.execute(select(tasks).where(cond).order_by(tasks.c.id.desc()).limit(limit))).all()
        key_names, chans = await _names(conn)
        return [_task(r, key_names, chans) for r in rows]

    return query


def _by_ids(ids: list[str]) -> Any:
    from sqlalchemy import select

    from gengate.db.models import task_events, tasks

    async def query(conn: Any, _box: Any) -> list[dict[str, Any]]:
        rows = {r.public_id: r for r in (await conn.execute(select(tasks).where(tasks.c.public_id.in_(ids)))).all()}
        missing = [i for i in ids if i not in rows]
        if missing:
            raise _usage_error(f"no task {', '.join(missing)}")
        key_names, chans = await _names(conn)
        found = []
        for task_id in ids:
            row = rows[task_id]
            item = _task(row, key_names, chans)
            events = (await conn.execute(select(task_events).where(task_events.c.task_id == row.id)
                                         .order_by(task_events.c.id))).all()
            item["events"] = [{"at": e.at, "from": _unified(e.from_state) if e.from_state else None,
                               "to": _unified(e.to_state), "reason": e.reason} for e in events]
            found.append(item)
        return found

    return query


def _read(query: Any, data_dir: Path | None) -> Any:
    from gengate import cli

    return cli._read(query, data_dir)


@tasks_app.command("list")
def tasks_list(
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider (channels add names).")] = None,
    state: Annotated[str | None, typer.Option("--state", help=f"Only this status: {', '.join(STATUSES)}.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this key (name or id).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="At most this many, newest first.")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """List tasks, newest first."""
    if state is not None and state not in STATUSES:
        raise _usage_error(f"--state must be one of {', '.join(STATUSES)}, got {state!r}")
    rows = _read(_list_query(provider, state, key, limit), data_dir)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("id", "provider", "model", "status", "progress", "key", "channel", "created")
    for r in rows:
        table.add_row(r["id"], r["provider"], r["model"], r["status"],
                      "" if r["progress"] is None else f"{r['progress']}%", r["key"] or str(r["key_id"]),
                      r["channel"] or "", _when(r["created_at"]))
    Console(width=200).print(table)


@tasks_app.command("show")
def tasks_show(
    task_id: Annotated[str, typer.Argument(help="The task's id, as its family shows it.")],
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """One task with its event trail."""
    (item,) = _read(_by_ids([task_id]), data_dir)
    if as_json:
        sys.stdout.write(json.dumps(item) + "\n")
        return
    out = Console(width=200)
    for name in ("id", "provider", "model", "status", "progress", "key", "channel", "error"):
        if item.get(name) is not None:
            out.print(f"[bold]{name}[/bold]: {item[name]}")
    out.print(f"[bold]created[/bold]: {_when(item['created_at'])}")
    table = Table("at", "from", "to", "reason", title="events")
    for e in item["events"]:
        table.add_row(_when(e["at"]), e["from"] or "", e["to"], e["reason"] or "")
    out.print(table)


@tasks_app.command("watch")
def tasks_watch(
    task_ids: Annotated[list[str], typer.Argument(help="One or more task ids.")],
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between two reads.")] = 1.0,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0, help="Give up after this many seconds "
                                                  "(exit 3).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Live progress bars until every task is terminal. Exit 0 when all succeeded, 1 otherwise."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    ids = list(dict.fromkeys(task_ids))
    started = time.monotonic()
    items = _read(_by_ids(ids), data_dir)
    with Progress(TextColumn("{task.fields[label]}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err) as progress:
        bars = {i["id"]: progress.add_task("", total=100, label=i["id"], status=i["status"]) for i in items}
        while True:
            for item in items:
                done = item["status"] in TERMINAL
                completed = 100 if done else (item["progress"] or 0)
                progress.update(bars[item["id"]], completed=completed, status=item["status"])
            if all(i["status"] in TERMINAL for i in items):
                break
            if timeout is not None and time.monotonic() - started > timeout:
                progress.stop()
                err.print(f"[red]error:[/red] not every task was terminal within {timeout:g} s")
                raise typer.Exit(3)
            time.sleep(interval)
            items = _read(_by_ids(ids), data_dir)
    for item in items:
        sys.stdout.write(f"{item['id']} {item['status']}\n")
    raise typer.Exit(0 if all(i["status"] == "succeeded" for i in items) else 1)


def usage_command(
    by: Annotated[str, typer.Option("--by", help=f"Group by {', '.join(USAGE_GROUPS)}.")] = "day",
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 date or time, or a duration such as "
                                              "24h or 7d.")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Usage per day, hour, model, key, channel or provider (a table)."""
    from gengate.web.admin.usage import aggregate

    if by not in USAGE_GROUPS:
        raise _usage_error(f"--by must be one of {', '.join(USAGE_GROUPS)}, got {by!r}")
    start = _since(since)

    async def query(conn: Any, _box: Any) -> list[dict[str, Any]]:
        return await aggregate(conn, by, start, None)

    rows = _read(query, data_dir)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    fields = ("requests", "tasks", "errors", "input_tokens", "output_tokens", "credits")
    table = Table(by, *fields, title=f"usage by {by}" + (f" since {_when(start)}" if start else ""))
    for r in rows:
        table.add_row(str(r["group"]), *(f"{r[f]:,}" for f in fields))
    if rows:
        table.add_row("[bold]total[/bold]", *(f"[bold]{sum(r[f] for r in rows):,}[/bold]" for f in fields))
    Console(width=200).print(table)


def _since(raw: str | None) -> float | None:
    if raw is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if raw[-1:] in units and raw[:-1].isdigit():
        return time.time() - int(raw[:-1]) * units[raw[-1]]
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _usage_error(f"--since must be ISO-8601 or a duration like 24h, got {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
