"""Hostile bodies on `POST /vidu/v1/tasks`, end to end (client → `gengate serve --sandbox` → emulator):
lone surrogates, nesting past 512 levels and durations Vidu does not offer are a 400 in Vidu's
envelope before anything is saved, reserved or sent upstream, and leave no traceback in the log."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(180)

PROMPT = b'{"type":"text2video","input":{"prompts":[{"type":"text","content":"PROMPT"}]},' \
         b'"settings":{"duration":4,"model":"vidu-1"}}'


def nothing_happened(server: Any, name: str, credits: int, creates_before: int) -> None:
    """No task row or ledger entry for the key, its credits untouched, no upstream job, no traceback."""
    rows = server.db_query("SELECT (SELECT COUNT(*) FROM tasks t WHERE t.key_id = k.id) AS tasks, "
                           "(SELECT COUNT(*) FROM ledger_entries l WHERE l.key_id = k.id AND l.kind = 'reserve') "
                           "AS reserves "
                           f"FROM keys k WHERE k.name = '{name}'")
    assert rows == [{"tasks": 0, "reserves": 0}], rows
    assert server.credits(name) == credits
    assert server.upstream.creates(server.secret) == creates_before
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize("raw", [
    PROMPT.replace(b"PROMPT", b"a boat \\ud800"),  # a lone high surrogate
    PROMPT.replace(b"PROMPT", b"\\udc00 a boat"),  # a lone low surrogate
    PROMPT.replace(b"PROMPT", b"\\ude00\\ud83d"),  # a pair in the wrong order
    PROMPT.replace(b'"model":"vidu-1"', b'"model":"vidu-1","x\\udbff":1'),  # in a key
], ids=["high", "low", "reversed", "in-a-key"])
async def test_lone_surrogate_is_400_and_saves_nothing(sandbox_server, vidu, assert_vidu_error, raw):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret)
    reply = await vidu(server, key).create(data=raw)
    assert_vidu_error(reply, 400, "BadRequest")
    assert "surrogate" in reply.body["message"]
    nothing_happened(server, name, 1_000_000, before)


async def test_a_surrogate_pair_and_an_escaped_backslash_are_fine(sandbox_server, vidu):
    server = sandbox_server
    key = server.make_key(credits=1_000_000)
    for text in (b"a boat \\ud83d\\ude00", b"a literal \\\\ud800"):
        task = await vidu(server, key).create_ok(None, data=PROMPT.replace(b"PROMPT", text))
        sent = json.loads(PROMPT.replace(b"PROMPT", text))["input"]["prompts"][0]["content"]
        assert task["input"]["prompts"][0]["content"] == sent


def nested(depth: int) -> bytes:
    """A create whose body nests `depth` levels in all (the top-level object is level 1)."""
    inner = depth - 1
    return b'{"type":"text2video","input":' + b"[" * inner + b"]" * inner + b"}"


async def test_nesting_deeper_than_512_is_400(sandbox_server, vidu, assert_vidu_error):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    client = vidu(server, key)
    before = server.upstream.creates(server.secret)
    for depth in (513, 600, 100_000):
        started = time.monotonic()
        reply = await client.create(data=nested(depth))
        assert_vidu_error(reply, 400, "BadRequest")
        assert "deeper than 512" in reply.body["message"], (depth, reply.body)
        assert time.monotonic() - started < 2, depth
    # 512 levels parse: the body is then refused by validation (input must be an object), not by JSON
    reply = await client.create(data=nested(512))
    assert_vidu_error(reply, 400, "FieldInvalid")
    assert reply.body["message"] == "input must be an object"
    # brackets inside strings do not nest
    deep_text = PROMPT.replace(b"PROMPT", b"[" * 2000 + b"{" * 2000)
    assert (await client.create(data=deep_text)).status == 200
    before += 1
    name_rows = server.db_query(f"SELECT COUNT(*) AS n FROM tasks t JOIN keys k ON k.id = t.key_id "
                                f"WHERE k.name = '{name}'")
    assert name_rows == [{"n": 1}]
    assert server.upstream.creates(server.secret) == before
    assert "Traceback" not in server.log_text()


async def test_numbers_that_overflow_are_400(sandbox_server, vidu, assert_vidu_error):
    server = sandbox_server
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(server.secret)
    reply = await vidu(server, key).create(data=PROMPT.replace(b'"duration":4', b'"duration":4,"x":1e999'))
    assert_vidu_error(reply, 400, "BadRequest")
    nothing_happened(server, name, 1_000_000, before)


@pytest.mark.parametrize("duration", [0.0001, 4.5, 0, 5, 9])
async def test_durations_vidu_does_not_offer_are_field_invalid(sandbox_server, vidu, assert_vidu_error,
                                                               duration):
    server = sandbox_server
    name, key = server.make_named_key(credits=0)
    before = server.upstream.creates(server.secret)
    body = json.loads(PROMPT)
    body["settings"]["duration"] = duration
    reply = await vidu(server, key).create(body)
    assert_vidu_error(reply, 400, "FieldInvalid")
    assert "settings.duration" in reply.body["message"]
    nothing_happened(server, name, 0, before)
