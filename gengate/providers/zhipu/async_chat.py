"""GLM's asynchronous chat through the task engine (zhipu.md §3.4, §6): `POST /async/chat/completions`
upstream (the body of a chat), polled with `GET /async-result/{id}` like a video.

A chat task's result is text, not media: the poll turns `choices` and `usage` into one output of kind
`text` with no URLs (nothing to re-host), its fields kept in the output's `meta`. The core stores it
like any output and settles from it (`final_price` reads `usage`), so no core change is needed; the
unified task API shows the task with `outputs: []` (it lists URL outputs only) and its settled cost.

Reserved at create: the sync chat's upper bound (input estimated from the body's size, output from
`max_tokens` or `openai:reserve_output_tokens`) at the model's token prices; settled to the
upstream's `usage` at the same prices (the core caps it at the reservation)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from gengate.core.adaptor import OutputSpec, Prepared, Progress, TaskView
from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState
from gengate.providers.openai.prices import price_model, reservation
from gengate.providers.zhipu import bodies

S = TaskState
ACTION = "chat"
PATH = "/async/chat/completions"
MODEL_UNIT = "model:"


def prepare(body: Any) -> Prepared:
    """The validated task of a chat body, or GLM's 1210/1213/1214."""
    if not isinstance(body, dict):
        raise bodies.bad("The request body must be a JSON object.", "1210")
    raw = json.dumps(body, ensure_ascii=False).encode()
    spec = bodies.chat_spec(body, raw)
    if spec.stream:
        raise bodies.bad("Invalid parameter 'stream': an asynchronous chat does not stream.", param="stream")
    upstream = {k: v for k, v in body.items() if k not in ("request_id", "stream")}  # gengate's id is the handle
    units = {ACTION: 1.0, "input_tokens": float(spec.input_estimate), f"{MODEL_UNIT}{price_model(spec.model)}": 1.0}
    if spec.max_output is not None:
        units["max_tokens"] = float(spec.max_output)
    return Prepared(action=ACTION, model=spec.model, request=dict(body), upstream_request=upstream, units=units)


def _token_prices(units: Mapping[str, float], prices: PriceTable) -> tuple[int, int]:
    model = next((k[len(MODEL_UNIT):] for k in units if k.startswith(MODEL_UNIT)), "*")
    default_in, default_out = prices["openai:tokens:*:input"], prices["openai:tokens:*:output"]
    return (prices.get(f"openai:tokens:{model}:input", default_in),
            prices.get(f"openai:tokens:{model}:output", default_out))


def _cost(input_tokens: float, output_tokens: float, per_in: int, per_out: int) -> int:
    return max(1, math.ceil((input_tokens * per_in + output_tokens * per_out) / 1_000_000))


def price(units: Mapping[str, float], prices: PriceTable) -> int:
    per_in, per_out = _token_prices(units, prices)
    out_cap = units.get("max_tokens", float(prices["openai:reserve_output_tokens"]))
    return reservation(_cost(units.get("input_tokens", 0.0), out_cap, per_in, per_out))


def final_price(units: Mapping[str, float], outputs: tuple[OutputSpec, ...], prices: PriceTable) -> int:
    usage = outputs[0].meta.get("usage") if outputs else None
    if not isinstance(usage, dict):
        return 0
    per_in, per_out = _token_prices(units, prices)
    return _cost(_tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens"), per_in, per_out)


def _tokens(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_success(body: dict[str, Any], raw_state: str) -> Progress:
    """A SUCCESS reply: its text result, or still running while `choices`/`usage` are missing."""
    choices, usage = body.get("choices"), body.get("usage")
    if not isinstance(choices, list) or not choices or not isinstance(usage, dict):
        return Progress(S.RUNNING, raw_state, progress=99, reply=body, known=False)
    meta = {"choices": choices, "usage": usage}
    for name in ("created", "web_search", "content_filter"):
        if body.get(name) is not None:
            meta[name] = body[name]
    return Progress(S.SUCCEEDED, raw_state, progress=100, outputs=(OutputSpec("text", None, {}, meta),), reply=body)


def render_result(task: TaskView, out: dict[str, Any]) -> None:
    """Adds a finished chat's `choices`, `usage` (and GLM's optional fields) to its async-result."""
    if task.state is S.SUCCEEDED and task.outputs:
        out.update(task.outputs[0].meta)
