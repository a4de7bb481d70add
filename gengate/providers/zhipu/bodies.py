"""GLM's chat request, checked the way GLM answers (zhipu.md §2-3): 1213 a missing field, 1214 an
ill-typed or illegal value. Only what routing and billing need is read; the body goes upstream as sent."""

from __future__ import annotations

from typing import Any

from gengate.providers.openai.bodies import CallSpec
from gengate.providers.zhipu.errors import bad

ROLES = frozenset({"system", "user", "assistant", "tool"})


def _typed(body: dict[str, Any], name: str, kinds: tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise bad(f"Invalid type for parameter '{name}': expected {what}.", param=name)
    return value


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise bad("Missing required parameter: model.", "1213", "model")
    if not isinstance(model, str) or not model.strip():
        raise bad("Invalid parameter 'model': expected a non-empty string.", param="model")
    return model


def chat_spec(body: dict[str, Any], raw: bytes) -> CallSpec:
    model = require_model(body)
    messages = body.get("messages")
    if messages is None:
        raise bad("Missing required parameter: messages.", "1213", "messages")
    if not isinstance(messages, list) or not messages:
        raise bad("Invalid parameter 'messages': expected a non-empty array.", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise bad(f"Invalid parameter 'messages[{i}]': expected an object whose role is one of "
                      "system, user, assistant, tool.", param=f"messages[{i}]")
    for name in ("temperature", "top_p"):
        value = _typed(body, name, (int, float), "a number")
        if value is not None and not 0 <= value <= 1:
            raise bad(f"Invalid parameter '{name}': must be between 0 and 1.", param=name)
    _typed(body, "tools", (list,), "an array")
    _typed(body, "do_sample", (bool,), "a boolean")
    _typed(body, "response_format", (dict,), "an object")
    stream = _typed(body, "stream", (bool,), "a boolean") or False
    cap = _typed(body, "max_tokens", (int,), "an integer")
    if cap is not None and cap < 1:
        raise bad("Invalid parameter 'max_tokens': must be at least 1.", param="max_tokens")
    # GLM streams carry usage on their last chunk: nothing to ask for, nothing to strip.
    return CallSpec(model, stream, True, max(1, len(raw) // 3), cap)
