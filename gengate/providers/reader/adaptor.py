"""URL analysis has no task adaptor: its prices only (credits per call, 1 credit = US$0.000001),
overridable in `[prices]` like every entry."""

from __future__ import annotations

JINA_PRICE = "reader:read"
SCRAPE_PRICE = "reader:scrape"

EXTRA_PRICES = [{JINA_PRICE: 1000, SCRAPE_PRICE: 1000}]
