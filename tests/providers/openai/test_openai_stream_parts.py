"""The stream relay's event handling on its own: events forwarded whole whatever the read
boundaries, the usage chunk picked (and dropped when the client did not ask for it), mapped model
names shown under the client's name, GLM-style usage on the last content chunk kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gengate.providers.openai.streaming import StreamRelay, usage_of


def _event(data: Any, name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


CHUNK = {"id": "c1", "object": "chat.completion.chunk", "model": "up-model",
         "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}], "usage": None}
USAGE = {"id": "c1", "object": "chat.completion.chunk", "model": "up-model", "choices": [],
         "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
STREAM = _event(CHUNK) * 3 + _event(USAGE) + b"data: [DONE]\n\n"


def _relay(keep_usage: bool, rename: tuple[bytes, bytes] | None = None) -> StreamRelay:
    return StreamRelay(None, b"", keep_usage=keep_usage, rename=rename)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [1, 7, 64, len(STREAM)])
def test_events_whole_at_any_read_size(step: int) -> None:
    relay = _relay(keep_usage=False)
    out = b"".join(relay._pass(STREAM[i:i + step]) for i in range(0, len(STREAM), step))
    assert out == _event(CHUNK) * 3 + b"data: [DONE]\n\n"  # the usage chunk the client did not ask for is gone
    assert relay.usage == USAGE["usage"] and relay.events == 4


def test_crlf_events_are_not_held_back() -> None:
    relay = _relay(keep_usage=True)
    crlf = _event(CHUNK).replace(b"\n", b"\r\n")
    assert relay._pass(crlf + crlf[:10]) == crlf
    assert relay.events == 1


def test_usage_kept_and_model_renamed() -> None:
    relay = _relay(keep_usage=True, rename=(b'"model":"up-model"', b'"model":"client-model"'))
    out = relay._pass(STREAM)
    assert out == STREAM.replace(b"up-model", b"client-model")
    assert relay.usage == USAGE["usage"]


def test_usage_on_the_last_content_chunk_is_kept() -> None:
    last = {**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    relay = _relay(keep_usage=False)
    assert relay._pass(_event(last)) == _event(last)
    assert relay.usage == last["usage"]


def test_responses_completed_event_usage() -> None:
    done = {"type": "response.completed", "sequence_number": 9,
            "response": {"id": "resp_1", "status": "completed", "usage": {"input_tokens": 4, "output_tokens": 5}}}
    assert usage_of(_event(done, "response.completed")) == {"input_tokens": 4, "output_tokens": 5}
    assert usage_of(b"data: [DONE]") is None
