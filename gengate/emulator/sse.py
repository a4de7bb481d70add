"""Server-sent events as providers send them: `data: {json}\n\n` (OpenAI chat, GLM, Vidu state),
optionally with `event:` lines (OpenAI Responses), and a `data: [DONE]` terminator where the
provider sends one. `EmulatorContext.stream_call` sends such chunks with the fault rules applied."""

from __future__ import annotations

import json
from typing import Any

SSE_MEDIA_TYPE = "text/event-stream"
SSE_HEADERS: dict[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One event: `data` as compact JSON (a str is sent as is), after an `event:` line if named."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()
