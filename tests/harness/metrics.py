"""Reading Prometheus text as the tests scrape it from `/metrics`."""

from __future__ import annotations

import re


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of every series of `name` whose labels include `labels`."""
    total = 0.0
    for raw, value in re.findall(rf"^{name}\{{(.*)\}} (\S+)$", text, re.M):
        got = dict(re.findall(r'(\w+)="([^"]*)"', raw))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total
