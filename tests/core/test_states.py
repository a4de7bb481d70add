"""The task state machine against a list of moves written out here by hand (not derived from
gengate/core/states.py): every pair of states is allowed exactly when it is in that list."""

from __future__ import annotations

import itertools

from gengate.core.states import HOLDS_SLOT, TERMINAL, UNIFIED_STATUS, TaskState, can_move

# Every allowed move (from, to), as the module docstring of states.py draws it.
MOVES: frozenset[tuple[str, str]] = frozenset({
    ("queued", "submitting"),
    ("queued", "failed"),
    ("queued", "cancelled"),
    ("submitting", "running"),
    ("submitting", "queued"),
    ("submitting", "ambiguous"),
    ("submitting", "failed"),
    ("submitting", "cancelled"),
    ("ambiguous", "running"),
    ("ambiguous", "queued"),
    ("ambiguous", "failed"),
    ("ambiguous", "cancelled"),
    ("running", "rehosting"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("rehosting", "succeeded"),
    ("rehosting", "failed"),
    ("rehosting", "cancelled"),
})
STATES = ("queued", "submitting", "ambiguous", "running", "rehosting", "succeeded", "failed", "cancelled")


def test_the_states_are_the_listed_ones() -> None:
    assert sorted(s.value for s in TaskState) == sorted(STATES)
    assert {s.value for s in TERMINAL} == {"succeeded", "failed", "cancelled"}


def test_every_pair_of_states_is_allowed_exactly_when_listed() -> None:
    for old, new in itertools.product(TaskState, TaskState):
        assert can_move(old, new) == ((old.value, new.value) in MOVES), (old.value, new.value)


def test_no_move_leaves_a_terminal_state() -> None:
    assert not [m for m in MOVES if m[0] in ("succeeded", "failed", "cancelled")]


def test_unified_status_and_slots() -> None:
    assert {s.value: v for s, v in UNIFIED_STATUS.items()} == {
        "queued": "queued", "submitting": "queued", "ambiguous": "queued", "running": "in_progress",
        "rehosting": "in_progress", "succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"}
    assert {s.value for s in HOLDS_SLOT} == {"submitting", "ambiguous", "running", "rehosting"}
