"""The OpenAI family has no task adaptor: its channels (`--provider openai`) serve the synchronous
relay (routes.py). Its prices are the token and image prices of prices.py."""

from __future__ import annotations

from gengate.providers.openai.prices import PRICES

CHANNEL_PROVIDERS = ("openai",)
EXTRA_PRICES = [PRICES]
