"""The price table's cap (interface.md "Keys and credits": no shipped default price exceeds 1,000,000
credits for one request, including the upper bound reserved for a task): a reservation at a
provider's shipped prices is capped; one at prices the operator set for that provider is not."""

from __future__ import annotations

from gengate.core.pricing import SHIPPED_MAX, PriceTable
from gengate.providers.registry import default_prices


def test_shipped_prices_cap_every_reservation() -> None:
    table = PriceTable(default_prices())
    assert table.shipped("runway") and table.shipped("kling")
    assert table.cap("runway", 3_200_000) == SHIPPED_MAX == 1_000_000
    assert table.cap("runway", 999_999) == 999_999


def test_an_operator_price_lifts_the_cap_of_its_provider_only() -> None:
    table = PriceTable(default_prices(), {"runway:video_second:veo3.1:audio": 400_000})
    assert not table.shipped("runway") and table.cap("runway", 3_200_000) == 3_200_000
    assert table.shipped("kling") and table.cap("kling", 3_200_000) == SHIPPED_MAX
