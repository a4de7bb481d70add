"""The price table: credits per unit for each `provider:item` (1 credit = US$0.000001).

Each provider folder ships its own entries (its adaptor's `prices`, gathered by the registry);
`[prices]` in the config file (or GENGATE_PRICES="a=1,b=2") overrides any entry. Each adaptor states
its formula (e.g. Vidu video: seconds x per-second rate of the resolution).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class PriceTable:
    def __init__(self, defaults: Iterable[Mapping[str, int]] = (), overrides: Mapping[str, float] | None = None
                 ) -> None:
        self._prices: dict[str, int] = {}
        for table in defaults:
            self._prices.update(table)
        for name, value in (overrides or {}).items():
            self._prices[name] = int(value)

    def __getitem__(self, name: str) -> int:
        return self._prices[name]

    def get(self, name: str, default: int) -> int:
        return self._prices.get(name, default)

    def items(self) -> list[tuple[str, int]]:
        return sorted(self._prices.items())
