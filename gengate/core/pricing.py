"""The price table: credits per unit for each `provider:item` (1 credit = US$0.000001).

Each provider folder ships its own entries (its adaptor's `prices`, gathered by the registry);
`[prices]` in the config file (or GENGATE_PRICES="a=1,b=2") overrides any entry. Each adaptor states
its formula (e.g. Vidu video: seconds x per-second rate of the resolution).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SHIPPED_MAX = 1_000_000  # interface.md: no shipped default price exceeds this for one request


class PriceTable:
    def __init__(self, defaults: Iterable[Mapping[str, int]] = (), overrides: Mapping[str, float] | None = None
                 ) -> None:
        self._prices: dict[str, int] = {}
        for table in defaults:
            self._prices.update(table)
        for name, value in (overrides or {}).items():
            self._prices[name] = int(value)
        self._overridden = frozenset(overrides or ())

    def shipped(self, provider: str) -> bool:
        """Whether the provider's prices are all the shipped defaults (no `provider:...` overridden)."""
        prefix = provider + ":"
        return not any(name.startswith(prefix) for name in self._overridden)

    def cap(self, provider: str, credits: int) -> int:
        """A task's reservation (so its price: the settlement never exceeds it) at the shipped prices
        is at most SHIPPED_MAX, whatever the request asks for (a long veo3.1 clip with sound, a long
        video to upscale); an operator who sets prices of the provider's own is not capped."""
        return min(credits, SHIPPED_MAX) if self.shipped(provider) else credits

    def __getitem__(self, name: str) -> int:
        return self._prices[name]

    def get(self, name: str, default: int) -> int:
        return self._prices.get(name, default)

    def items(self) -> list[tuple[str, int]]:
        return sorted(self._prices.items())
