"""Fixtures shared by the Runway tests."""

from __future__ import annotations

import pytest
from runwayml.lib import polling


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's `wait_for_task_output` polls every ~0.6 s instead of ~6 s (the emulator is quick)."""
    monkeypatch.setattr(polling, "POLL_TIME", 0.6)
    monkeypatch.setattr(polling, "POLL_JITTER", 0.4)
