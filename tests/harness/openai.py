"""Client helpers of the OpenAI family (`/v1`): the official `openai` SDK pointed at a gengate server,
OpenAI channels on a standalone emulator, and reads of balances and usage records."""

from __future__ import annotations

import json
import time
from typing import Any

import openai

from harness.processes import Emulator, GengateServer

CHAT_MODELS = "gpt-4o-mini,gpt-4o,gpt-4-gizmo-*,gpt-4o-gizmo-*,text-embedding-3-small,dall-e-3,dall-e-2"


def sdk(server: GengateServer | str, key: str, **kw: Any) -> openai.AsyncOpenAI:
    """The async SDK on `server`'s `/v1`, without its own retries (tests count upstream calls)."""
    base = server if isinstance(server, str) else server.url
    return openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=kw.pop("max_retries", 0), **kw)


def direct(emulator: Emulator, secret: str) -> openai.AsyncOpenAI:
    """The async SDK straight on the emulator (what an upstream answers)."""
    return openai.AsyncOpenAI(base_url=emulator.provider_url("openai") + "/v1", api_key=secret, max_retries=0)


def add_openai_channel(server: GengateServer, emulator: Emulator, name: str, *, models: str = CHAT_MODELS,
                       priority: int = 0, weight: int = 1, secret: str | None = None, base_url: str | None = None,
                       extra: tuple[str, ...] = ()) -> str:
    """`channels add --provider openai` on the standalone emulator with a secret of its own; returns it."""
    secret = secret or emulator.new_secret()
    server.add_channel("openai", base_url or emulator.provider_url("openai") + "/v1", secret, name=name,
                       extra=("--models", models, "--priority", str(priority), "--weight", str(weight), *extra))
    return secret


def credits_of(server: GengateServer, key_name: str) -> int | None:
    rows = server.db_query(f"SELECT credits FROM keys WHERE name = '{key_name}'")
    return rows[0]["credits"]


def key_id(server: GengateServer, key_name: str) -> int:
    return int(server.db_query(f"SELECT id FROM keys WHERE name = '{key_name}'")[0]["id"])


def usage_records(server: GengateServer, key_name: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The key's usage records, oldest first, once there are at least `count` (batched writes)."""
    kid = key_id(server, key_name)
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = server.db_query(f"SELECT * FROM usage_records WHERE key_id = {kid} ORDER BY id")
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{len(rows)} usage records for {key_name}, expected {count}: {rows}")


def channel_rows(server: GengateServer) -> dict[str, dict[str, Any]]:
    """`channels list --json`, by name."""
    return {c["name"]: c for c in json.loads(server.cli("channels", "list", "--json").strip().splitlines()[-1])}


def assert_openai_error(exc: openai.APIStatusError, status: int, code: str | None = None) -> dict[str, Any]:
    """OpenAI's envelope `{"error": {"message", "type", "param", "code"}}` with `status`."""
    assert exc.status_code == status, (exc.status_code, exc.response.text)
    body = exc.response.json()
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), body
    assert isinstance(err["message"], str) and err["message"], body
    assert "Traceback" not in exc.response.text
    if code is not None:
        assert err["code"] == code, body
    return err
