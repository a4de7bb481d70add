"""Every pair of states: exactly the moves in ALLOWED are possible, and terminal states are final."""

from __future__ import annotations

import itertools

from gengate.core.states import ALLOWED, HOLDS_SLOT, TERMINAL, UNIFIED_STATUS, TaskState, can_move


def test_every_pair_of_states() -> None:
    for old, new in itertools.product(TaskState, TaskState):
        assert can_move(old, new) == (new in ALLOWED[old]), (old, new)
        if old in TERMINAL:
            assert not can_move(old, new), f"{old} is terminal but may move to {new}"


def test_every_live_state_can_fail_and_be_cancelled() -> None:
    for state in TaskState:
        if state not in TERMINAL:
            assert can_move(state, TaskState.FAILED) and can_move(state, TaskState.CANCELLED), state


def test_success_only_after_rehosting() -> None:
    assert [s for s in TaskState if can_move(s, TaskState.SUCCEEDED)] == [TaskState.REHOSTING]


def test_every_state_has_a_unified_status_and_slot_rule() -> None:
    assert set(UNIFIED_STATUS) == set(TaskState)
    assert not (HOLDS_SLOT & TERMINAL)
