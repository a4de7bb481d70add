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


@dataclass(frozen=True, slots=True)
class StateWalk:
    """A provider's state names over a task's life: `steps` are (share of the duration at which
    the state ends, name) for the running states, `terminal` names the end states.

        VIDU = StateWalk(((0.1, "created"), (0.3, "queueing"), (1.0, "processing")),
                         {Phase.SUCCEEDED: "success", Phase.FAILED: "failed", Phase.CANCELED: "canceled"})
    """

    steps: tuple[tuple[float, str], ...]
    terminal: dict[Phase, str]

    def state(self, progress: Progress) -> str:
        if progress.phase is not Phase.RUNNING:
            return self.terminal[progress.phase]
        for end, name in self.steps:
            if progress.fraction < end:
                return name
        return self.steps[-1][1]

    def next_change(self, task: TaskRecord, progress: Progress, now: float, longest: float = 0.2) -> float:
        """How long a stream may sleep before the state can change: until the next boundary, but
        at most `longest`, so that a cancel or hold made elsewhere shows soon."""
        if task.held_since is not None or not math.isfinite(progress.remaining):
            return longest
        for end, _ in self.steps:
            if progress.fraction < end:
                until = task.accepted_at + task.paused + end * task.duration - now
                return min(max(until, 0.005), longest)
        return min(0.05, longest)
