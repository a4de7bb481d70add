"""Shipped prices of the OpenAI family (credits; 1 credit = US$0.000001), overridable like every price.

Tokens: `openai:tokens:<model>:input|output`, credits per million tokens; a model without an entry
is priced as `openai:tokens:*`. GPTs (`gpt-4-gizmo-g-...`) are priced under their pattern
(`gpt-4-gizmo-*`). Images: `openai:image:<model>:<size>[:hd]`, credits per image. Every call costs
at least 1 credit; a reservation is the upper bound of the call, never above `MAX_RESERVATION`.
"""

from __future__ import annotations

import math

from gengate.core.pricing import PriceTable

MAX_RESERVATION = 1_000_000  # interface.md: no shipped price exceeds this for one request

PRICES: dict[str, int] = {
    "openai:tokens:gpt-4o-mini:input": 150_000,
    "openai:tokens:gpt-4o-mini:output": 600_000,
    "openai:tokens:gpt-4o:input": 2_500_000,
    "openai:tokens:gpt-4o:output": 10_000_000,
    "openai:tokens:gpt-4-gizmo-*:input": 10_000_000,
    "openai:tokens:gpt-4-gizmo-*:output": 30_000_000,
    "openai:tokens:gpt-4o-gizmo-*:input": 5_000_000,
    "openai:tokens:gpt-4o-gizmo-*:output": 15_000_000,
    "openai:tokens:text-embedding-3-small:input": 20_000,
    "openai:tokens:text-embedding-3-large:input": 130_000,
    "openai:tokens:*:input": 2_500_000,
    "openai:tokens:*:output": 10_000_000,
    # Output tokens reserved for a call that sets no max_tokens / max_completion_tokens / max_output_tokens.
    "openai:reserve_output_tokens": 4096,
    "openai:image:dall-e-3:1024x1024": 40_000,
    "openai:image:dall-e-3:1024x1024:hd": 80_000,
    "openai:image:dall-e-3:1792x1024": 80_000,
    "openai:image:dall-e-3:1792x1024:hd": 120_000,
    "openai:image:dall-e-3:1024x1792": 80_000,
    "openai:image:dall-e-3:1024x1792:hd": 120_000,
    "openai:image:dall-e-2:1024x1024": 20_000,
    "openai:image:dall-e-2:512x512": 18_000,
    "openai:image:dall-e-2:256x256": 16_000,
    "openai:image:*": 80_000,
}


def price_model(model: str) -> str:
    """The name a model is priced and reported under: a GPT's pattern (`gpt-4-gizmo-*`), else itself."""
    base, sep, _ = model.partition("-gizmo-")
    return f"{base}-gizmo-*" if sep else model


class TokenPrice:
    """Credits per million input and output tokens of one model."""

    __slots__ = ("input", "output")

    def __init__(self, input_price: int, output_price: int) -> None:
        self.input, self.output = input_price, output_price

    def cost(self, input_tokens: int, output_tokens: int) -> int:
        return max(1, math.ceil((input_tokens * self.input + output_tokens * self.output) / 1_000_000))


class Pricing:
    """The price table with each model's token prices looked up once (bounded: names come from clients)."""

    MAX_MODELS = 4096

    def __init__(self, prices: PriceTable) -> None:
        self.table = prices
        self._names = frozenset(name for name, _ in prices.items())
        self._tokens: dict[str, TokenPrice] = {}

    def tokens(self, model: str) -> TokenPrice:
        found = self._tokens.get(model)
        if found is None:
            t = self.table
            inp, out = f"openai:tokens:{model}:input", f"openai:tokens:{model}:output"
            if inp in self._names:  # a model with an input price only (embeddings) has no output price
                found = TokenPrice(t[inp], t.get(out, 0))
            else:
                found = TokenPrice(t["openai:tokens:*:input"], t.get(out, t["openai:tokens:*:output"]))
            if len(self._tokens) >= self.MAX_MODELS:
                self._tokens.clear()
            self._tokens[model] = found
        return found

    @property
    def reserve_output_tokens(self) -> int:
        return self.table["openai:reserve_output_tokens"]


def image_price(prices: PriceTable, model: str, size: str, quality: str | None) -> int:
    hd = ":hd" if quality == "hd" else ""
    return max(1, prices.get(f"openai:image:{model}:{size}{hd}",
                             prices.get(f"openai:image:{model}:{size}", prices["openai:image:*"])))


def reservation(cost: int) -> int:
    return min(max(1, cost), MAX_RESERVATION)
