"""Fixtures of the durability tests (helpers: harness.durability)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness.durability import EMULATOR_TASK_SECONDS, start_emulator
from harness.processes import Emulator


@pytest.fixture(scope="module")
def emu(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A standalone `gengate emulate` per test module, never killed by a test. A module sets
    `EMULATOR_TASK_SECONDS` to change how long each job takes."""
    seconds = getattr(request.module, "EMULATOR_TASK_SECONDS", EMULATOR_TASK_SECONDS)
    e = start_emulator(tmp_path_factory.mktemp("emu"), task_seconds=seconds)
    yield e
    e.stop()
