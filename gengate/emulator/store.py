"""Where emulated upstreams keep their tasks and the switches tests flip (faults, caps, holds).

`Store` is the one interface provider emulators use. `MemoryStore` (here) serves `gengate emulate`
and benchmarks; `SqliteStore` (sqlite_store.py) serves the in-process sandbox, whose tasks must
survive restarts and be shared by several worker processes.
"""

from __future__ import annotations

import heapq
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import NamedTuple, Protocol

from gengate.emulator.faults import FaultRule
from gengate.emulator.timeline import TaskRecord


class Accepted(NamedTuple):
    """Running jobs right after an accept: of the job's secret, and of the whole provider."""

    running_secret: int
    running_total: int


class Cap(NamedTuple):
    provider: str | None  # None: every provider
    secret: str | None  # None: each secret separately
    max_running: int


class Store(Protocol):
    # Tasks. Every method takes `now` where the answer depends on the clock.
    def add_task(self, task: TaskRecord, aliases: Sequence[str], cap: int | None, now: float) -> Accepted | None:
        """Store a new job unless its secret already runs `cap` jobs (then None). While the
        provider is held, the job starts held. `aliases` are other ids that find it (creations)."""
        ...

    def get_task(self, provider: str, task_id: str) -> TaskRecord | None: ...

    def find_alias(self, provider: str, alias: str) -> TaskRecord | None: ...

    def list_tasks(self, provider: str, secret: str, offset: int, limit: int) -> tuple[list[TaskRecord], int]:
        """One secret's tasks, newest first, and how many there are in all."""
        ...

    def mark_failed(self, provider: str, task_id: str, code: str, message: str) -> None: ...

    def cancel_task(self, provider: str, task_id: str, now: float) -> bool:
        """Cancel a task that is not terminal at `now`; False when it already was."""
        ...

    def delete_task(self, provider: str, task_id: str) -> bool:
        """Forget a task (and its aliases) as a provider's DELETE does; False when it was unknown.
        Cancel a running one first (`EmulatorContext.cancel`) so that it is counted as cancelled."""
        ...

    def running(self, provider: str, now: float) -> dict[str, int]:
        """Jobs not terminal at `now`, by secret (secrets with none are left out)."""
        ...

    def hold(self, provider: str | None, task_id: str | None, on: bool, now: float) -> int:
        """Freeze (`on`) or release running tasks: one task, or with `task_id=None` every task of
        the provider (or of every provider), present and future. Returns how many tasks changed."""
        ...

    # Switches.
    def add_fault(self, rule: FaultRule) -> None: ...

    def faults(self, now: float) -> list[FaultRule]:
        """Rules still active, oldest first."""
        ...

    def consume_fault(self, rule_id: str, now: float) -> bool:
        """Use one application of a rule; False when another request used the last one."""
        ...

    def clear_faults(self) -> None: ...

    def set_cap(self, cap: Cap) -> None:
        """Set (or with `max_running` < 0, remove) the running-jobs cap for provider and secret."""
        ...

    def caps(self) -> list[Cap]: ...

    def media_key(self) -> bytes:
        """The key that signs media URLs; the same for every process sharing the store."""
        ...

    def close(self) -> None: ...


def cap_for(caps: Sequence[Cap], provider: str, secret: str) -> int | None:
    """The most specific cap that applies: provider+secret, then provider, then secret, then all."""
    best: tuple[int, int] | None = None
    for cap in caps:
        if cap.provider not in (None, provider) or cap.secret not in (None, secret):
            continue
        rank = (cap.provider is not None) * 2 + (cap.secret is not None)
        if best is None or rank > best[0]:
            best = (rank, cap.max_running)
    return None if best is None else best[1]


@dataclass(slots=True)
class _Running:
    """A provider's running jobs: ids by secret, and a heap of (ends_at, id) to prune them cheaply."""

    by_secret: dict[str, set[str]]
    heap: list[tuple[float, str]]


class MemoryStore:
    """A process-local store: fast, forgotten on exit.

    It keeps at most `max_tasks` tasks (about 2 KB each): past that, the oldest finished ones are
    forgotten, as a provider's retention would, so that a long benchmark cannot exhaust memory.
    """

    def __init__(self, max_tasks: int = 300_000) -> None:
        self.max_tasks = max_tasks
        # Insertion-ordered, so the first entry is always the oldest task.
        self._tasks: dict[tuple[str, str], TaskRecord] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        self._aliases_of: dict[tuple[str, str], tuple[str, ...]] = {}
        self._history: dict[tuple[str, str], deque[str]] = {}
        self._running: dict[str, _Running] = {}
        self._held_providers: dict[str | None, float] = {}
        self._faults: list[FaultRule] = []
        self._caps: dict[tuple[str | None, str | None], Cap] = {}
        self._media_key = secrets.token_bytes(32)

    # Tasks.

    def add_task(self, task: TaskRecord, aliases: Sequence[str], cap: int | None, now: float) -> Accepted | None:
        running = self._prune(task.provider, now)
        mine = running.by_secret.setdefault(task.secret, set())
        if cap is not None and len(mine) >= cap:
            return None
        task = replace(task)
        if task.provider in self._held_providers or None in self._held_providers:
            task.held_since = task.accepted_at
        key = (task.provider, task.id)
        self._tasks[key] = task
        for alias in aliases:
            self._aliases[(task.provider, alias)] = task.id
        if aliases:
            self._aliases_of[key] = tuple(aliases)
        self._history.setdefault((task.provider, task.secret), deque()).append(task.id)
        mine.add(task.id)
        heapq.heappush(running.heap, (task.ends_at, task.id))
        if len(self._tasks) > self.max_tasks:
            self._forget_oldest(now)
        return Accepted(len(mine), sum(len(ids) for ids in running.by_secret.values()))

    def _forget_oldest(self, now: float) -> None:
        while len(self._tasks) > self.max_tasks:
            key = next(iter(self._tasks))
            task = self._tasks[key]
            if not task.progress(now).terminal:
                return  # a long-held task; try again on a later accept
            del self._tasks[key]
            self._running_of(task.provider).by_secret.get(task.secret, set()).discard(task.id)
            for alias in self._aliases_of.pop(key, ()):
                self._aliases.pop((task.provider, alias), None)
            # Oldest overall is also oldest of its secret, hence at the left end.
            self._history[(task.provider, task.secret)].popleft()

    def get_task(self, provider: str, task_id: str) -> TaskRecord | None:
        task = self._tasks.get((provider, task_id))
        # Callers get a copy, as from SQLite, so that no caller can change the store by accident.
        return None if task is None else replace(task)

    def find_alias(self, provider: str, alias: str) -> TaskRecord | None:
        task_id = self._aliases.get((provider, alias))
        return None if task_id is None else self.get_task(provider, task_id)

    def list_tasks(self, provider: str, secret: str, offset: int, limit: int) -> tuple[list[TaskRecord], int]:
        ids = self._history.get((provider, secret), deque())
        offset, limit = max(offset, 0), max(limit, 0)
        if offset >= len(ids):
            return [], len(ids)
        page = islice(reversed(ids), offset, offset + limit)
        return [replace(self._tasks[(provider, task_id)]) for task_id in page], len(ids)

    def mark_failed(self, provider: str, task_id: str, code: str, message: str) -> None:
        task = self._tasks.get((provider, task_id))
        if task is not None:
            task.fail_code, task.fail_message = code, message

    def cancel_task(self, provider: str, task_id: str, now: float) -> bool:
        task = self._tasks.get((provider, task_id))
        if task is None or task.progress(now).terminal:
            return False
        task.canceled_at = now
        self._running_of(provider).by_secret.get(task.secret, set()).discard(task_id)
        return True

    def delete_task(self, provider: str, task_id: str) -> bool:
        key = (provider, task_id)
        task = self._tasks.pop(key, None)
        if task is None:
            return False
        self._running_of(provider).by_secret.get(task.secret, set()).discard(task_id)
        for alias in self._aliases_of.pop(key, ()):
            self._aliases.pop((provider, alias), None)
        history = self._history.get((provider, task.secret))
        if history is not None and task_id in history:
            history.remove(task_id)
        return True

    def running(self, provider: str, now: float) -> dict[str, int]:
        running = self._prune(provider, now)
        return {secret: len(ids) for secret, ids in running.by_secret.items() if ids}

    def hold(self, provider: str | None, task_id: str | None, on: bool, now: float) -> int:
        if task_id is None:
            if on:
                self._held_providers[provider] = now
            elif provider is None:
                self._held_providers.clear()
            else:
                self._held_providers.pop(provider, None)
        providers = [provider] if provider is not None else list(self._running)
        changed = 0
        for name in providers:
            running = self._prune(name, now)
            ids = [task_id] if task_id is not None else [i for s in running.by_secret.values() for i in s]
            for one in ids:
                task = self._tasks.get((name, one))
                if task is None or task.progress(now).terminal:
                    continue
                if on and task.held_since is None:
                    task.held_since = now
                elif not on and task.held_since is not None:
                    task.paused += now - task.held_since
                    task.held_since = None
                    heapq.heappush(running.heap, (task.ends_at, one))
                else:
                    continue
                changed += 1
        return changed

    def _running_of(self, provider: str) -> _Running:
        running = self._running.get(provider)
        if running is None:
            running = self._running[provider] = _Running({}, [])
        return running

    def _prune(self, provider: str, now: float) -> _Running:
        """Drop jobs that turned terminal. Heap entries may be stale (holds move ends_at later,
        cancels remove jobs at once), so each popped entry is checked against the record."""
        running = self._running_of(provider)
        heap = running.heap
        while heap and heap[0][0] <= now:
            _, task_id = heapq.heappop(heap)
            task = self._tasks.get((provider, task_id))
            ids = None if task is None else running.by_secret.get(task.secret)
            if task is None or ids is None or task_id not in ids:
                continue
            if task.ends_at <= now:
                ids.discard(task_id)
            else:
                heapq.heappush(heap, (task.ends_at, task_id))
        return running

    # Switches.

    def add_fault(self, rule: FaultRule) -> None:
        self._faults.append(rule)

    def faults(self, now: float) -> list[FaultRule]:
        if self._faults:
            self._faults = [r for r in self._faults if _alive(r, now)]
        return list(self._faults)

    def consume_fault(self, rule_id: str, now: float) -> bool:
        for rule in self._faults:
            if rule["id"] == rule_id and _alive(rule, now):
                if rule["remaining"] is not None:
                    rule["remaining"] -= 1
                return True
        return False

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_cap(self, cap: Cap) -> None:
        if cap.max_running < 0:
            self._caps.pop((cap.provider, cap.secret), None)
        else:
            self._caps[(cap.provider, cap.secret)] = cap

    def caps(self) -> list[Cap]:
        return list(self._caps.values())

    def media_key(self) -> bytes:
        return self._media_key

    def close(self) -> None:
        pass


def _alive(rule: FaultRule, now: float) -> bool:
    return (rule["remaining"] is None or rule["remaining"] > 0) and (
        rule["expires_at"] is None or rule["expires_at"] > now
    )
