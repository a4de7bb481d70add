"""Timestamps in each provider's unit: ISO-8601 with `Z` (Vidu, Runway, Luma), ms epochs (Kling),
second epochs (OpenAI, Suno). Every emulator shows the current time, never a frozen clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso_z(ts: float, digits: int = 6) -> str:
    """`2024-08-05T05:12:05.145617Z` (digits 6), `...05.145Z` (3) or `...05Z` (0)."""
    if digits not in (0, 3, 6):
        raise ValueError("digits must be 0, 3 or 6")
    text = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text[: len(text) - 6 + digits].rstrip(".") if digits < 6 else text) + "Z"


def epoch_ms(ts: float) -> int:
    return int(ts * 1000)


def epoch_s(ts: float) -> int:
    return int(ts)
