"""A task's life in one screen: its states and every move allowed between them.

    queued ──> submitting ──> running ──> rehosting ──> succeeded
      ^  │         │  │          │            │
      │  │         │  └─> ambiguous ─┐       │
      └──┼─────────┴─────────────────┘ (proved not accepted: back to queued)
         └──> failed / cancelled from any non-terminal state (deadline, refusal, cancel)
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    QUEUED = "queued"  # saved, credits reserved, waiting for a free slot or a retry
    SUBMITTING = "submitting"  # a slot is held and the create is (about to be) sent
    AMBIGUOUS = "ambiguous"  # the create may or may not have been accepted: reconcile, never re-send
    RUNNING = "running"  # the upstream accepted it; its id is stored; polling
    REHOSTING = "rehosting"  # the upstream succeeded; copying results into gengate storage
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = TaskState
TERMINAL: frozenset[TaskState] = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED})
_END = frozenset({S.FAILED, S.CANCELLED})

ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    S.QUEUED: frozenset({S.SUBMITTING}) | _END,
    S.SUBMITTING: frozenset({S.RUNNING, S.QUEUED, S.AMBIGUOUS}) | _END,
    S.AMBIGUOUS: frozenset({S.RUNNING, S.QUEUED}) | _END,
    S.RUNNING: frozenset({S.REHOSTING}) | _END,
    S.REHOSTING: frozenset({S.SUCCEEDED}) | _END,
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

# States in which the task holds a running slot on its bound secret.
HOLDS_SLOT: frozenset[TaskState] = frozenset({S.SUBMITTING, S.AMBIGUOUS, S.RUNNING, S.REHOSTING})

# The unified task API's status for each state (interface.md "Unified task API").
UNIFIED_STATUS: dict[TaskState, str] = {
    S.QUEUED: "queued",
    S.SUBMITTING: "queued",
    S.AMBIGUOUS: "queued",
    S.RUNNING: "in_progress",
    S.REHOSTING: "in_progress",
    S.SUCCEEDED: "succeeded",
    S.FAILED: "failed",
    S.CANCELLED: "cancelled",
}


def can_move(old: TaskState, new: TaskState) -> bool:
    return new in ALLOWED[old]
