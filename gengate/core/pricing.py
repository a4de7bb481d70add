"""The price table: credits per unit for each `provider:item` (1 credit = US$0.000001).

Shipped defaults below; `[prices]` in the config file (or GENGATE_PRICES="a=1,b=2") overrides any
entry. Each adaptor states its formula (e.g. Vidu video: seconds x per-second rate of the resolution).
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_PRICES: dict[str, int] = {
    # Vidu web and platform formats: per second of video, by resolution class; per image.
    "vidu:video_second:360p": 5_000,
    "vidu:video_second:540p": 5_000,
    "vidu:video_second:720p": 10_000,
    "vidu:video_second:1080p": 15_000,
    "vidu:upscale_second": 5_000,
    "vidu:image:1080p": 20_000,
    "vidu:image:2k": 30_000,
    "vidu:image:4k": 40_000,
}


class PriceTable:
    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        self._prices = dict(DEFAULT_PRICES)
        for name, value in (overrides or {}).items():
            self._prices[name] = int(value)

    def __getitem__(self, name: str) -> int:
        return self._prices[name]

    def get(self, name: str, default: int) -> int:
        return self._prices.get(name, default)

    def items(self) -> list[tuple[str, int]]:
        return sorted(self._prices.items())
