"""An emulated upstream task and where it stands at a given moment.

A task's state is a pure function of its record and the clock: no background loop moves it, so a
task created before a restart (or in another process sharing the store) completes on time after it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Held tasks have no end yet; a finite sentinel (rather than inf) keeps SQLite comparisons simple.
NEVER = 1e18


class Phase(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Progress:
    phase: Phase
    fraction: float  # share of the duration elapsed, 0..1 (1 once terminal)
    remaining: float  # seconds left before the task ends, 0 once terminal, inf while held
    finished_at: float | None  # when it became terminal

    @property
    def terminal(self) -> bool:
        return self.phase is not Phase.RUNNING


@dataclass(slots=True)
class TaskRecord:
    """One accepted upstream job. `data` is the provider emulator's own JSON-able payload."""

    provider: str
    id: str
    secret: str
    accepted_at: float
    duration: float
    data: dict[str, Any] = field(default_factory=dict)
    paused: float = 0.0  # seconds spent held, already released
    held_since: float | None = None
    canceled_at: float | None = None
    fail_code: str | None = None
    fail_message: str | None = None

    @property
    def ends_at(self) -> float:
        """When the task turns terminal; `NEVER` while held. Stores index running tasks by it."""
        if self.canceled_at is not None:
            return self.canceled_at
        if self.held_since is not None:
            return NEVER
        return self.accepted_at + self.paused + self.duration

    def progress(self, now: float) -> Progress:
        if self.canceled_at is not None:
            return Progress(Phase.CANCELED, 1.0, 0.0, self.canceled_at)
        clock = self.held_since if self.held_since is not None else now
        elapsed = clock - self.accepted_at - self.paused
        if self.held_since is None and elapsed >= self.duration:
            finished = self.accepted_at + self.paused + self.duration
            phase = Phase.FAILED if self.fail_code else Phase.SUCCEEDED
            return Progress(phase, 1.0, 0.0, finished)
        # A held task is never terminal (only running tasks can be held), even with a zero duration.
        fraction = min(max(elapsed / self.duration, 0.0), 0.999) if self.duration > 0 else 0.0
        remaining = math.inf if self.held_since is not None else self.duration - elapsed
        return Progress(Phase.RUNNING, fraction, remaining, None)


def draw_duration(task_id: str, task_seconds: tuple[float, float]) -> float:
    """Seconds from acceptance to the terminal state, reproducible from the task id."""
    low, high = task_seconds
    if high <= low:
        return max(low, 0.0)
    return random.Random(task_id).uniform(low, high)
