"""Bad input on every Suno route, end to end (client → `gengate serve --sandbox` → emulator): Suno's own
`{code, message, data: null}` envelope with a 4xx, never a 500, and nothing saved, reserved or sent
upstream."""

from __future__ import annotations

from typing import Any

import pytest
from harness.suno import SunoClient, assert_suno_error

pytestmark = pytest.mark.timeout(180)


def nothing_happened(server: Any, name: str, credits: int, creates_before: int) -> None:
    """No task row or reservation for the key, its credits untouched, no upstream job, no traceback."""
    rows = server.db_query("SELECT (SELECT COUNT(*) FROM tasks t WHERE t.key_id = k.id) AS tasks, "
                           "(SELECT COUNT(*) FROM ledger_entries l WHERE l.key_id = k.id AND l.kind = 'reserve') "
                           "AS reserves "
                           f"FROM keys k WHERE k.name = '{name}'")
    assert rows == [{"tasks": 0, "reserves": 0}], rows
    assert server.credits(name) == credits
    assert server.upstream.creates(server.secret, "suno") == creates_before
    assert "Traceback" not in server.log_text()


# (route, body or raw bytes, HTTP status, code, message or None)
CASES: list[tuple[str, Any, int, str, str | None]] = [
    ("music", b'{"prompt": "unterminated', 400, "invalid_request", None),
    ("music", b'{"prompt": "a \\ud800 boat"}', 400, "invalid_request", None),
    ("music", b'{"prompt": "x", "continue_at": NaN}', 400, "invalid_request", None),
    ("music", b"[1, 2]", 400, "invalid_request", None),
    ("music", {}, 400, "invalid_request", "prompt_empty"),
    ("music", {"prompt": "   ", "title": "t"}, 400, "invalid_request", "prompt_empty"),
    ("music", {"prompt": 42}, 400, "invalid_request", None),
    ("music", {"gpt_description_prompt": ["a", "list"]}, 400, "invalid_request", None),
    ("music", {"prompt": "x", "make_instrumental": "yes"}, 400, "invalid_request", None),
    ("music", {"prompt": "x", "mv": 3}, 400, "invalid_request", None),
    ("music", {"prompt": "x", "mv": "chirp-unknown"}, 400, "model_not_found", None),
    ("music", {"prompt": "x", "continue_clip_id": "6d1f0c2a-0000-4000-8000-000000000000", "continue_at": 3},
     400, "invalid_request", "task id is empty"),
    ("music", {"prompt": "x", "continue_clip_id": "6d1f0c2a-0000-4000-8000-000000000000", "continue_at": 3,
               "task_id": "9a3e77b1-0000-4000-8000-000000000000"}, 400, "invalid_request", None),
    ("music", {"prompt": "x", "continue_clip_id": "6d1f0c2a-0000-4000-8000-000000000000", "continue_at": -1,
               "task_id": "9a3e77b1-0000-4000-8000-000000000000"}, 400, "invalid_request", None),
    ("music", {"prompt": "x", "callback_url": "http://127.0.0.1:1/hook"}, 400, "invalid_request", None),
    ("lyrics", {}, 400, "invalid_request", "prompt_empty"),
    ("lyrics", {"prompt": ""}, 400, "invalid_request", "prompt_empty"),
    ("lyrics", {"prompt": {"text": "x"}}, 400, "invalid_request", None),
    ("lyrics", b"", 400, "invalid_request", None),
    ("video", {"prompt": "x"}, 400, "invalid_request", "invalid_action"),
    ("Lyric", {"prompt": "x"}, 400, "invalid_request", "invalid_action"),
]


async def test_bad_submit_is_suno_400_and_saves_nothing(sandbox_server, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret, "suno")
    c = SunoClient(http, server.url, key)
    for action, body, status, code, message in CASES:
        if isinstance(body, bytes):
            reply = await c.request("POST", f"/suno/submit/{action}", data=body)
        else:
            reply = await c.submit(action, body)
        try:
            assert_suno_error(reply, status, code, message)
        except AssertionError as exc:
            raise AssertionError(f"{action} {body!r}: {exc}") from None
    nothing_happened(server, name, 1_000_000, before)


async def test_auth_fetch_and_paths(sandbox_server, http):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret, "suno")
    anonymous = SunoClient(http, server.url, None)
    assert_suno_error(await anonymous.submit("music", {"prompt": "x"}), 401, "invalid_api_key")
    assert_suno_error(await SunoClient(http, server.url, "sk-" + "x" * 40).fetch_many([]), 401)
    assert_suno_error(await anonymous.fetch("00000000-0000-4000-8000-000000000000"), 401)
    c = SunoClient(http, server.url, key)
    assert_suno_error(await c.fetch("00000000-0000-4000-8000-000000000000"), 404, "task_not_exist")
    assert_suno_error(await c.fetch("not-a-uuid"), 404, "task_not_exist")
    assert_suno_error(await c.request("POST", "/suno/fetch", json_body={"ids": "abc"}), 400, "invalid_request")
    assert_suno_error(await c.request("POST", "/suno/fetch", json_body={"ids": [1, 2]}), 400, "invalid_request")
    assert_suno_error(await c.request("POST", "/suno/fetch", json_body={"ids": ["a"] * 101}), 400)
    assert_suno_error(await c.request("POST", "/suno/fetch", data=b"{oops"), 400, "invalid_request")
    assert_suno_error(await c.request("GET", "/suno/submit/music"), 405)
    assert_suno_error(await c.request("DELETE", "/suno/fetch/abc"), 405)
    assert_suno_error(await c.request("GET", "/suno/nothing/here"), 404)
    big = {"prompt": "x" * (2 * 1024 * 1024)}
    assert_suno_error(await c.submit("music", big), 413, "invalid_request")
    nothing_happened(server, name, 1_000_000, before)
