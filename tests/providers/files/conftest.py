"""Fixtures of the file-service tests: one `gengate serve` (no sandbox needed) with small per-key limits,
and an `openai` SDK client per key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

MiB = 1024 * 1024
LIMITS = {"GENGATE_MAX_FILE_BYTES": str(2 * MiB), "GENGATE_MAX_FILES_PER_KEY": "12",
          "GENGATE_MAX_FILE_STORAGE_PER_KEY": str(3 * MiB), "GENGATE_EXTRACT_TIMEOUT": "20"}


@pytest.fixture(scope="module")
def files_server(make_server: Any) -> Any:
    return make_server(sandbox=False, env=LIMITS)


@pytest.fixture
def sdk() -> Callable[[Any, str], openai.OpenAI]:
    def make(server: Any, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)

    return make
