"""Counters behind `GET /_emulator/stats`, kept per process.

Tests use them to prove "exactly one upstream job per task" (`creates`), "never more than the cap
at once" (`max_running`) and "never two polls of one task at once" (`overlapping_polls`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypedDict


class SecretStats(TypedDict):
    creates: int
    polls: int
    cancels: int
    running: int
    max_running: int


class ProviderStatsJSON(TypedDict):
    creates: int
    polls: int
    cancels: int
    running: int
    max_running: int
    by_secret: dict[str, SecretStats]
    overlapping_polls: int


@dataclass(slots=True)
class _Counts:
    creates: int = 0
    polls: int = 0
    cancels: int = 0
    max_running: int = 0


@dataclass(slots=True)
class ProviderStats:
    total: _Counts = field(default_factory=_Counts)
    by_secret: dict[str, _Counts] = field(default_factory=dict)
    overlapping_polls: int = 0
    _in_flight: Counter[str] = field(default_factory=Counter)

    def _secret(self, secret: str) -> _Counts:
        counts = self.by_secret.get(secret)
        if counts is None:
            counts = self.by_secret[secret] = _Counts()
        return counts

    def accepted(self, secret: str, running_secret: int, running_total: int) -> None:
        """One job accepted; `running_*` are the running jobs right after it."""
        mine = self._secret(secret)
        mine.creates += 1
        mine.max_running = max(mine.max_running, running_secret)
        self.total.creates += 1
        self.total.max_running = max(self.total.max_running, running_total)

    def called(self, secret: str) -> None:
        """One synchronous call answered (or cut after it started): a create, with no running job."""
        self._secret(secret).creates += 1
        self.total.creates += 1

    def canceled(self, secret: str) -> None:
        self._secret(secret).cancels += 1
        self.total.cancels += 1

    def polled(self, secret: str) -> None:
        self._secret(secret).polls += 1
        self.total.polls += 1

    @contextmanager
    def poll_in_flight(self, task_key: str) -> Iterator[None]:
        """Mark a poll of one task as being answered; a second poll arriving meanwhile overlaps."""
        if self._in_flight[task_key]:
            self.overlapping_polls += 1
        self._in_flight[task_key] += 1
        try:
            yield
        finally:
            self._in_flight[task_key] -= 1
            if not self._in_flight[task_key]:
                del self._in_flight[task_key]

    def reset(self) -> None:
        self.total = _Counts()
        self.by_secret.clear()
        self.overlapping_polls = 0

    def to_json(self, running: dict[str, int]) -> ProviderStatsJSON:
        secrets = set(self.by_secret) | set(running)
        by_secret: dict[str, SecretStats] = {}
        for secret in sorted(secrets):
            counts = self.by_secret.get(secret, _Counts())
            by_secret[secret] = SecretStats(
                creates=counts.creates,
                polls=counts.polls,
                cancels=counts.cancels,
                running=running.get(secret, 0),
                max_running=counts.max_running,
            )
        return ProviderStatsJSON(
            creates=self.total.creates,
            polls=self.total.polls,
            cancels=self.total.cancels,
            running=sum(running.values()),
            max_running=self.total.max_running,
            by_secret=by_secret,
            overlapping_polls=self.overlapping_polls,
        )
