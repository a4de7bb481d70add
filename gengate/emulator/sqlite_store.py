"""The SQLite-backed emulator store: tasks survive restarts and are shared by worker processes.

Each process opens its own connection (WAL, busy timeout); writes that read before they write run
under `BEGIN IMMEDIATE`, so a cap holds across processes. Running jobs are found through
`ends_at` (held jobs carry `NEVER`), which an index keeps proportional to the running set.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from gengate.emulator.faults import FaultRule
from gengate.emulator.store import Accepted, Cap
from gengate.emulator.timeline import NEVER, TaskRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    id TEXT NOT NULL,
    secret TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    duration REAL NOT NULL,
    paused REAL NOT NULL DEFAULT 0,
    held_since REAL,
    canceled_at REAL,
    ends_at REAL NOT NULL,
    fail_code TEXT,
    fail_message TEXT,
    data TEXT NOT NULL,
    UNIQUE (provider, id)
);
CREATE INDEX IF NOT EXISTS tasks_running ON tasks (provider, ends_at);
CREATE INDEX IF NOT EXISTS tasks_history ON tasks (provider, secret, seq);
CREATE TABLE IF NOT EXISTS aliases (
    provider TEXT NOT NULL, alias TEXT NOT NULL, task_id TEXT NOT NULL, PRIMARY KEY (provider, alias)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS faults (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, rule TEXT NOT NULL, remaining INTEGER, expires_at REAL
);
-- '' stands for "every provider" / "each secret" (NULL would defeat the primary key).
CREATE TABLE IF NOT EXISTS caps (
    provider TEXT NOT NULL, secret TEXT NOT NULL, max_running INTEGER NOT NULL, PRIMARY KEY (provider, secret)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held_providers (provider TEXT PRIMARY KEY, since REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

_COLUMNS = "provider, id, secret, accepted_at, duration, paused, held_since, canceled_at, fail_code, fail_message, data"
_ALL = ""  # the stored spelling of None ("every provider", "each secret") in caps and held_providers


class SqliteStore:
    def __init__(self, state_dir: Path, *, busy_timeout_ms: int = 10_000) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        # The event loop thread is the usual caller; the lock covers callers from worker threads.
        self._db = sqlite3.connect(
            state_dir / "emulator.sqlite3",
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
        )
        self._lock = threading.RLock()
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # Tasks.

    def add_task(self, task: TaskRecord, aliases: Sequence[str], cap: int | None, now: float) -> Accepted | None:
        with self._write() as db:
            counts = dict(
                db.execute(
                    "SELECT secret, count(*) FROM tasks WHERE provider = ? AND ends_at > ? GROUP BY secret",
                    (task.provider, now),
                ).fetchall()
            )
            mine = counts.get(task.secret, 0)
            if cap is not None and mine >= cap:
                return None
            held = db.execute("SELECT 1 FROM held_providers WHERE provider IN (?, ?)", (task.provider, _ALL)).fetchone()
            held_since = task.accepted_at if held else task.held_since
            db.execute(
                f"INSERT INTO tasks ({_COLUMNS}, ends_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task.provider,
                    task.id,
                    task.secret,
                    task.accepted_at,
                    task.duration,
                    task.paused,
                    held_since,
                    task.canceled_at,
                    task.fail_code,
                    task.fail_message,
                    json.dumps(task.data, separators=(",", ":")),
                    NEVER if held_since is not None else task.ends_at,
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO aliases (provider, alias, task_id) VALUES (?, ?, ?)",
                [(task.provider, alias, task.id) for alias in aliases],
            )
        return Accepted(mine + 1, sum(counts.values()) + 1)

    def get_task(self, provider: str, task_id: str) -> TaskRecord | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM tasks WHERE provider = ? AND id = ?", (provider, task_id))
        return _task(rows[0]) if rows else None

    def find_alias(self, provider: str, alias: str) -> TaskRecord | None:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM tasks WHERE provider = ? AND id = "
            "(SELECT task_id FROM aliases WHERE provider = ? AND alias = ?)",
            (provider, provider, alias),
        )
        return _task(rows[0]) if rows else None

    def list_tasks(self, provider: str, secret: str, offset: int, limit: int) -> tuple[list[TaskRecord], int]:
        total = self._query("SELECT count(*) FROM tasks WHERE provider = ? AND secret = ?", (provider, secret))
        if offset >= total[0][0]:  # also keeps offsets beyond SQLite's 64-bit integers out of the query
            return [], int(total[0][0])
        offset, limit = max(offset, 0), min(max(limit, 0), 2**62)
        rows = self._query(
            f"SELECT {_COLUMNS} FROM tasks WHERE provider = ? AND secret = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (provider, secret, limit, offset),
        )
        return [_task(row) for row in rows], int(total[0][0])

    def mark_failed(self, provider: str, task_id: str, code: str, message: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE tasks SET fail_code = ?, fail_message = ? WHERE provider = ? AND id = ?",
                (code, message, provider, task_id),
            )

    def cancel_task(self, provider: str, task_id: str, now: float) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE tasks SET canceled_at = ?, ends_at = ? "
                "WHERE provider = ? AND id = ? AND canceled_at IS NULL AND ends_at > ?",
                (now, now, provider, task_id, now),
            )
            return cursor.rowcount == 1

    def delete_task(self, provider: str, task_id: str) -> bool:
        with self._write() as db:
            cursor = db.execute("DELETE FROM tasks WHERE provider = ? AND id = ?", (provider, task_id))
            db.execute("DELETE FROM aliases WHERE provider = ? AND task_id = ?", (provider, task_id))
            return cursor.rowcount == 1

    def running(self, provider: str, now: float) -> dict[str, int]:
        rows = self._query(
            "SELECT secret, count(*) FROM tasks WHERE provider = ? AND ends_at > ? GROUP BY secret",
            (provider, now),
        )
        return {str(secret): int(count) for secret, count in rows}

    def hold(self, provider: str | None, task_id: str | None, on: bool, now: float) -> int:
        where = "canceled_at IS NULL AND (? IS NULL OR provider = ?) AND (? IS NULL OR id = ?)"
        scope = (provider, provider, task_id, task_id)
        with self._write() as db:
            if task_id is None:
                if on:
                    db.execute(
                        "INSERT OR REPLACE INTO held_providers (provider, since) VALUES (?, ?)",
                        (provider or _ALL, now),
                    )
                elif provider is None:
                    db.execute("DELETE FROM held_providers")
                else:
                    db.execute("DELETE FROM held_providers WHERE provider = ?", (provider,))
            if on:
                cursor = db.execute(
                    f"UPDATE tasks SET held_since = ?, ends_at = ? WHERE {where} "
                    "AND held_since IS NULL AND ends_at > ?",
                    (now, NEVER, *scope, now),
                )
            else:
                # SQLite evaluates every SET expression with the row's old values.
                cursor = db.execute(
                    "UPDATE tasks SET paused = paused + (? - held_since), held_since = NULL, "
                    f"ends_at = accepted_at + paused + (? - held_since) + duration WHERE {where} "
                    "AND held_since IS NOT NULL",
                    (now, now, *scope),
                )
            return cursor.rowcount

    # Switches.

    def add_fault(self, rule: FaultRule) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO faults (id, rule, remaining, expires_at) VALUES (?, ?, ?, ?)",
                (rule["id"], json.dumps(rule), rule["remaining"], rule["expires_at"]),
            )

    def faults(self, now: float) -> list[FaultRule]:
        rows = self._query(
            "SELECT rule, remaining FROM faults WHERE (remaining IS NULL OR remaining > 0) "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq",
            (now,),
        )
        rules = []
        for text, remaining in rows:
            rule = cast(FaultRule, json.loads(text))
            rule["remaining"] = remaining
            rules.append(rule)
        return rules

    def consume_fault(self, rule_id: str, now: float) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE faults SET remaining = remaining - 1 WHERE id = ? "
                "AND (remaining IS NULL OR remaining > 0) AND (expires_at IS NULL OR expires_at > ?)",
                (rule_id, now),
            )
            return cursor.rowcount == 1

    def clear_faults(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM faults")

    def set_cap(self, cap: Cap) -> None:
        key = (cap.provider or _ALL, cap.secret or _ALL)
        with self._write() as db:
            if cap.max_running < 0:
                db.execute("DELETE FROM caps WHERE provider = ? AND secret = ?", key)
            else:
                db.execute(
                    "INSERT OR REPLACE INTO caps (provider, secret, max_running) VALUES (?, ?, ?)",
                    (*key, cap.max_running),
                )

    def caps(self) -> list[Cap]:
        rows = self._query("SELECT provider, secret, max_running FROM caps")
        return [Cap(provider or None, secret or None, int(limit)) for provider, secret, limit in rows]

    def media_key(self) -> bytes:
        """The key that signs media URLs, shared by every process and kept across restarts."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('media_key', ?)", (secrets.token_hex(32),))
            (value,) = db.execute("SELECT value FROM meta WHERE key = 'media_key'").fetchone()
        return bytes.fromhex(value)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _task(row: tuple[Any, ...]) -> TaskRecord:
    provider, task_id, secret, accepted_at, duration, paused, held, canceled, code, message, data = row
    return TaskRecord(
        provider=provider,
        id=task_id,
        secret=secret,
        accepted_at=accepted_at,
        duration=duration,
        data=json.loads(data),
        paused=paused,
        held_since=held,
        canceled_at=canceled,
        fail_code=code,
        fail_message=message,
    )
